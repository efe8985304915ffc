#!/usr/bin/env bash
# Separation with ideal masks (the ceiling of mask-based models on the same data).
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] --mask ibm|irm|psm <data-dir> <out-dir>
 e.g.: $0 --nj 4 --mask irm data/tt exp/oracle_irm/separate_tt
Writes <out-dir>/{s1,s2}/<utt>.wav and <out-dir>/spk{1,2}.scp.
Options:
  --nj <n>            number of parallel jobs (default: 4)
  --cmd <runner>      job runner (default: utils/run.py)
  --mask <kind>       ibm (ideal binary), irm (ideal ratio), psm (truncated phase-sensitive)
  --stft-conf <file>  STFT options (default: <data-dir>/stft.conf when present, else built-in)"
nj=4
cmd=
mask=
stft_conf=
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] && [ -n "$mask" ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
data=$1 out=$2
python3 -m nnet.separated_dir --check "$data" "$out"  # before anything is written: never into the data dir
[ -n "$stft_conf" ] || { [ -s "$data/stft.conf" ] && stft_conf=$data/stft.conf; } || true
conf_opt=()
[ -z "$stft_conf" ] || conf_opt=(--stft-conf "$stft_conf")

num_utts=$(wc -l < "$data/wav.scp")
[ "$nj" -le "$num_utts" ] || nj=$num_utts
python3 "$COCKTAIL_ROOT/utils/split_data.py" "$data" "$nj"
mkdir -p "$out/log"
rm -f "$out"/spk*.scp  # listed again only once every job has finished
rm -rf -- "${out:?}"/s[0-9]*/  # the jobs write every source again; a folder left by another C would be counted
started=$(date +%s)  # the jobs' logs of this run are no older (utils/job_errors.sh)
$cmd JOB=1:"$nj" "$out/log/separate_oracle.JOB.log" \
  python3 -m nnet.bin.separate_oracle --mask "$mask" "${conf_opt[@]}" "$data/split$nj/JOB" "$out" || {
  "$COCKTAIL_ROOT/utils/job_errors.sh" "$0" separate_oracle.py "$started" \
    $(seq -f "$out/log/separate_oracle.%g.log" "$nj")
  exit 1
}
python3 -m nnet.provenance record-separated --how "oracle $mask masks, STFT ${stft_conf:-built-in}" "$data" "$out"
python3 -m nnet.separated_dir "$data" "$out"
