#!/usr/bin/env bash
# A wsj0-2mix-style corpus from anyone's single-speaker recordings: mix lists drawn by wsj0-2mix's
# rules (local/make_mixtures.py), then the mixtures made by the same code as wsj0-2mix.
set -euo pipefail
help_message="Usage: $0 [options] --train <src> [--test <src>] <out-dir>
 e.g.: $0 --train data/train --test data/test --source-root /data/corpus corpus
       $0 --train /data/recordings --num-tt-speakers 10 --num-tr 5000 corpus
<src> is a Kaldi data dir (wav.scp, utt2spk) or a folder holding one folder per speaker. tr and cv
come from the --train speakers (cv: other recordings of the same speakers), tt from the --test
speakers (or --num-tt-speakers held out). Writes <out>/mixlists/, <out>/speakers.txt, <out>/sources/
(local/make_mixtures.py says what each holds) and <out>/wav<rate>/<mode>/{tr,cv,tt}/{mix,s1,s2[,s3]}/;
<out>/.done marks a complete corpus. A re-run makes what is missing; other options into the same
<out> are refused. Then: local/data_prep.sh --mixlists <out>/mixlists --speakers <out>/speakers.txt
<out>/wav<rate>/<mode> data
Options:
  --train <src>           recordings of the training speakers (required)
  --test <src>            recordings of the test speakers (default: none, see --num-tt-speakers)
  --num-tt-speakers <n>   without --test: training speakers held out for tt (default: 0)
  --source-root <dir>     where relative wav.scp paths start (default: .)
  --num-spk <n>           speakers per mixture: 2 or 3 (default: 2)
  --num-tr <n> --num-cv <n> --num-tt <n>   mixtures per set (default: 20000 5000 3000, wsj0-2mix's)
  --cv-fraction <f>       share of each training speaker's recordings for cv (default: 0.2)
  --seed <n>              random seed (default: 1)
  --sample-rate <8k|16k>  (default: 8k)
  --mode <min|max>        (default: min)
  --nj <n>                parallel jobs (default: 2)
  --cmd <runner>          job runner (default: utils/run.py)"
train=
test=
num_tt_speakers=0
source_root=.
num_spk=2
num_tr=20000
num_cv=5000
num_tt=3000
cv_fraction=0.2
seed=1
sample_rate=8k
mode=min
nj=2
cmd=
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 1 ] && [ -n "$train" ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
out=$1

test_opt=()
[ -z "$test" ] || test_opt=(--test "$test")
mkdir -p "$out"
python3 "$COCKTAIL_ROOT/local/make_mixtures.py" --train "$train" "${test_opt[@]}" --num-tt-speakers "$num_tt_speakers" \
  --source-root "$source_root" --num-spk "$num_spk" --num-tr "$num_tr" --num-cv "$num_cv" --num-tt "$num_tt" \
  --cv-fraction "$cv_fraction" --seed "$seed" --min-rate "$(( ${sample_rate%k} * 1000 ))" "$out"
"$COCKTAIL_ROOT/local/create_from_mixlists.sh" --nj "$nj" --cmd "$cmd" --num-spk "$num_spk" \
  --sample-rate "$sample_rate" --mode "$mode" "$source_root" "$out/mixlists" "$out"
echo "$0: $out/wav$sample_rate/$mode: $num_tr/$num_cv/$num_tt tr/cv/tt mixtures of $num_spk speakers"
