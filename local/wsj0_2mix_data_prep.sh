#!/usr/bin/env bash
# Kaldi data dirs of a wsj0-2mix style corpus (the output of local/create_wsj0_2mix.py).
set -euo pipefail
help_message="Usage: $0 --mixlists <dir> [options] <wsj0-2mix-dir> <data-root>
 e.g.: $0 --mixlists downloads/mixlists /data/wsj0-mix/2speakers/wav8k/min data
Reads <wsj0-2mix-dir>/{tr,cv,tt}/{mix,s1,s2}/<name>.wav and writes <data-root>/{tr,cv,tt}/ with
wav.scp (mixtures), spk1.scp, spk2.scp (sources), utt2spk, spk2utt, utt2num_samples. Utterance ids
are <spkA>_<spkB>_<name>, spkA and spkB being the first 3 characters of the two source utterance ids
in <name> (<utt1>_<snr1>_<utt2>_<snr2>), and utt2spk maps them to <spkA>_<spkB>.
A set is refused unless it holds as many mixtures as its mix list names (an interrupted stage 0
leaves fewer) and every wav is whole (not truncated, not empty), at one sample rate, with
references as long as their mixture.
Options:
  --mixlists <dir>  the mix_2_spk_{tr,cv,tt}.txt the corpus was made from (required)
  --sets <list>     sets to prepare (default: \"tr cv tt\")"
mixlists=
sets="tr cv tt"
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
src=$1 data=$2

[ -d "$src" ] || { echo "$0: $src: no such directory; give the wsj0-2mix dir, e.g. .../wav8k/min" >&2; exit 1; }
src=$(cd "$src" && pwd -P)
case $src in
  *[[:space:]]*) echo "$0: $src contains white space, which Kaldi tables cannot hold; move the corpus" >&2; exit 1 ;;
esac
[ -n "$mixlists" ] || { echo "$0: give --mixlists <dir>, the mix_2_spk_{tr,cv,tt}.txt the corpus was made
from (local/download_mixlists.sh fetches MERL's): without them an incomplete corpus cannot be told apart" >&2
  exit 1; }
for set in $sets; do
  for kind in mix s1 s2; do
    [ -d "$src/$set/$kind" ] || {
      echo "$0: $src/$set/$kind: no such directory; run the corpus creation stage (stage 0) first" >&2; exit 1; }
  done
  [ -f "$mixlists/mix_2_spk_$set.txt" ] || {
    echo "$0: $mixlists/mix_2_spk_$set.txt not found: give --mixlists the dir of the corpus's mix lists" >&2; exit 1; }
done

mkdir -p "$data"
for set in $sets; do
  dir=$data/$set
  tmp=$data/.$set.tmp.$$
  rm -rf "$tmp"
  mkdir "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  # names of the mixtures; the dot files are unfinished temporary writes
  find "$src/$set/mix" -maxdepth 1 -name '[!.]*.wav' -printf '%f\n' | sed 's/\.wav$//' | sort > "$tmp/names"
  [ -s "$tmp/names" ] || { echo "$0: $src/$set/mix holds no wav file; rerun stage 0" >&2; exit 1; }
  # The count, not the names: MERL's MATLAB scripts may write the SNRs otherwise than the list does.
  listed=$(awk 'NF' "$mixlists/mix_2_spk_$set.txt" | sort -u | wc -l)
  found=$(wc -l < "$tmp/names")
  [ "$found" -eq "$listed" ] || {
    echo "$0: $src/$set/mix holds $found mixtures, $mixlists/mix_2_spk_$set.txt lists $listed: the corpus is" \
      "incomplete (an interrupted stage 0?) or made from other lists; rerun stage 0, which finishes it" >&2; exit 1; }
  while read -r name; do
    for kind in s1 s2; do
      [ -f "$src/$set/$kind/$name.wav" ] || {
        echo "$0: $src/$set/$kind/$name.wav is missing (mixture $src/$set/mix/$name.wav has it); rerun stage 0" >&2
        exit 1; }
    done
  done < "$tmp/names"
  awk -v src="$src/$set" -v tmp="$tmp" -v me="$0" '{
      n = split($1, f, "_");
      if (n != 4 || length(f[1]) < 3 || length(f[3]) < 3) {
        printf("%s: %s/mix/%s.wav: name is not <utt1>_<snr1>_<utt2>_<snr2>\n", me, src, $1) > "/dev/stderr";
        exit 1;
      }
      spk = substr(f[1], 1, 3) "_" substr(f[3], 1, 3); utt = spk "_" $1;
      print utt, src "/mix/" $1 ".wav" > (tmp "/wav.scp.u");
      print utt, src "/s1/" $1 ".wav" > (tmp "/spk1.scp.u");
      print utt, src "/s2/" $1 ".wav" > (tmp "/spk2.scp.u");
      print utt, spk > (tmp "/utt2spk.u");
    }' "$tmp/names"
  for f in wav.scp spk1.scp spk2.scp utt2spk; do
    sort "$tmp/$f.u" > "$tmp/$f"
    rm "$tmp/$f.u"
  done
  python3 "$COCKTAIL_ROOT/utils/utt2spk_to_spk2utt.py" "$tmp/utt2spk" > "$tmp/spk2utt"
  rm "$tmp/names"
  # Every wav's header; the problems name the corpus files (the temporary dir is shown as $dir).
  python3 "$COCKTAIL_ROOT/utils/validate_data_dir.py" --check-audio "$tmp" 2>&1 > /dev/null | sed "s|$tmp|$dir|g" >&2 \
    || { echo "$0: the data dir made from $src/$set is not valid (problems above)" >&2; exit 1; }
  # soxi prints the sample counts in the order of the files it is given
  cut -d' ' -f2 "$tmp/wav.scp" | xargs soxi -s > "$tmp/num_samples"
  cut -d' ' -f1 "$tmp/wav.scp" | paste -d' ' - "$tmp/num_samples" > "$tmp/utt2num_samples"
  rm "$tmp/num_samples"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "$0: $dir: $(wc -l < "$dir/wav.scp") utterances, $(wc -l < "$dir/spk2utt") speaker pairs"
done
