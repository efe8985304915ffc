#!/usr/bin/env bash
# Kaldi data dirs of a corpus laid out as wsj0-2mix: <dir>/{tr,cv,tt}/{mix,s1,s2[,s3]}/<name>.wav.
set -euo pipefail
help_message="Usage: $0 [options] <corpus-dir> <data-root>
 e.g.: $0 --mixlists downloads/mixlists /data/wsj0-mix/2speakers/wav8k/min data
       $0 --speakers mixture --mixlists none /data/mycorpus data
Reads <corpus-dir>/{tr,cv,tt}/{mix,s1,..,sN}/<name>.wav (N = --num-spk; any <name> without white
space; s1/<name>.wav .. sN/<name>.wav are the sources of mix/<name>.wav) and writes
<data-root>/{tr,cv,tt}/ with wav.scp (mixtures), spk1.scp .. spkN.scp (sources), utt2spk, spk2utt,
utt2num_samples.
Speakers (utt2spk) and utterance ids, --speakers:
  wsj0-2mix  <name> is MERL's <utt1>_<snr1>_<utt2>_<snr2> (wsj0-3mix: .._<utt3>_<snr3>); the speakers
             are the first 3 characters of each utt: utterance <spkA>_<spkB>_<name> of speaker pair
             <spkA>_<spkB> (<spkA>_<spkB>_<spkC> with three)
  mixture    any <name>; each mixture is its own speaker pair: utterance and speaker <name>
  <file>     any <name>; lines '<name> <speaker>' (a speaker pair, a session: what groups the
             mixtures), one for every mixture of the sets: utterance <speaker>_<name>
(the separation stages use no speaker labels; Kaldi's data dirs need them.)
A set is refused unless it holds as many mixtures as its mix list names (an interrupted stage 0
leaves fewer; --mixlists none: a corpus without lists, where only the sources of each mixture are
checked) and every wav is whole (not truncated, not empty), at one sample rate, with references as
long as their mixture.
Options:
  --mixlists <dir|none>  the mix_<N>_spk_{tr,cv,tt}.txt the corpus was made from (required: none
                         for a corpus made without lists)
  --num-spk <N>          sources per mixture: 2 (wsj0-2mix) or 3 (wsj0-3mix) (default: 2)
  --speakers <rule>      wsj0-2mix, mixture or a file, as above (default: wsj0-2mix)
  --sets <list>          sets to prepare (default: \"tr cv tt\")"
mixlists=
num_spk=2
speakers=wsj0-2mix
sets="tr cv tt"
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
case $num_spk in 2 | 3) ;; *) echo "$0: --num-spk $num_spk: use 2 or 3" >&2; exit 1 ;; esac
sources=$(seq -f 's%g' "$num_spk")  # s1 s2 [s3]
src=$1 data=$2

[ -d "$src" ] || { echo "$0: $src: no such directory; give the corpus dir, e.g. .../wav8k/min" >&2; exit 1; }
src=$(cd "$src" && pwd -P)
case $src in
  *[[:space:]]*) echo "$0: $src contains white space, which Kaldi tables cannot hold; move the corpus" >&2; exit 1 ;;
esac
[ -n "$mixlists" ] || { echo "$0: give --mixlists <dir>, the mix_<N>_spk_{tr,cv,tt}.txt the corpus was made
from (local/download_mixlists.sh fetches MERL's): without them an incomplete corpus cannot be told apart
(a corpus made without lists: --mixlists none, and only each mixture's sources are checked)" >&2
  exit 1; }
case $speakers in
  wsj0-2mix | mixture) ;;
  *) [ -f "$speakers" ] || {
       echo "$0: --speakers $speakers: use wsj0-2mix, mixture, or a file of '<name> <speaker>' lines" >&2; exit 1; }
     speakers=$(readlink -f "$speakers") ;;
