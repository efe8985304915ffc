#!/usr/bin/env bash
# LibriMix (Libri2Mix, Libri3Mix): LibriSpeech utterances mixed with WHAM! noise, free to get. Every
# system of egs/wsj0_2mix (conf/tuning is theirs), trained on mix_both (speech + noise) or mix_clean
# and scored against the clean sources.
#   stage 0  LibriMix from LibriSpeech (+ WHAM! noise): metadata  -> $librimix/metadata/libri<N>mix_<subset>.csv
#            (or --metadata: LibriMix's official CSVs), mixtures  -> $librimix/wav<rate>/<mode>/{train-100,dev,test}
#   stage 1  Kaldi data dirs (tr: train-100, cv: dev, tt: test)   -> data/{tr,cv,tt}
#   stage 2  log-magnitude feature archives, global CMVN stats     -> feats/, data/*/feats.scp
#   stage 3  train the systems, chains side by side                -> exp/<system>/
#   stage 4  separate the test sets (oracle masks too)             -> exp/<system>/separate_<set>/
#   stage 5  score against the clean sources, RESULTS.md           -> exp/<system>/score_<set>[_<variant>]/
# e.g. ./run.sh --librispeech /data/LibriSpeech --wham /data/wham_noise
#      ./run.sh --download true    (fetches LibriSpeech and WHAM! noise into downloads/ first: ~25 GB)
#      a quick first run, small corpus and the mini recipe's small networks (README, LibriMix):
#      ./run.sh --librispeech /data/LibriSpeech --wham /data/wham_noise --librimix Libri2Mix_quick \
#        --train-mixtures 600 --dev-test-mixtures 100 --tuning ../mini_2mix/conf/tuning
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
# the systems of stages 3-5: egs/wsj0_2mix's configs (conf/tuning links to them)
systems="oracle_ibm oracle_irm oracle_psm dc_w_mr chimerapp upit def_dc def def_joint dl_def"
# stage 4 also separates these DC systems with k-means + matched run-time inference -> exp/<s>/separate_<set>_rti
rti_systems="dc_w_mr"
rti_steps=100             # Adam steps of that matched inference (the paper gives no number)
# stage 4 also separates these with Griffin-Lim and with MISI (5 iterations each) -> separate_<set>_gl, separate_<set>_misi
phase_systems="chimerapp"
test_sets="cv tt"         # cv: dev (LibriSpeech dev-clean speakers), tt: test (test-clean speakers)
librispeech=              # stage 0: the LibriSpeech folder (holding train-clean-100/, dev-clean/, test-clean/)
wham=                     # stage 0: the wham_noise folder (holding tr/, cv/, tt/); needed for mix_both
download=false            # stage 0: first fetch LibriSpeech and WHAM! noise into downloads/ (local/download_librimix.sh)
metadata=                 # stage 0: LibriMix's official metadata CSVs (default: drawn by the same rules into $librimix/metadata)
librimix=                 # where stage 0 writes the corpus (default: Libri<num-spk>Mix; a finished tree is used as it is)
num_spk=2                 # sources per mixture: 2 (Libri2Mix) or 3 (Libri3Mix)
# stage 0, metadata drawn here (not --metadata): training mixtures, at most (0: LibriMix's rule,
# every utterance once: 13900 of train-100; a quick run: 600); 100 or more: down to a multiple of 100
train_mixtures=0
# stage 0 likewise: mixtures of dev (cv) and test (tt) each (LibriMix's 3000; a quick run: 100)
dev_test_mixtures=3000
train_set=train-100       # train-100 | train-360 (LibriSpeech train-clean-100 | train-clean-360)
mix_type=mix_both         # mix_both (speech + WHAM! noise) | mix_clean (speech only)
sample_rate=8k            # 8k | 16k (the STFT keeps 32 ms / 8 ms: 129 bins at 8 kHz, 257 at 16 kHz)
min_or_max=min            # min | max
tuning=conf/tuning        # the systems' configs: $tuning/<system>.yaml
retrain=false             # stage 3: retrain a system that finished training
set=                      # stage 3: keys set in every config, e.g. "training.epochs=2 training.lr=0.002"
train_jobs=1              # stage 3: systems trained at once (a cluster: one GPU job each)

