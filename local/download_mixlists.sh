#!/usr/bin/env bash
# Downloads MERL's public create-speaker-mixtures archive and keeps the wsj0-2mix (or wsj0-3mix) mix lists.
set -euo pipefail
help_message="Usage: $0 [options] <dir>
 e.g.: $0 data/local/mixlists
       $0 --num-spk 3 data/local/mixlists
Writes <dir>/mix_<N>_spk_{tr,cv,tt}.txt (N = --num-spk) from MERL's create-speaker-mixtures.zip,
which holds the lists of both wsj0-2mix and wsj0-3mix; does nothing when the three lists are there
already (a local copy put there is used as it is). The only network access of the recipes.
Options:
  --num-spk <N>      2 (wsj0-2mix: mix_2_spk_*.txt) or 3 (wsj0-3mix: mix_3_spk_*.txt) (default: 2)
  --url <url>        the archive (default: \$COCKTAIL_MIXLISTS_URL, else MERL's address)
  --timeout <s>      seconds to wait for a connection (default: 20)"
url=${COCKTAIL_MIXLISTS_URL:-https://www.merl.com/demos/deep-clustering/create-speaker-mixtures.zip}
timeout=20
num_spk=2
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
dir=$1
case $num_spk in 2 | 3) ;; *) echo "$0: --num-spk $num_spk: use 2 (wsj0-2mix) or 3 (wsj0-3mix)" >&2; exit 1 ;; esac
lists="mix_${num_spk}_spk_tr.txt mix_${num_spk}_spk_cv.txt mix_${num_spk}_spk_tt.txt"
fields=$((2 * num_spk))                                  # <wav1> <snr1> .. <wavN> <snrN>
line_format=$(for c in $(seq "$num_spk"); do printf '<wav%d> <snr%d> ' "$c" "$c"; done)

missing=0
for f in $lists; do [ -s "$dir/$f" ] || missing=1; done
if [ $missing -eq 0 ]; then
  echo "$0: the mix lists are in $dir already"
  exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.download.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "$0: could not $1 $url" >&2
  echo "  The mix lists (${lists// /, }) come from that archive. Either" >&2
  echo "  - download it where there is network access, unzip it, and give run.sh --mixlists DIR, DIR being" >&2
  echo "    the folder that holds the three lists, or" >&2
  echo "  - put the three lists into $dir yourself and rerun." >&2
  exit 1
}
if command -v curl > /dev/null; then
  curl -fsSL --connect-timeout "$timeout" --max-time 600 -o "$tmp/archive.zip" "$url" || fail download
elif command -v wget > /dev/null; then
  wget -q --timeout="$timeout" --tries=2 -O "$tmp/archive.zip" "$url" || fail download
else
  echo "$0: neither curl nor wget is installed; install one, or see --help" >&2
  fail download
fi
python3 -m zipfile -e "$tmp/archive.zip" "$tmp/unzipped" 2> "$tmp/unzip.err" || {
  cat "$tmp/unzip.err" >&2; fail "unpack the archive from"; }
for f in $lists; do
  found=$(find "$tmp/unzipped" -name "$f" -type f | head -n 1)
  [ -n "$found" ] && [ -s "$found" ] || fail "find $f in the archive from"
  awk -v f="$f" -v n="$fields" -v want="${line_format% }" \
    'NF != n { printf("%s line %d: not %s\n", f, NR, want) > "/dev/stderr"; bad = 1 } END { exit bad }' "$found" ||
    fail "read valid lists from"
  cp "$found" "$tmp/$f"
done
for f in $lists; do mv "$tmp/$f" "$dir/$f"; done
echo "$0: $(for f in $lists; do printf '%s: %s lines  ' "$f" "$(wc -l < "$dir/$f")"; done)in $dir"
