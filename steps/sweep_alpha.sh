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
  --epochs <n>        override training.epochs (default: the config's)
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

one_alpha() {
  local alpha=$1 exp=$dir/alpha$1
  mkdir -p "$exp"
  # the config of this alpha goes to sweep.yaml once it is the one trained (a refused re-run keeps the old)
  python3 - "$config" "$alpha" "$epochs" "$exp/sweep.yaml.new" <<'EOF'
import sys
import yaml
src, alpha, epochs, out = sys.argv[1:]
with open(src, encoding="utf-8") as f:
    config = yaml.safe_load(f)
if config.get("loss", {}).get("type") != "chimera":
    sys.exit(f"sweep_alpha.sh: {src} is not a chimera++ config (loss.type: chimera)")
config["loss"]["alpha"] = float(alpha)
if epochs:
    config["training"]["epochs"] = int(epochs)
with open(out, "w", encoding="utf-8") as f:
    yaml.safe_dump(config, f, sort_keys=False)
EOF
  # a finished training is reused only if made from this config and data (other --epochs: refused)
  if [ -f "$exp/.finished" ]; then
    python3 -m nnet.provenance check-training "$exp/sweep.yaml.new" "$train" "$valid" "$exp" ||
      { rm -f "$exp/sweep.yaml.new"; return 1; }
  else
    "$COCKTAIL_ROOT/steps/train.sh" --cmd "$cmd" --num-threads "$threads" "$exp/sweep.yaml.new" "$train" "$valid" "$exp" ||
      { rm -f "$exp/sweep.yaml.new"; return 1; }
  fi
  mv "$exp/sweep.yaml.new" "$exp/sweep.yaml"
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