. ./cmd.sh
help_message="Usage: $0 [options]   (the stages are listed at the top of $0)
 e.g.: $0 --librispeech /data/LibriSpeech --wham /data/wham_noise; $0 --stage 3 --systems chimerapp
Options (also spelled with underscores, --stop_stage; each with its default):
$(options_help "$0")"
. utils/parse_options.sh
utils/check_stages.sh "$stage" "$stop_stage" 5
case $num_spk in 2 | 3) ;; *) echo "$0: --num-spk $num_spk: use 2 or 3" >&2; exit 1 ;; esac
case $train_set in train-100 | train-360) ;; *) echo "$0: --train-set $train_set: use train-100 or train-360" >&2; exit 1 ;; esac
case $sample_rate in 8k | 16k) ;; *) echo "$0: --sample-rate $sample_rate: use 8k or 16k" >&2; exit 1 ;; esac

librimix=${librimix:-Libri${num_spk}Mix}
wav_dir=$librimix/wav$sample_rate/$min_or_max
subsets="train-clean-${train_set#train-} dev-clean test-clean"
types=mix_clean
[ "$mix_type" = mix_clean ] || types=mix_clean,mix_both

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  stage_start 0 "Libri${num_spk}Mix in $wav_dir"
  complete=true  # the mixture lists are written last, when every file of the set is there
  for s in $train_set dev test; do [ -f "$wav_dir/metadata/mixture_${s}_$mix_type.csv" ] || complete=false; done
  if $complete; then
    echo "stage 0: $wav_dir is complete (its metadata/mixture_*_$mix_type.csv are there): used as it is," \
      "with the counts it was made with (other --train-mixtures, --dev-test-mixtures: another --librimix)"
  else
    if $download; then
      noise=true; [ "$mix_type" = mix_clean ] && noise=false
      local/download_librimix.sh --subsets "$subsets" --noise "$noise" downloads
      librispeech=${librispeech:-downloads/LibriSpeech}
      [ "$noise" = false ] || wham=${wham:-downloads/wham_noise}
    fi
    [ -n "$librispeech" ] || { echo "$0: stage 0 needs --librispeech <dir> (or --download true)" >&2; exit 1; }
    [ "$mix_type" = mix_clean ] || [ -n "$wham" ] || {
      echo "$0: --mix-type mix_both needs --wham <the wham_noise folder> (or use --mix-type mix_clean)" >&2; exit 1; }
    create="local/create_librimix.py --num-spk $num_spk --subsets ${subsets// /,}"
    if [ -z "$metadata" ]; then
      metadata=$librimix/metadata
      # shellcheck disable=SC2086
      python3 $create metadata --librispeech "$librispeech" ${wham:+--wham "$wham"} --metadata "$metadata" \
        --train-mixtures "$train_mixtures" --dev-test-mixtures "$dev_test_mixtures"
    fi
    log=exp/create_librimix/log
    # shellcheck disable=SC2086
    $train_cmd JOB=1:"$nj" "$log/create.JOB.log" \
      python3 $create mixtures --librispeech "$librispeech" ${wham:+--wham "$wham"} --metadata "$metadata" \
        --out "$librimix" --sample-rates "$sample_rate" --modes "$min_or_max" --types "$types" --job JOB --num-jobs "$nj"
    # shellcheck disable=SC2086
    python3 $create index --metadata "$metadata" --out "$librimix" --sample-rates "$sample_rate" \
      --modes "$min_or_max" --types "$types"
  fi
  stage_end
fi

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  stage_start 1 "data dirs data/{tr,cv,tt} from $wav_dir ($mix_type)"
  python3 local/librimix_data_prep.py --num-spk "$num_spk" --mix-type "$mix_type" \
    --sets "$train_set:tr dev:cv test:tt" "$wav_dir" data
  stage_end
fi

# stages 2-5: the same in every recipe
steps/separation_recipe.sh --stage "$stage" --stop-stage "$stop_stage" --nj "$nj" --ngpu "$ngpu" \
  --systems "$systems" --rti-systems "$rti_systems" --rti-steps "$rti_steps" --phase-systems "$phase_systems" \
  --test-sets "$test_sets" --tuning "$tuning" --set "$set" --num-spk "$num_spk" \
  --train-jobs "$train_jobs" --retrain "$retrain"
