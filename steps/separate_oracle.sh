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
[ -n "$stft_conf" ] || { [ -s "$data/stft.conf" ] && stft_conf=$data/stft.conf; } || true
conf_opt=()
[ -z "$stft_conf" ] || conf_opt=(--stft-conf "$stft_conf")
. "$COCKTAIL_ROOT/utils/separation_jobs.sh"
separation_jobs "$data" "$out" separate_oracle "oracle $mask masks, STFT ${stft_conf:-built-in}" "" -- \
  nnet.bin.separate_oracle --mask "$mask" "${conf_opt[@]}"
