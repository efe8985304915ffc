#!/usr/bin/env bash
# Recorded speech: two-speaker mixtures of speechocean762 (250 speakers reading English, Mandarin L1;
# children, teenagers and adults; free, OpenSLR resource 101), made by wsj0-2mix's rules and code, and
# every system of the seed papers on them.
#   stage 0  mix lists and mixtures (local/make_mixtures.sh): tr and cv from the 125 speakers of the
#            corpus's train/ list (cv: other recordings of them), tt from the 125 of test/ (unseen)
#                                                                  -> $corpus/wav8k/min/{tr,cv,tt}
#   stage 1  Kaldi data dirs, and the training speakers' recordings for dynamic mixing
#                                                                  -> data/{tr,cv,tt}, data/tr/sources
#   stage 2  log-magnitude feature archives, global CMVN stats     -> feats/, data/*/feats.scp
#   stage 3  train the systems, chains side by side                -> exp/<system>/
#   stage 4  separate the test sets (oracle masks too)             -> exp/<system>/separate_<set>/
#            and the variants: run-time inference, Griffin-Lim, MISI -> separate_<set>_{rti,gl,misi}/
#   stage 5  score, gather RESULTS.md                              -> exp/<system>/score_<set>[_<variant>]/
# e.g. ./run.sh --speechocean762 /data/speechocean762     (OpenSLR's tree, or its 8 kHz FLAC copy)
#      ./run.sh --download true                            (fetches OpenSLR's archive into downloads/)
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
# the systems of stages 3-5 (conf/tuning), the longest chain first so that two training jobs end together
systems="oracle_ibm oracle_irm oracle_psm def_dc def def_joint dl_def chimerapp upit dc_w_mr dc_classic_mr mi_sigmoid_tpsa_l1"
# stage 4 also separates these DC systems with k-means + matched run-time inference -> exp/<s>/separate_<set>_rti
rti_systems="dc_w_mr dc_classic_mr"
rti_steps=50              # Adam steps of that matched inference (the paper gives no number; the mini recipe's 50)
# stage 4 also separates these with Griffin-Lim and with MISI (5 iterations each) -> separate_<set>_gl, separate_<set>_misi
phase_systems="chimerapp"
test_sets="cv tt"         # cv: closed speakers (CSC), tt: open speakers (OSC), as Table 1
speechocean762=           # stage 0: the corpus folder (holding WAVE/, train/, test/): OpenSLR's 16 kHz .WAV or an 8 kHz FLAC copy
download=false            # stage 0: first fetch OpenSLR's speechocean762.tar.gz into downloads/ (local/download_speechocean762.sh)
archives=                 # stage 0 with --download: a folder holding speechocean762.tar.gz already (no network needed)
corpus=corpus             # where stage 0 writes the mix lists and the mixtures
num_tr=1800               # stage 0: tr mixtures (conf/tuning/README.md says why each size)
num_cv=200                # stage 0: cv mixtures
num_tt=1200               # stage 0: tt mixtures
seed=1                    # stage 0: the draw of the mix lists
sample_rate=8k            # 8k | 16k (16k needs OpenSLR's 16 kHz tree)
tuning=conf/tuning        # the systems' configs: $tuning/<system>.yaml
retrain=false             # stage 3: retrain a system that finished training
set=                      # stage 3: keys set in every config, e.g. "training.epochs=2 training.lr=0.002"
train_jobs=2              # stage 3: systems trained at once, each on nproc/train_jobs cores

. ./cmd.sh
help_message="Usage: $0 [options]   (the stages are listed at the top of $0)
 e.g.: $0 --speechocean762 /data/speechocean762; $0 --stage 3 --stop-stage 5 --systems \"dc_w_mr chimerapp\"
Options (also spelled with underscores, --stop_stage; each with its default):
$(options_help "$0")"
. utils/parse_options.sh
utils/check_stages.sh "$stage" "$stop_stage" 5
case $sample_rate in 8k | 16k) ;; *) echo "$0: --sample-rate $sample_rate: use 8k or 16k" >&2; exit 1 ;; esac
wav_dir=$corpus/wav$sample_rate/min

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  stage_start 0 "two-speaker mixtures of speechocean762 in $wav_dir"
  if $download; then
    local/download_speechocean762.sh --archives "$archives" downloads
    speechocean762=${speechocean762:-downloads/speechocean762}
  fi
  [ -n "$speechocean762" ] || {
    echo "$0: stage 0 needs --speechocean762 <dir> (the corpus: WAVE/, train/, test/) or --download true" >&2; exit 1; }
  for f in train/wav.scp train/utt2spk test/wav.scp test/utt2spk WAVE; do
    [ -e "$speechocean762/$f" ] || {
      echo "$0: $speechocean762/$f not found: give --speechocean762 the folder holding WAVE/, train/ and test/" >&2
      exit 1; }
  done
  local/make_mixtures.sh --nj "$nj" --cmd "$train_cmd" --train "$speechocean762/train" --test "$speechocean762/test" \
    --source-root "$speechocean762" --num-tr "$num_tr" --num-cv "$num_cv" --num-tt "$num_tt" --seed "$seed" \
    --sample-rate "$sample_rate" "$corpus"
  stage_end
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  stage_start 1 "data dirs data/{tr,cv,tt} from $wav_dir"
  local/data_prep.sh --mixlists "$corpus/mixlists" --speakers "$corpus/speakers.txt" "$wav_dir" data
  # the training speakers' recordings, which dynamic mixing (training.dynamic_mixing) draws from
  rm -rf data/tr/.sources.tmp
  cp -r "$corpus/sources/tr" data/tr/.sources.tmp
  mv data/tr/.sources.tmp data/tr/sources
  stage_end
fi

# stages 2-5: the same in every recipe
steps/separation_recipe.sh --stage "$stage" --stop-stage "$stop_stage" --nj "$nj" --ngpu "$ngpu" \
  --systems "$systems" --rti-systems "$rti_systems" --rti-steps "$rti_steps" --phase-systems "$phase_systems" \
  --test-sets "$test_sets" --tuning "$tuning" --set "$set" --num-spk 2 \
  --train-jobs "$train_jobs" --retrain "$retrain"
