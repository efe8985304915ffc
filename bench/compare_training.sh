#!/usr/bin/env bash
# Training speed of this tree against another commit, side by side: one epoch of a config, trained
# by each tree's own nnet/train.py on the same data dirs, alternating A B B A so that both see the
# same machine load and go first equally often. Prints each run's frames/s (train.py's figure:
# training steps only), training loss and the nnet package it ran, then the ratio of the means.
# Shared machines drift: note a calibration figure before and after.
#
#   bench/compare_training.sh [--rounds 2] [--threads 1] [--config egs/mini_2mix/conf/tuning/chimerapp.yaml] \
#       <commit> <train-data-dir> <valid-data-dir>
#
# e.g. after egs/mini_2mix/run.sh --stop-stage 2:
#   bench/compare_training.sh dd3f64d egs/mini_2mix/data/tr egs/mini_2mix/data/cv
#
# The other commit is checked out with `git worktree` in a temporary folder. Each run starts in its
# own tree with that tree's path.sh sourced (its PYTHONPATH and environment, e.g. GLIBC_TUNABLES),
# and the Python of this tree's .venv. Both train one copy of the config as this tree resolves it
# (nnet.config resolve: training.epochs=1, model.num_bins from the training features), which an
# older tree reads too; the loss of the two trees should be equal where a change is only about speed.
set -euo pipefail

rounds=2
threads=1
root=$(cd "$(dirname "$0")/.." && pwd)
config=$root/egs/mini_2mix/conf/tuning/chimerapp.yaml
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --config) config=$(readlink -f "$2"); shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ $# -ne 3 ]; then
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
fi
commit=$1
train_dir=$(readlink -f "$2")
valid_dir=$(readlink -f "$3")
python=$root/.venv/bin/python
[ -x "$python" ] || { echo "$0: $python is missing: run $root/setup.sh first" >&2; exit 1; }
[ -f "$config" ] || { echo "$0: no config $config" >&2; exit 1; }
for d in "$train_dir" "$valid_dir"; do
  [ -f "$d/feats.scp" ] || { echo "$0: $d/feats.scp is missing: run the recipe's stages 1-2 first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/compare_training.XXXXXX")
other=$work/tree
cleanup() { git -C "$root" worktree remove --force "$other" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
git -C "$root" worktree add --detach "$other" "$commit" >/dev/null 2>&1 \
  || { echo "$0: cannot check out '$commit' (git worktree add failed)" >&2; exit 1; }
for f in path.sh nnet/bin/train.py; do
  [ -f "$other/$f" ] || { echo "$0: $commit has no $f: it predates this comparison" >&2; exit 1; }
done
( cd "$root" && "$python" -m nnet.config resolve --set training.epochs=1 --features "$train_dir" "$config" ) \
  > "$work/config.yaml" || exit 1  # nnet.config said why

declare -A sums
for round in $(seq "$rounds"); do
  order=("$other" "$root")
  [ $((round % 2)) -eq 0 ] && order=("$root" "$other")
  for tree in "${order[@]}"; do
    if [ "$tree" = "$root" ]; then name=this side=this; else name=$commit side=other; fi
    out=$work/exp_${round}_$side
    # cd first: python -m puts the current folder ahead of PYTHONPATH. path.sh's only complaint
    # here is the worktree's missing .venv (this tree's Python is used).
    ( cd "$tree" && unset GLIBC_TUNABLES && . ./path.sh 2>/dev/null \
      && "$python" -c 'import nnet.bin.train as m; print("code:", m.__file__)' \
      && "$python" -m nnet.bin.train --ngpu 0 --num-threads "$threads" "$work/config.yaml" \
        "$train_dir" "$valid_dir" "$out" ) > "$out.log" 2>&1 \
      || { echo "$0: training with $name failed; its log:" >&2; tail -5 "$out.log" >&2; exit 1; }
    code=$(sed -n 's/^code: //p' "$out.log")
    [ "${code#"$tree"/}" != "$code" ] \
      || { echo "$0: the $name run imported $code, not $tree's code" >&2; exit 1; }
    line=$(grep -o 'epoch 1 train_loss [0-9.]*.*frames_per_s [0-9]*' "$out.log") \
      || { echo "$0: no 'epoch 1 ... frames_per_s' line in $out.log:" >&2; tail -5 "$out.log" >&2; exit 1; }
    fps=${line##* }
    loss=$(echo "$line" | awk '{print $4}')
    echo "round $round $name: $fps frames/s, train_loss $loss, code ${code%/nnet/bin/train.py}"
    sums[$name]=$(( ${sums[$name]:-0} + fps ))
  done
done
awk -v a="${sums[this]}" -v b="${sums[$commit]}" -v n="$rounds" -v c="$commit" \
  'BEGIN { printf "mean frames/s over %d rounds: this tree %.0f, %s %.0f: ratio %.2f\n", n, a / n, c, b / n, a / b }'
