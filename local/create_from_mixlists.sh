#!/usr/bin/env bash
# Creates a wsj0-2mix-style corpus from mix lists in MERL's format (local/create_wsj0_2mix.py in
# parallel jobs), checks that every mixture and source is there, and marks the corpus complete.
set -euo pipefail
help_message="Usage: $0 [options] <source-root> <mixlists-dir> <out-dir>
 e.g.: $0 --nj 2 corpus corpus/mixlists corpus
Runs local/create_wsj0_2mix.py --source-root <source-root> on <mixlists-dir>/mix_<N>_spk_{tr,cv,tt}.txt
into <out-dir>/wav<rate>/<mode>/{tr,cv,tt}/{mix,s1,..,sN}/, then counts the files of every set against
its list. <out-dir>/.done, written last, marks a complete corpus: a re-run with it there counts the
files again and returns at once when they are all there, else makes the missing ones.
Options:
  --nj <n>               parallel jobs (default: 2)
  --cmd <runner>         job runner (default: utils/run.py)
  --num-spk <n>          sources per mixture (default: 2)
  --sample-rate <8k|16k> (default: 8k)
  --mode <min|max>       (default: min)"
nj=2
cmd=
num_spk=2
sample_rate=8k
mode=min
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
root=$1 lists=$2 out=$3
wav=$out/wav$sample_rate/$mode

# Prints the first set that lacks files (nothing: the corpus is complete).
missing_files() {
  local set kind expected found
  for set in tr cv tt; do
    expected=$(awk 'NF' "$lists/mix_${num_spk}_spk_$set.txt" | wc -l)
    for kind in mix $(seq -f 's%g' "$num_spk"); do
      found=0
      [ ! -d "$wav/$set/$kind" ] || found=$(find "$wav/$set/$kind" -maxdepth 1 -name '[!.]*.wav' | wc -l)
      [ "$found" -eq "$expected" ] || { echo "$wav/$set/$kind has $found of $expected wav files"; return; }
    done
  done
}
if [ -f "$out/.done" ]; then
  problem=$(missing_files)
  if [ -z "$problem" ]; then
    echo "$0: $out is complete already"
    exit 0
  fi
  echo "$0: $out/.done is there but $problem: making the missing files" >&2
  rm "$out/.done"
fi

$cmd JOB=1:"$nj" "$out/log/create.JOB.log" \
  python3 "$COCKTAIL_ROOT/local/create_wsj0_2mix.py" --source-root "$root" --mixlists "$lists" --out "$out" \
    --num-spk "$num_spk" --sample-rates "$sample_rate" --modes "$mode" --job JOB --num-jobs "$nj"

problem=$(missing_files)
[ -z "$problem" ] || { echo "$0: $problem; read $out/log/create.*.log" >&2; exit 1; }
date > "$out/.done.tmp"
mv "$out/.done.tmp" "$out/.done"
