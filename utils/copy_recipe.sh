#!/usr/bin/env bash
# Start a recipe for a new corpus from an existing one: copies what configures a run and links what
# is shared, and leaves behind what a run of the source recipe made or measured.
set -euo pipefail
help_message="Usage: $0 <source-recipe> <new-recipe>
 e.g.: $0 egs/mini_2mix egs/mycorpus
Copies <source-recipe>'s run.sh, cmd.sh and conf/ into <new-recipe> (which must not exist yet), the
links of conf/ resolved (egs/librimix/conf/tuning links to egs/wsj0_2mix's configs: the copy gets
files of its own, so that editing them changes no other recipe), and links path.sh, steps, utils and
local to the top level of this checkout. Everything else stays behind: the source's corpus, data,
features, experiments and downloads, its RESULTS.md (results on its corpus, not yours) and
pretrained/ (a model of its corpus)."
[ $# -eq 1 ] && { [ "$1" = --help ] || [ "$1" = -h ]; } && { echo "$help_message"; exit 0; }
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
src=${1%/} dest=${2%/}
root=$(dirname "$(dirname "$(readlink -f "$0")")")
for name in run.sh cmd.sh conf; do
  [ -e "$src/$name" ] || { echo "$0: $src/$name not found: give a recipe dir (e.g. $root/egs/mini_2mix)" >&2; exit 1; }
done
[ ! -e "$dest" ] && [ ! -L "$dest" ] || { echo "$0: $dest exists: give a new dir (nothing was copied)" >&2; exit 1; }

# built beside the destination and renamed at the end: an interrupted copy leaves no half recipe
mkdir -p "$(dirname "$dest")"
tmp=$(dirname "$dest")/.$(basename "$dest").tmp.$$
mkdir "$tmp"
trap 'rm -rf -- "$tmp"' EXIT
cp -p "$src/run.sh" "$src/cmd.sh" "$tmp/"
cp -RL "$src/conf" "$tmp/conf"
# relative links inside this checkout, as egs/* have them (the checkout can move); absolute outside
case $(realpath -m "$dest")/ in "$root"/*) relative=true ;; *) relative=false ;; esac
for name in path.sh steps utils local; do
  target=$root/$name
  ! $relative || target=$(realpath -m --relative-to="$dest" "$target")
  ln -s "$target" "$tmp/$name"
done
mv "$tmp" "$dest"
trap - EXIT

left=$(cd "$src" && for f in * .[!.]*; do
  [ -e "$f" ] || [ -L "$f" ] || continue
  case $f in run.sh | cmd.sh | conf | path.sh | steps | utils | local) ;; *) printf ' %s' "$f" ;; esac
done)
echo "$0: $dest: run.sh, cmd.sh, conf/ of $src; path.sh, steps, utils, local linked to $root"
[ -z "$left" ] || echo "$0: left behind in $src:$left"