esac
for set in $sets; do
  for kind in mix $sources; do
    [ -d "$src/$set/$kind" ] || {
      echo "$0: $src/$set/$kind: no such directory; run the corpus creation stage (stage 0) first" >&2; exit 1; }
  done
  [ "$mixlists" = none ] || [ -f "$mixlists/mix_${num_spk}_spk_$set.txt" ] || {
    echo "$0: $mixlists/mix_${num_spk}_spk_$set.txt not found: give --mixlists the dir of the corpus's mix lists" >&2; exit 1; }
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
  odd=$(find "$src/$set" -mindepth 2 -maxdepth 2 -name '*[[:space:]]*' -print -quit)
  [ -z "$odd" ] || { echo "$0: '$odd': white space in a file name, which Kaldi tables cannot hold: rename it" >&2
    exit 1; }
  # The count, not the names: MERL's MATLAB scripts may write the SNRs otherwise than the list does.
  found=$(wc -l < "$tmp/names")
  listed=$found
  [ "$mixlists" = none ] || listed=$(awk 'NF' "$mixlists/mix_${num_spk}_spk_$set.txt" | sort -u | wc -l)
  [ "$found" -eq "$listed" ] || {
    echo "$0: $src/$set/mix holds $found mixtures, $mixlists/mix_${num_spk}_spk_$set.txt lists $listed: the corpus is" \
      "incomplete (an interrupted stage 0?) or made from other lists; rerun stage 0, which finishes it" >&2; exit 1; }
  while read -r name; do
    for kind in $sources; do
      [ -f "$src/$set/$kind/$name.wav" ] || {
        echo "$0: $src/$set/$kind/$name.wav is missing (mixture $src/$set/mix/$name.wav has it); rerun stage 0" >&2
        exit 1; }
    done
  done < "$tmp/names"
  awk -v src="$src/$set" -v tmp="$tmp" -v me="$0" -v rule="$speakers" -v num_spk="$num_spk" '
    BEGIN {
      if (rule != "wsj0-2mix" && rule != "mixture")
        while ((getline line < rule) > 0) {
          lineno++; n = split(line, f, " ");
          if (!n) continue;
          # a label becomes part of utterance ids and so of file names (separate_<set>/s1/<utt>.wav)
          bad = n > 2 ? "holds white space" : (f[2] ~ /\/|\.\./ ? "holds '\''/'\'' or '\''..'\''" : "");
          if (bad != "") {
            lbl = n > 2 ? substr(line, index(line, f[2])) : f[2];
            printf("%s: %s:%d: speaker label '\''%s'\'' of %s %s: labels become part of utterance ids and file" \
                   " names; use letters, digits, '\''-'\'', '\''_'\'', '\''.'\''\n", me, rule, lineno, lbl, f[1], bad) > "/dev/stderr";
            exit 1;
          }
          label[f[1]] = f[2];
        }
    }
    {
      if (rule == "wsj0-2mix") {
        n = split($1, f, "_"); short = 0;
        for (c = 1; c <= num_spk; c++) if (length(f[2 * c - 1]) < 3) short = 1;
        if (n != 2 * num_spk || short) {
          form = num_spk == 2 ? "<utt1>_<snr1>_<utt2>_<snr2>" : "<utt1>_<snr1>_<utt2>_<snr2>_<utt3>_<snr3>";
          printf("%s: %s/mix/%s.wav: name is not %s (wsj0-%dmix); for other names use" \
                 " --speakers mixture or --speakers <file>\n", me, src, $1, form, num_spk) > "/dev/stderr";
          exit 1;
        }
        spk = substr(f[1], 1, 3);
        for (c = 2; c <= num_spk; c++) spk = spk "_" substr(f[2 * c - 1], 1, 3);
        utt = spk "_" $1;
      } else if (rule == "mixture") {
        spk = $1; utt = $1;
      } else {
        if (!($1 in label) || label[$1] == "") {
          printf("%s: %s/mix/%s.wav: no line \"%s <speaker>\" in %s\n", me, src, $1, $1, rule) > "/dev/stderr";
          exit 1;
        }
        spk = label[$1]; utt = spk "_" $1;
      }
      print utt, src "/mix/" $1 ".wav" > (tmp "/wav.scp.u");
      for (c = 1; c <= num_spk; c++) print utt, src "/s" c "/" $1 ".wav" > (tmp "/spk" c ".scp.u");
      print utt, spk > (tmp "/utt2spk.u");
    }' "$tmp/names"
  for f in wav.scp $(seq -f 'spk%g.scp' "$num_spk") utt2spk; do
    sort "$tmp/$f.u" > "$tmp/$f"
    rm "$tmp/$f.u"
  done
  python3 "$COCKTAIL_ROOT/utils/utt2spk_to_spk2utt.py" "$tmp/utt2spk" > "$tmp/spk2utt"
  rm "$tmp/names"
  # Every wav's header; the problems name the corpus files (the temporary dir is shown as $dir).
  python3 "$COCKTAIL_ROOT/utils/validate_data_dir.py" --check-audio "$tmp" 2>&1 > /dev/null | sed "s|$tmp|$dir|g" >&2 \
    || { echo "$0: the data dir made from $src/$set is not valid (problems above)" >&2; exit 1; }
  python3 "$COCKTAIL_ROOT/utils/wav_to_num_samples.py" "$tmp/wav.scp" > "$tmp/utt2num_samples"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  trap - EXIT
  echo "$0: $dir: $(wc -l < "$dir/wav.scp") utterances, $(wc -l < "$dir/spk2utt") speaker groups"
done
