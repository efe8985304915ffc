#!/usr/bin/env bash
# Downloads and unpacks the public sources of LibriMix: LibriSpeech subsets and WHAM! noise (optional step).
set -euo pipefail
help_message="Usage: $0 [options] <dir>
 e.g.: $0 downloads
       $0 --archives /mnt/usb/librimix-archives downloads
Unpacks into <dir>/LibriSpeech/<subset>/ (OpenSLR's <subset>.tar.gz) and <dir>/wham_noise/{tr,cv,tt}/
(wham_noise.zip, 17 GB). A subset or noise tree already unpacked there is kept as it is. An archive
found in --archives (a local copy, e.g. fetched on another machine) is unpacked instead of downloaded.
Options:
  --subsets <list>     LibriSpeech subsets (default: \"train-clean-100 dev-clean test-clean\")
  --noise <bool>       also WHAM! noise (default: true; false for mix_clean only)
  --archives <dir>     a folder holding the archives already (default: none)
  --librispeech-url <u> (default: \$COCKTAIL_LIBRISPEECH_URL, else https://www.openslr.org/resources/12)
  --wham-url <url>     (default: \$COCKTAIL_WHAM_URL, else WHAM!'s public address)
  --timeout <s>        seconds to wait for a connection (default: 20)"
subsets="train-clean-100 dev-clean test-clean"
noise=true
archives=
librispeech_url=${COCKTAIL_LIBRISPEECH_URL:-https://www.openslr.org/resources/12}
wham_url=${COCKTAIL_WHAM_URL:-https://my-bucket-a8b4b49c25c811ee9a7e8bba05fa24c7.s3.amazonaws.com/wham_noise.zip}
timeout=20
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] || { echo "$help_message" >&2; exit 1; }
dir=$1
mkdir -p "$dir"

# the archive from --archives, else downloaded (utils/fetch.sh says what to do when that fails)
fetch() { "$COCKTAIL_ROOT/utils/fetch.sh" --archives "$archives" --timeout "$timeout" "$1" "$2"; }

for subset in $subsets; do
  if [ -d "$dir/LibriSpeech/$subset" ] && [ -f "$dir/LibriSpeech/.$subset.done" ]; then
    echo "$0: $dir/LibriSpeech/$subset is there already"; continue
  fi
  fetch "$librispeech_url/$subset.tar.gz" "$dir/$subset.tar.gz"
  tar -xzf "$dir/$subset.tar.gz" -C "$dir" || { echo "$0: $dir/$subset.tar.gz could not be unpacked: remove it and rerun" >&2; exit 1; }
  [ -d "$dir/LibriSpeech/$subset" ] || { echo "$0: $dir/$subset.tar.gz holds no LibriSpeech/$subset/" >&2; exit 1; }
  touch "$dir/LibriSpeech/.$subset.done"
done
if $noise; then
  if [ -f "$dir/wham_noise/.done" ]; then
    echo "$0: $dir/wham_noise is there already"
  else
    fetch "$wham_url" "$dir/wham_noise.zip"
    python3 -m zipfile -e "$dir/wham_noise.zip" "$dir" || {
      echo "$0: $dir/wham_noise.zip could not be unpacked: remove it and rerun" >&2; exit 1; }
    [ -d "$dir/wham_noise/tr" ] || { echo "$0: $dir/wham_noise.zip holds no wham_noise/tr/" >&2; exit 1; }
    touch "$dir/wham_noise/.done"
  fi
fi
echo "$0: LibriSpeech ($subsets) in $dir/LibriSpeech$($noise && echo ", WHAM! noise in $dir/wham_noise")"
