#!/usr/bin/env bash
# Stages 2-5 of every recipe (features, training, separation, scoring), the same for every corpus:
# a recipe's run.sh makes its corpus and data dirs (stages 0-1) and calls this with its options.
#   stage 2  log-magnitude feature archives, global CMVN stats     -> feats/, data/*/feats.scp
#   stage 3  train the systems, chains side by side                -> exp/<system>/
#   stage 4  separate the test sets (oracle masks too)             -> exp/<system>/separate_<set>/
#            and the variants: run-time inference, Griffin-Lim, MISI -> separate_<set>_{rti,gl,misi}/
#   stage 5  score, gather RESULTS.md                              -> exp/<system>/score_<set>[_<variant>]/
set -euo pipefail
help_message="Usage: $0 [options]   (run in a recipe dir, after its stages 0-1 made data/{tr,cv,...})
 e.g.: $0 --stage 2 --stop-stage 5 --systems \"oracle_irm dc_w_mr chimerapp\" --rti-systems dc_w_mr
Options:
  --stage <n> --stop-stage <n>  the stages to run; those below 2 are the recipe's own (default: 2 5)
  --nj <n>                parallel jobs of stages 2, 4, 5 (default: 2)
  --ngpu <n>              GPUs for training (0: CPU); > 1: DistributedDataParallel (default: 0)
  --systems <list>        the systems of stages 3-5: <tuning>/<system>.yaml, or oracle_{ibm,irm,psm}
  --rti-systems <list>    DC systems also separated with k-means + matched run-time inference
  --rti-steps <n>         Adam steps of that inference (default: 100, steps/separate.sh's)
  --phase-systems <list>  systems also separated with Griffin-Lim and MISI (5 iterations each)
  --test-sets <list>      the sets of stages 4-5 (default: \"cv tt\")
  --train-set <name> --valid-set <name>   data/<name> of training and validation (default: tr cv)
  --tuning <dir>          the systems' configs (default: conf/tuning)
  --stft-conf <file>      STFT of stage 2 (default: conf/stft.conf)
  --set \"<key=value> ...\"  stage 3: keys set in every system's config, <section>.<key>=<value> each,
                          space-separated, e.g. --set training.epochs=2 (train.py --set) (default: none)
  --num-spk <n>           sources per mixture C of every system: --set model.num_spk=<n> (0: the configs')
                          (default: 0)
  --train-jobs <n>        stage 3: chains trained at once, each on nproc / n cores (default: 1)
  --retrain <true|false>  stage 3: retrain a system that finished training (default: false)
  --train-cmd, --decode-cmd, --cuda-cmd <runner>   job runners (default: cmd.sh's \$train_cmd, ...)"
stage=2
stop_stage=5
nj=2
ngpu=0
systems=
rti_systems=
rti_steps=100
phase_systems=
test_sets="cv tt"
train_set=tr
valid_set=cv
tuning=conf/tuning
stft_conf=conf/stft.conf
set=
num_spk=0
train_jobs=1
retrain=false
train_cmd=${train_cmd:-utils/run.py}
decode_cmd=${decode_cmd:-utils/run.py}
cuda_cmd=${cuda_cmd:-utils/run.py --gpu 1}
. utils/recipe.sh
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$help_message" >&2; exit 1; }
# A set named like a variant (tt_gl) would share separate_tt_gl/ with set tt's Griffin-Lim run and
# become its '+gl' row in RESULTS.md; any other '_' (tt_small) makes score_tt_small/, which
# RESULTS.md cannot tell from a variant of set tt: both refused before any stage.
for x in $test_sets; do
  case $x in
    *_rti | *_gl | *_misi)
      echo "$0: --test-sets: '$x' ends like the separation variant ${x##*_} (exp/<system>/separate_${x%_*}_${x##*_}/," \
        "the row '<system> +${x##*_}' of set ${x%_*}): rename data/$x (e.g. ${x%_*}-${x##*_})" >&2
      exit 1 ;;
    *_*)
      echo "$0: --test-sets: '$x' has a '_', which separates a set from its variant in exp/<system>/score_<set>_<variant>/:" \
        "rename data/$x (e.g. ${x//_/-})" >&2
      exit 1 ;;
  esac
done

in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# every system of stages 3-5 names a config, a trained exp dir or an oracle mask, before any stage
if in_stages 3 || in_stages 4 || in_stages 5; then
  # shellcheck disable=SC2086
  python3 -m nnet.config check-systems "$tuning" exp $systems
fi

if in_stages 2; then
  stage_start 2 "features"
  # shellcheck disable=SC2086
  for x in $(printf '%s\n' $train_set $valid_set $test_sets | awk '!seen[$0]++'); do
    steps/make_feats.sh --nj "$nj" --cmd "$train_cmd" --stft-conf "$stft_conf" data/$x exp/make_feats/$x feats
  done
  stage_end
fi

if in_stages 3; then
  stage_start 3 "training $systems"
  cmd=$train_cmd
  if [ "$ngpu" -gt 0 ]; then
    cmd=$cuda_cmd
    # The local runner gives the jobs this machine's GPUs: without them every system would fail
    # alike, so say so once, naming --ngpu 0, before any training. A scheduler's jobs run elsewhere.
    # shellcheck disable=SC2086
    if [[ $cuda_cmd == *run.py* ]] && printf '%s\n' $systems | grep -qv '^oracle_'; then
      utils/gpus.py check "$ngpu"
    fi
  fi
  steps/train_chains.sh --cmd "$cmd" --ngpu "$ngpu" --train-jobs "$train_jobs" --retrain "$retrain" \
    --set "$set" --num-spk "$num_spk" "$tuning" "$systems" data/$train_set data/$valid_set exp
  stage_end
fi

# The separation variants of a system, Table 1's rows that reuse a trained system (stages 4, 5):
# separate_<set>_<variant>/ and score_<set>_<variant>/ (steps/separate.sh --variant).
variants() {
  case " $rti_systems " in *" $1 "*) echo rti ;; esac
  case " $phase_systems " in *" $1 "*) echo gl misi ;; esac
}

