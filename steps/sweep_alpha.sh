#!/usr/bin/env bash
# Choose chimera++'s alpha by cross-validation, as Wang et al. 2018 do ("The alpha coefficient is
# set through cross-validation", Sec. 5.1): train the system once per alpha, separate the
# validation set with the MI head, score it, and print cv SDRi per alpha. The test set is never
# looked at. Copy the chosen alpha into the config, with the figures, by hand.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <config.yaml> <train-dir> <valid-dir> <sweep-dir>
 e.g.: $0 --alphas \"0.5 0.9 0.975\" conf/tuning/chimerapp.yaml data/tr data/cv exp/sweep_alpha
Writes <sweep-dir>/alpha<a>/ (a trained system, separate_cv/, score_cv/) and <sweep-dir>/result.tsv.
Options:
  --alphas \"<a> ...\"  values of loss.alpha to try (default: \"0.5 0.8 0.95 0.975\")
  --epochs <n>        training.epochs of every alpha (default: the config's)
  --cmd <runner>      job runner (default: utils/run.py)
  --jobs <n>          trainings at once, nproc / n CPU threads each (default: 1)
  --nj <n>            separation and scoring jobs (default: 2)"
alphas="0.5 0.8 0.95 0.975"
epochs=
cmd=
jobs=1
nj=2
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
. "$COCKTAIL_ROOT/utils/background_jobs.sh"
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
config=$1 train=$2 valid=$3 dir=$4
[ -f "$config" ] || { echo "$0: config $config not found" >&2; exit 1; }
mkdir -p "$dir"
threads=$(cpu_share "$jobs")

# an alpha's training: the config with loss.alpha (and training.epochs) set (train.py --set), which
# <exp>/config.yaml records
[ "$(python3 -m nnet.config get "$config" loss.type)" = chimera ] ||
  { echo "$0: $config is not a chimera++ config (loss.type: chimera)" >&2; exit 1; }

one_alpha() {
  local exp=$dir/alpha$1 set="loss.alpha=$1${epochs:+ training.epochs=$epochs}" set_opts=() word
  for word in $set; do set_opts+=(--set "$word"); done
  mkdir -p "$exp"
  # a finished training is reused only if made from this config and data (other --epochs: refused)
  if [ -f "$exp/.finished" ]; then
    python3 -m nnet.provenance check-training "${set_opts[@]}" "$config" "$train" "$valid" "$exp"
  else
    "$COCKTAIL_ROOT/steps/train.sh" --cmd "$cmd" --num-threads "$threads" --set "$set" "$config" "$train" "$valid" "$exp"
  fi
  cp "$exp/config.yaml" "$exp/sweep.yaml"  # the config of this alpha, as trained
  "$COCKTAIL_ROOT/steps/separate.sh" --nj "$nj" --cmd "$cmd" "$exp" "$valid" "$exp/separate_cv"
  "$COCKTAIL_ROOT/steps/score.sh" --nj "$nj" --cmd "$cmd" "$valid" "$exp/separate_cv" "$exp/score_cv"
}

# shellcheck disable=SC2086  # $alphas: one word per alpha
run_in_background "$jobs" one_alpha $alphas
[ "$failed_jobs" -eq 0 ] || { echo "$0: $failed_jobs of the alphas failed: see the errors above" >&2; exit 1; }

{
  printf 'alpha\tcv_SDRi\tcv_SI-SNRi\tepochs\tbest_valid_mi\n'
  for alpha in $alphas; do
    res=$dir/alpha$alpha/score_cv/result.txt
    printf '%s\t%s\t%s\t%s\t%s\n' "$alpha" "$(awk '$1 == "SDRi" {print $2}' "$res")" \
      "$(awk '$1 == "SI-SNRi" {print $2}' "$res")" "$(tail -n 1 "$dir/alpha$alpha/history.tsv" | cut -f1)" \
      "$(cut -d' ' -f4 "$dir/alpha$alpha/.finished")"
  done
} > "$dir/result.tsv.tmp"
mv "$dir/result.tsv.tmp" "$dir/result.tsv"
cat "$dir/result.tsv"
