# The part of a separation that does not depend on what makes the estimates (a model, oracle masks),
# sourced by steps/separate.sh and steps/separate_oracle.sh as `. "$COCKTAIL_ROOT/utils/separation_jobs.sh"`.
#
#   separation_jobs <data-dir> <out-dir> <log-name> <how> <model> <runner option>... -- <module> <arg>...
#       writes <out-dir>/s<c>/<utt>.wav for every utterance of <data-dir> with $nj jobs of $cmd (at most
#       one per utterance), each `python3 -m <module> <arg>... <data part> <out-dir>`, logged in
#       <out-dir>/log/<log-name>.JOB.log; then <out-dir>/provenance.yaml (what made the estimates: the
#       data dir, <model> (an exp dir or pack; empty: none) and <how>) and last the spk<c>.scp that
#       mark them complete; a failed job's own error lines are shown and the caller exits 1. <out-dir> is refused before anything is written if it is or holds
#       <data-dir>; what a former run left there is removed first.

separation_jobs() {
  local data=$1 out=$2 name=$3 how=$4 model=$5 runner_opts=() parts
  shift 5
  while [ "$1" != -- ]; do runner_opts+=("$1"); shift; done
  shift
  python3 -m nnet.separated_dir --check "$data" "$out"  # before anything is written: never into the data dir
  parts=$(python3 "$COCKTAIL_ROOT/utils/split_data.py" --at-most "$data" "$nj")
  mkdir -p "$out/log"
  rm -f "$out"/spk*.scp "$out/resolved.txt"  # scp listed again once every job has finished; a killed run's note must not join this record
  rm -rf -- "${out:?}"/s[0-9]*/  # the jobs write every source again; a folder left by another C would be counted
  local started
  started=$(date +%s)  # the jobs' logs of this run are no older (utils/job_errors.sh)
  $cmd "${runner_opts[@]}" JOB=1:"$parts" "$out/log/$name.JOB.log" \
    python3 -m "$@" "$data/split$parts/JOB" "$out" || {
    # the jobs' own error lines on the terminal, not only the runner's "read the log"
    "$COCKTAIL_ROOT/utils/job_errors.sh" "$0" "$name.py" "$started" $(seq -f "$out/log/$name.%g.log" "$parts")
    exit 1
  }
  # what made these estimates (steps/score.sh checks the data, RESULTS.md and packs the model), then the
  # spk*.scp that mark them complete. The options say only what was given; a model's jobs write what
  # they resolved (a pack's head, matched inference and phase from its meta.yaml) to resolved.txt, which
  # the record takes.
  python3 -m nnet.provenance record-separated ${model:+--model "$model"} --how "$how" "$data" "$out"
  python3 -m nnet.separated_dir "$data" "$out"
}
