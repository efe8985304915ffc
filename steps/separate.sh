#!/usr/bin/env bash
# Separate the mixtures of a data dir with a trained system (stage 4).
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <exp-dir or pack.zip> <data-dir> <out-dir>
 e.g.: $0 --nj 4 exp/chimerapp data/tt exp/chimerapp/separate_tt
       $0 --nj 4 pretrained/mini_chimerapp.zip data/tt exp/mini_chimerapp/separate_tt
Writes <out-dir>/{s1,s2}/<utt>.wav and <out-dir>/spk{1,2}.scp.
Options:
  --nj <n>                 parallel jobs (default: 4)
  --cmd <runner>           job runner (default: utils/run.py)
  --use-gpu <true|false>   run the network and k-means on a GPU (default: false)
  --head <mi|dc>           masks from the MI head or k-means on the DC embeddings
                           (default: a pack's meta.yaml, else mi when the model has one)
  --matched-inference <true|false>  refine k-means by matched run-time inference (dc head)
                           (default: a pack's meta.yaml, else false)
  --matched-steps <n>      Adam steps of matched run-time inference (default: a pack's meta.yaml, else
                           nnet/inference.py's MATCHED_STEPS, 100; the paper gives no number)
  --phase <mixture|griffin-lim|misi>  phase reconstruction (default: a pack's meta.yaml, else mixture)
  --iters <n>              Griffin-Lim / MISI iterations (default: nnet.inference.MISI_ITERATIONS, the paper's 5)
  --noise-source <true|false>  the mixtures hold noise besides the speakers: MISI reconstructs it as
                           one more source instead of spreading it into the speakers (default: true
                           when <data-dir>/noise1.scp lists the noise, as LibriMix's mix_both has it)
  --variant <rti|gl|misi>  a separation variant of Table 1 (Wang et al. 2018), the recipes' stage 4:
                           rti = --head dc --matched-inference true, gl = --phase griffin-lim,
                           misi = --phase misi"
nj=4
cmd=
use_gpu=false
head=
matched_inference=
matched_steps=
phase=
iters=
noise_source=
variant=
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
case $variant in
  "") ;;
  rti) head=dc matched_inference=true ;;
  gl) phase=griffin-lim ;;
  misi) phase=misi ;;
  *) echo "$0: --variant '$variant': use rti, gl or misi" >&2; exit 1 ;;
esac
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
exp=$1 data=$2 out=$3
[ -f "$exp/best.pt" ] || [ -f "$exp" ] || { echo "$0: $exp/best.pt not found: train the system first (stage 3)" >&2; exit 1; }
case $noise_source in
  "") noise_source=false; [ ! -f "$data/noise1.scp" ] || noise_source=true ;;
  true | false) ;;
  *) echo "$0: --noise-source '$noise_source': use true or false" >&2; exit 1 ;;
esac
opts=(--use-gpu "$use_gpu")
[ -z "$matched_inference" ] || opts+=(--matched-inference "$matched_inference")  # unset: the pack's own
[ -z "$phase" ] || opts+=(--phase "$phase")  # unset: the pack's own phase (separator.py)
[ -z "$iters" ] || opts+=(--iters "$iters")
opts+=(--noise-source "$noise_source")
[ -z "$head" ] || opts+=(--head "$head")
[ -z "$matched_steps" ] || opts+=(--matched-steps "$matched_steps")
gpu_opt=()
! $use_gpu || gpu_opt=(--gpu 1)
. "$COCKTAIL_ROOT/utils/separation_jobs.sh"
separation_jobs "$data" "$out" separate "${opts[*]}" "$exp" "${gpu_opt[@]}" -- nnet.bin.separate "${opts[@]}" "$exp"
