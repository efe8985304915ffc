#!/usr/bin/env bash
# Score separated speech against the references: BSS Eval SDR/SIR/SAR, SDRi, SI-SNR(i), PESQ, STOI.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <data-dir> <separated-dir> <score-dir>
       $0 [options] --mixture true <data-dir> - <score-dir>
 e.g.: $0 --nj 4 data/tt exp/chimerapp/separate_tt exp/chimerapp/score_tt
       $0 --mixture true data/tt - exp/mixture/score_tt
<data-dir> has wav.scp (mixtures) and spk1.scp..spkN.scp (references); <separated-dir> has
spk1.scp..spkN.scp (estimates). Nothing else is needed: a data dir without utt2spk or spk2utt (one
made by hand) is scored from a copy of those tables in <score-dir>/data, each utterance its own
speaker (speakers play no part in scoring); <data-dir> is left as it is. --mixture true scores the
unprocessed mixture as the estimate of every source: there is no separated dir, and '-' stands in
its place.
Writes <score-dir>/per_utt.tsv (one row per utterance) and <score-dir>/result.txt (means over all
the utterances, num_utts, and floored_<metric>: the utterances with a metric at its floor, -150 dB,
PESQ 1.0, STOI 0.0, for one of three causes: a silent estimate, PESQ failing on an estimate, or a
STOI below 0 clipped to 0); logs in <score-dir>/log/, where each floored utterance has a warning
naming its cause.
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

mkdir -p "$dir/log"
rm -f "$dir/result.txt" "$dir/per_utt.tsv" "$dir"/part.*.tsv  # a failed run must not look finished
if [ ! -f "$data/utt2spk" ] || [ ! -f "$data/spk2utt" ]; then
  # the jobs' parts come from utils/split_data.py, which needs a whole Kaldi data dir: give it one
  # beside the scores, made of the tables that scoring reads, rather than write into <data-dir>
  echo "$0: $data has no utt2spk or spk2utt: scoring a copy of its wav.scp and spk*.scp in $dir/data"
  rm -rf "$dir/data"
  mkdir -p "$dir/data"
  for table in "$data"/wav.scp "$data"/spk[0-9]*.scp; do sort "$table" > "$dir/data/$(basename "$table")"; done
  awk '{print $1, $1}' "$dir/data/wav.scp" > "$dir/data/utt2spk"
  cp "$dir/data/utt2spk" "$dir/data/spk2utt"
  data=$dir/data
fi
nj=$(python3 "$COCKTAIL_ROOT/utils/split_data.py" --at-most "$data" "$nj") || {  # at most one job per utterance
  [ "$data" = "$1" ] || echo "$0: $data holds copies of $1's tables: correct the tables named above in $1" >&2
  exit 1
}
started=$(date +%s)  # the jobs' logs of this run are no older (utils/job_errors.sh)
$cmd JOB=1:"$nj" "$dir/log/score.JOB.log" \
  python3 -m nnet.bin.score compute "${what[@]}" "$data/split$nj/JOB" "$dir/part.JOB.tsv" || {
  "$COCKTAIL_ROOT/utils/job_errors.sh" "$0" score.py "$started" $(seq -f "$dir/log/score.%g.log" "$nj")
  exit 1
}
python3 -m nnet.bin.score merge "$data" "$dir" \
  $(for n in $(seq "$nj"); do echo "$dir/part.$n.tsv"; done)
rm -f "$dir"/part.*.tsv
# what the result was scored on (the data dir, the separated dir's record): RESULTS.md leaves out a
# result whose data or model changed since; without this record the result does not count as done
python3 -m nnet.provenance record-score "$scored_data" "$sep" "$dir" || { rm -f "$dir/result.txt"; exit 1; }