if in_stages 4; then
  stage_start 4 "separate $test_sets with $systems"
  for system in $systems; do
    for x in $test_sets; do
      echo "stage 4: separating $x with $system"
      case $system in
        oracle_*) steps/separate_oracle.sh --nj "$nj" --cmd "$decode_cmd" --mask "${system#oracle_}" \
                    data/$x exp/$system/separate_$x ;;
        *) steps/separate.sh --nj "$nj" --cmd "$decode_cmd" exp/$system data/$x exp/$system/separate_$x ;;
      esac
      for v in $(variants "$system"); do
        echo "stage 4: separating $x with $system +$v"
        steps_opt=()
        [ "$v" != rti ] || steps_opt=(--matched-steps "$rti_steps")
        steps/separate.sh --nj "$nj" --cmd "$decode_cmd" --variant "$v" "${steps_opt[@]}" \
          exp/$system data/$x exp/$system/separate_${x}_$v
      done
    done
  done
  stage_end
fi

if in_stages 5; then
  stage_start 5 "score $test_sets, RESULTS.md"
  for x in $test_sets; do
    echo "stage 5: scoring $x"
    steps/score.sh --nj "$nj" --cmd "$decode_cmd" --mixture true data/$x - exp/mixture/score_$x
    for system in $systems; do
      steps/score.sh --nj "$nj" --cmd "$decode_cmd" data/$x exp/$system/separate_$x exp/$system/score_$x
      for v in $(variants "$system"); do
        steps/score.sh --nj "$nj" --cmd "$decode_cmd" data/$x exp/$system/separate_${x}_$v exp/$system/score_${x}_$v
      done
    done
  done
  utils/show_results.py --exp exp --out RESULTS.md
  cat RESULTS.md
  stage_end
fi
