#!/usr/bin/env bash
# wsj0-2mix: deep clustering, uPIT, chimera++ and the DL-DEF chain, beside the oracle masks
# (wsj0-3mix with --num-spk 3).
#   stage 0  create wsj0-2mix from WSJ0 and MERL's mix lists     -> $wsj0_2mix/wav8k/min/{tr,cv,tt}
#   stage 1  Kaldi data dirs                                       -> data/{tr,cv,tt}
#   stage 2  log-magnitude feature archives, global CMVN stats     -> feats/, data/*/feats.scp
#   stage 3  train the systems, chains side by side                -> exp/<system>/
#   stage 4  separate the test sets (oracle masks too)             -> exp/<system>/separate_<set>/
#            and the variants: run-time inference, Griffin-Lim, MISI -> separate_<set>_{rti,gl,misi}/
#   stage 5  score, gather RESULTS.md                              -> exp/<system>/score_<set>[_<variant>]/
# e.g. ./run.sh --wsj0 /data/WSJ0 --stage 0; ./run.sh --stage 3 --stop-stage 5 --systems "dc_w_mr chimerapp"
#      ./run.sh --num-spk 3 --wsj0 /data/WSJ0        (wsj0-3mix in wsj0-3mix/, every system with C = 3)
set -euo pipefail
# path.sh, conf/, data/, exp/ and the paths in your options are relative to the recipe's dir
[ "$0" -ef ./run.sh ] || { echo "$0: run it from its dir: cd $(dirname "$0") && ./run.sh ..." >&2; exit 1; }
. ./path.sh
. utils/recipe.sh  # default_nj, default_ngpu: the defaults below

stage=0                   # first stage to run
stop_stage=5              # last stage to run
nj=$(default_nj)          # parallel jobs of stages 0, 2, 4, 5 (default: this machine's cores, nproc)
# GPUs for training: 1 when this machine has one that torch can use, else 0 (the CPU);
# > 1: DistributedDataParallel, batch_size utterances on each GPU
ngpu=$(default_ngpu)
# conf/tuning has one config per row of Table 1 (conf/tuning/README.md): any can be named in --systems
systems="oracle_ibm oracle_irm oracle_psm dc_w_mr chimerapp mi_sigmoid_tpsa_l1 upit def_dc def def_joint dl_def"
# stage 4 also separates these DC systems with k-means + matched run-time inference -> exp/<s>/separate_<set>_rti
rti_systems="dc_classic_mr dc_lda_va dc_s_mr dc_l_va dc_w_mr"
rti_steps=100             # Adam steps of that matched inference (the paper gives no number)
# stage 4 also separates these with Griffin-Lim and with MISI (5 iterations each) -> separate_<set>_gl, separate_<set>_misi
phase_systems="chimerapp"
test_sets="cv tt"         # cv: closed speakers (CSC), tt: open speakers (OSC), as Table 1
wsj0=                     # the WSJ0 corpus (the folder holding wsj0/, or wsj0/ itself)
num_spk=2                 # speakers per mixture: 2 (wsj0-2mix) or 3 (wsj0-3mix); stages 0, 1 and 3 (model.num_spk)
mixlists=                 # MERL's mix_<num_spk>_spk_{tr,cv,tt}.txt (default: downloaded into downloads/mixlists)
wsj0_2mix=                # where stage 0 writes the mixtures, a complete tree used as it is (default: wsj0-<num_spk>mix)
sample_rate=8k            # 8k | 16k
min_or_max=min            # min | max
retrain=false             # stage 3: retrain a system that finished training
set=                      # stage 3: keys set in every config, e.g. "training.epochs=2 training.lr=0.002"
train_jobs=1              # stage 3: systems trained at once (a cluster: one GPU job each)
tuning=conf/tuning        # the systems' configs: $tuning/<system>.yaml

. ./cmd.sh
help_message="Usage: $0 [options]   (the stages are listed at the top of $0)
 e.g.: $0 --wsj0 /data/WSJ0 --stage 0; $0 --stage 3 --stop-stage 5 --systems \"dc_w_mr chimerapp\"
Options (also spelled with underscores, --stop_stage; each with its default):
$(options_help "$0")"
. utils/parse_options.sh
utils/check_stages.sh "$stage" "$stop_stage" 5

case $num_spk in 2 | 3) ;; *) echo "$0: --num-spk $num_spk: use 2 (wsj0-2mix) or 3 (wsj0-3mix)" >&2; exit 1 ;; esac
wsj0_2mix=${wsj0_2mix:-wsj0-${num_spk}mix}
wav_dir=$wsj0_2mix/wav$sample_rate/$min_or_max

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  stage_start 0 "wsj0-${num_spk}mix in $wav_dir"
  if [ -z "$mixlists" ]; then
    mixlists=downloads/mixlists
    local/download_mixlists.sh --num-spk "$num_spk" "$mixlists"
  fi
  [ -n "$wsj0" ] || { echo "$0: stage 0 needs --wsj0 <dir> (the WSJ0 corpus)" >&2; exit 1; }
  log=exp/create_wsj0_2mix/log
  $train_cmd JOB=1:"$nj" "$log/create.JOB.log" \
    python3 local/create_wsj0_2mix.py --num-spk "$num_spk" --wsj0 "$wsj0" --mixlists "$mixlists" --out "$wsj0_2mix" \
      --sample-rates "$sample_rate" --modes "$min_or_max" --job JOB --num-jobs "$nj"
  stage_end
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  stage_start 1 "data dirs data/{tr,cv,tt} from $wav_dir"
  local/data_prep.sh --mixlists "${mixlists:-downloads/mixlists}" --num-spk "$num_spk" "$wav_dir" data
  stage_end
fi

# stages 2-5: the same in every recipe
steps/separation_recipe.sh --stage "$stage" --stop-stage "$stop_stage" --nj "$nj" --ngpu "$ngpu" \
  --systems "$systems" --rti-systems "$rti_systems" --rti-steps "$rti_steps" --phase-systems "$phase_systems" \
  --test-sets "$test_sets" --tuning "$tuning" --set "$set" --num-spk "$num_spk" \
  --train-jobs "$train_jobs" --retrain "$retrain"
