#!/usr/bin/env bash
# Log-magnitude STFT features of a data dir's mixtures, as Kaldi ark/scp archives, and the global
# CMVN statistics of the set in Kaldi's layout.
set -euo pipefail
help_message="Usage: $0 [options] <data-dir> <log-dir> <feat-dir>
 e.g.: $0 --nj 4 data/tr exp/make_feats/tr feats
Writes <feat-dir>/raw_<set>.<n>.{ark,scp}, <data-dir>/feats.scp, <data-dir>/cmvn (Kaldi stats of
the whole set) and <data-dir>/stft.conf (the STFT used, for the later stages).
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
name=$(basename "$data")
num_utts=$(wc -l < "$data/wav.scp")
[ "$nj" -le "$num_utts" ] || nj=$num_utts

python3 "$COCKTAIL_ROOT/utils/split_data.py" "$data" "$nj"
conf_opt=()
[ -z "$stft_conf" ] || conf_opt=(--stft-conf "$stft_conf")
$cmd JOB=1:"$nj" "$logdir/make_feats_$name.JOB.log" \
  python3 "$COCKTAIL_ROOT/nnet/bin/make_feats.py" "${conf_opt[@]}" "$data/split$nj/JOB/wav.scp" \
    "$featdir/raw_$name.JOB.ark" "$featdir/raw_$name.JOB.scp" "$featdir/raw_$name.JOB.cmvn"

for n in $(seq "$nj"); do cat "$featdir/raw_$name.$n.scp"; done | sort > "$data/feats.scp.tmp"
python3 "$COCKTAIL_ROOT/nnet/bin/sum_cmvn_stats.py" "$data/cmvn" \
  $(for n in $(seq "$nj"); do echo "$featdir/raw_$name.$n.cmvn"; done)
if [ -n "$stft_conf" ]; then cp "$stft_conf" "$data/stft.conf.tmp"; else : > "$data/stft.conf.tmp"; fi
mv "$data/stft.conf.tmp" "$data/stft.conf"
n_feats=$(wc -l < "$data/feats.scp.tmp")
mv "$data/feats.scp.tmp" "$data/feats.scp"
[ "$n_feats" -eq "$num_utts" ] || {
  echo "$0: $n_feats of $num_utts utterances have features; read $logdir/make_feats_$name.*.log" >&2; exit 1; }
echo "$0: $n_feats utterances of $data -> $featdir (nj=$nj)"
