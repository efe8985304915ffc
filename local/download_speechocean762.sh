#!/usr/bin/env bash
# Downloads and unpacks speechocean762 from OpenSLR (resource 101), the optional first step of
# egs/speechocean762's stage 0.
set -euo pipefail
help_message="Usage: $0 [options] <dir>
 e.g.: $0 downloads
       $0 --archives /mnt/usb downloads      (a folder holding speechocean762.tar.gz already)
Unpacks OpenSLR's speechocean762.tar.gz (520 MB: WAVE/SPEAKERnnnn/*.WAV at 16 kHz, train/, test/)
into <dir>/speechocean762/; a tree already unpacked there is kept as it is.
Options:
  --archives <dir>   a folder holding speechocean762.tar.gz (a local copy) (default: none)
  --url <url>        (default: \$COCKTAIL_SPEECHOCEAN762_URL, else https://www.openslr.org/resources/101/speechocean762.tar.gz)
  --timeout <s>      seconds to wait for a connection (default: 20)"
archives=
url=${COCKTAIL_SPEECHOCEAN762_URL:-https://www.openslr.org/resources/101/speechocean762.tar.gz}
timeout=20
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
dir=$1
if [ -f "$dir/speechocean762/.done" ]; then
  echo "$0: $dir/speechocean762 is there already"
  exit 0
fi
mkdir -p "$dir"
"$COCKTAIL_ROOT/utils/fetch.sh" --archives "$archives" --timeout "$timeout" "$url" "$dir/speechocean762.tar.gz"
tar -xzf "$dir/speechocean762.tar.gz" -C "$dir" ||
  { echo "$0: $dir/speechocean762.tar.gz could not be unpacked: remove it and rerun" >&2; exit 1; }
for f in train/wav.scp test/wav.scp WAVE; do
  [ -e "$dir/speechocean762/$f" ] || { echo "$0: $dir/speechocean762.tar.gz holds no speechocean762/$f" >&2; exit 1; }
done
touch "$dir/speechocean762/.done"
echo "$0: speechocean762 in $dir/speechocean762"
