#!/usr/bin/env bash
# Log-magnitude STFT features of a data dir's mixtures, as Kaldi ark/scp archives, and the global
# CMVN statistics of the set in Kaldi's layout.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <data-dir> <log-dir> <feat-dir>
 e.g.: $0 --nj 4 data/tr exp/make_feats/tr feats
Writes <feat-dir>/raw_<set>_<id>.<n>.{ark,scp} (<id>: 8 hex digits of the data dir's absolute
path, so that data dirs of one name, data/tr and /tmp/other/tr, keep their own archives),
<data-dir>/feats.scp, <data-dir>/cmvn (Kaldi stats of the whole set) and <data-dir>/stft.conf (the
STFT used, for the later stages). The old features of
the set are removed first, and feats.scp is written last: a failed run leaves none. Every wav's header
is checked first (utils/validate_data_dir.py --check-audio); unreadable, truncated, empty or
non-finite audio and non-finite features stop the run with the utterance and the file named.
Options:
  --nj <n>            number of parallel jobs (default: 4)
  --cmd <runner>      job runner (default: utils/run.py)
  --stft-conf <file>  STFT options (default: built-in 32 ms sqrt-Hann, 8 ms hop)"
nj=4
cmd=
stft_conf=
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
data=$1 logdir=$2 featdir=$3

[ -f "$data/wav.scp" ] || { echo "$0: $data/wav.scp not found: run data preparation first" >&2; exit 1; }
[ -z "$stft_conf" ] || [ -f "$stft_conf" ] || { echo "$0: --stft-conf $stft_conf not found" >&2; exit 1; }
mkdir -p "$logdir" "$featdir"
featdir=$(cd "$featdir" && pwd -P)
case $featdir in  # feats.scp lines are '<utt> <ark>:<offset>': readers split at white space
  *[[:space:]]*) echo "$0: feature dir $featdir contains white space, which feats.scp cannot hold;" \
    "give one without (a recipe's feats/ is in its dir: run the recipe from a path without spaces)" >&2; exit 1 ;;
esac
# the archives' name: the set's, and its dir's path (another dir named like it keeps its own archives)
name=$(basename "$data")_$(cd "$data" && pwd -P | sha256sum | cut -c1-8)
# The old features go first: a failed run must not leave a feats.scp that a later stage takes as done.
rm -f "$data/feats.scp" "$data/cmvn" "$featdir/raw_$name".*
# Every wav's header, across the whole set (one job sees only its part): truncated, empty or
# odd-rate files, references of another length than their mixture, each named.
python3 "$COCKTAIL_ROOT/utils/validate_data_dir.py" --no-feats --check-audio "$data" > /dev/null || {
  echo "$0: fix the problems of $data above, then rerun" >&2; exit 1; }
num_utts=$(wc -l < "$data/wav.scp")
nj=$(python3 "$COCKTAIL_ROOT/utils/split_data.py" --at-most "$data" "$nj")  # at most one job per utterance
conf_opt=()
[ -z "$stft_conf" ] || conf_opt=(--stft-conf "$stft_conf")
$cmd JOB=1:"$nj" "$logdir/make_feats_$name.JOB.log" \
  python3 -m nnet.bin.make_feats "${conf_opt[@]}" "$data/split$nj/JOB/wav.scp" \
    "$featdir/raw_$name.JOB.ark" "$featdir/raw_$name.JOB.scp" "$featdir/raw_$name.JOB.cmvn"

trap 'rm -f "$data/feats.scp.tmp" "$data/stft.conf.tmp"' EXIT
for n in $(seq "$nj"); do cat "$featdir/raw_$name.$n.scp"; done | sort > "$data/feats.scp.tmp"
n_feats=$(wc -l < "$data/feats.scp.tmp")
[ "$n_feats" -eq "$num_utts" ] || {
  echo "$0: $n_feats of $num_utts utterances have features; read $logdir/make_feats_$name.*.log" >&2; exit 1; }
python3 -m nnet.bin.sum_cmvn_stats "$data/cmvn" \
  $(for n in $(seq "$nj"); do echo "$featdir/raw_$name.$n.cmvn"; done)
if [ -n "$stft_conf" ]; then cp "$stft_conf" "$data/stft.conf.tmp"; else : > "$data/stft.conf.tmp"; fi
mv "$data/stft.conf.tmp" "$data/stft.conf"
mv "$data/feats.scp.tmp" "$data/feats.scp"  # last: feats.scp marks finished features
echo "$0: $n_feats utterances of $data -> $featdir (nj=$nj)"
