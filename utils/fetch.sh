#!/usr/bin/env bash
# Usage: utils/fetch.sh [--archives <dir>] [--timeout <s>] <url> <file>
# Puts the archive <url> at <file>: a copy named like <file> in --archives (a local copy, e.g. fetched
# on another machine) is linked; a whole <file> already there is kept; else it is downloaded (curl or
# wget) to <file>.part and renamed when whole. Exits 1 with what to do when the download fails.
set -euo pipefail
archives=
timeout=20
while [ $# -gt 2 ]; do
  case $1 in
    --archives) archives=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { sed -n '2,5p' "$0" | sed 's/^# //' >&2; exit 2; }
url=$1 file=$2
name=$(basename "$file")
fail() {
  rm -f "$file.part"
  echo "$0: could not download $url" >&2
  echo "  Download $name where there is network access and pass the folder holding it" \
    "(--archives <dir>), or unpack it yourself and give the recipe the unpacked folder." >&2
  exit 1
}
if [ -n "$archives" ] && [ -s "$archives/$name" ]; then
  echo "$0: using $archives/$name"
  ln -sf "$(readlink -f "$archives/$name")" "$file"
  exit 0
fi
[ ! -s "$file" ] || exit 0
mkdir -p "$(dirname "$file")"
echo "$0: downloading $url"
if command -v curl > /dev/null; then
  curl -fSL --connect-timeout "$timeout" -o "$file.part" "$url" || fail
elif command -v wget > /dev/null; then
  wget -q --timeout="$timeout" --tries=2 -O "$file.part" "$url" || fail
else
  echo "$0: neither curl nor wget is installed" >&2; fail
fi
mv "$file.part" "$file"
