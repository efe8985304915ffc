#!/usr/bin/env bash
# Usage: utils/job_errors.sh [--hint <text>] <caller> <program> <started> <log>...
# Prints on stderr why the jobs of a failed `$cmd JOB=1:N <log> python3 -m nnet.bin.<program>` run
# failed, so that the terminal shows the error and not only the runner's "read the log":
#   - a log of this run (modified at or after <started>, seconds since the epoch) whose footer is not
#     "with status 0": its lines that start with "<program>: " (the entry points' own errors, without
#     their WARNING lines), each as "<caller>: <line>"; without such a line (a traceback, a
#     killed job) the log's last 15 lines;
#   - no log of this run at all: the runner refused the jobs before they started; its message is
#     above, and <text> of --hint is added (e.g. what to do about a GPU that is not visible).
# Always exits 0: the caller exits 1 after it.
hint=
if [ "${1:-}" = --hint ]; then hint=$2; shift 2; fi
[ $# -ge 3 ] || { echo "usage: $0 [--hint <text>] <caller> <program> <started> <log>..." >&2; exit 0; }
caller=$1 program=$2 started=$3
shift 3
shown=0 failed=0
for log in "$@"; do
  # a log of a former run (another --nj, or one this run's runner never wrote) is not this run's
  [ -f "$log" ] && [ "$(stat -c %Y "$log")" -ge "$started" ] || continue
  shown=$((shown + 1))
  status=$(sed -n 's/^# Finished at .* with status \([0-9]*\)$/\1/p' "$log" | tail -n 1)
  [ "$status" != 0 ] || continue
  failed=$((failed + 1))
  [ "$failed" -le 3 ] || continue  # the first three say it; the runner lists every failed log
  errors=$(grep "^${program//./\\.}: " "$log" | grep -v "^${program//./\\.}: WARNING" || true)
  if [ -n "$errors" ]; then
    echo "$errors" | sed "s|^|$caller: |"  # the runner has named the log above
  else
    echo "$caller: $log has no message of $program's (a crash, or the job was killed); its end:"
    tail -n 15 "$log" | sed 's|^|  |'
  fi
done >&2
if [ "$shown" -eq 0 ]; then
  echo "$caller: the job runner did not start $program (no log of this run): its message is above$hint" >&2
elif [ "$failed" -gt 3 ]; then
  echo "$caller: ... and $((failed - 3)) more failed jobs (listed above)" >&2
fi
exit 0
