#!/usr/bin/env bash
# Score separated speech against the references: BSS Eval SDR/SIR/SAR, SDRi, SI-SNR(i), PESQ, STOI.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <data-dir> <separated-dir> <score-dir>
       $0 [options] --mixture true <data-dir> - <score-dir>
 e.g.: $0 --nj 4 data/tt exp/chimerapp/separate_tt exp/chimerapp/score_tt
       $0 --mixture true data/tt - exp/mixture/score_tt
<data-dir> has wav.scp (mixtures) and spk1.scp..spkN.scp (references); <separated-dir> has
spk1.scp..spkN.scp (estimates). --mixture true scores the unprocessed mixture as the estimate of
every source: there is no separated dir, and '-' stands in its place.
Writes <score-dir>/per_utt.tsv (one row per utterance) and <score-dir>/result.txt (means over all
the utterances, num_utts, and floored_<metric>: the utterances where a silent estimate or a PESQ
failure scored the metric's floor, -150 dB, PESQ 1.0, STOI 0.0); logs in <score-dir>/log/.
An utterance that cannot be scored (estimate of another length, NaN samples, missing file, silent
reference or mixture) stops scoring with the utterance and the file named, and no result.txt.
Options:
  --nj <n>            number of parallel jobs (default: 4)
  --cmd <runner>      job runner (default: utils/run.py)
  --mixture <bool>    score the mixture itself (default: false)"
nj=4
cmd=
mixture=false
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
[ $# -eq 3 ] || { echo "$help_message" >&2; exit 1; }
data=$1 sep=$2 dir=$3
if $mixture; then
  [ "$sep" = - ] || { echo "$0: with --mixture true the separated dir is '-', not '$sep'" >&2; exit 1; }
  what=(--mixture)
else
  [ "$sep" != - ] || { echo "$0: separated dir '-' needs --mixture true" >&2; exit 1; }
  [ -f "$sep/spk1.scp" ] || { echo "$0: $sep/spk1.scp not found: run the separation stage first" >&2; exit 1; }
  what=(--separated "$sep")
fi
[ -f "$data/wav.scp" ] || { echo "$0: $data/wav.scp not found: run data preparation first" >&2; exit 1; }
[ -f "$data/spk1.scp" ] || { echo "$0: $data/spk1.scp not found: scoring needs the references" >&2; exit 1; }
# estimates separated from this data dir as it is now, not from an older corpus (nnet/provenance.py)
$mixture || python3 -m nnet.provenance check-separated "$data" "$sep"
scored_data=$data  # what <score-dir>/provenance.yaml records

# One BLAS thread per job: the jobs are the parallelism (--nj), as in Kaldi.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

num_utts=$(wc -l < "$data/wav.scp")
[ "$nj" -le "$num_utts" ] || nj=$num_utts
mkdir -p "$dir/log"
rm -f "$dir/result.txt" "$dir/per_utt.tsv" "$dir"/part.*.tsv  # a failed run must not look finished
python3 "$COCKTAIL_ROOT/utils/split_data.py" "$data" "$nj"
$cmd JOB=1:"$nj" "$dir/log/score.JOB.log" \
  python3 -m nnet.bin.score compute "${what[@]}" "$data/split$nj/JOB" "$dir/part.JOB.tsv"
python3 -m nnet.bin.score merge "$data" "$dir" \
  $(for n in $(seq "$nj"); do echo "$dir/part.$n.tsv"; done)
rm -f "$dir"/part.*.tsv
# what the result was scored on (the data dir, the separated dir's record): RESULTS.md leaves out a
# result whose data or model changed since; without this record the result does not count as done
python3 -m nnet.provenance record-score "$scored_data" "$sep" "$dir" || { rm -f "$dir/result.txt"; exit 1; }
