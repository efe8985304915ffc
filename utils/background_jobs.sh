# Functions for steps that run whole steps of their own side by side (trainings, chains of them),
# sourced as `. "$COCKTAIL_ROOT/utils/background_jobs.sh"`.
#
#   cpu_share <n>   nproc / n, at least 1: the CPU threads each of n jobs at once gets.
#   run_in_background <n> <function> <arg>...
#                   runs `<function> <arg>` for each <arg> in the background, at most <n> at once,
#                   waits for all, and sets failed_jobs to how many failed. Call it as a plain
#                   command, never after if, ||, && or !: bash would switch off set -e inside the jobs,
#                   and a failed command would no longer stop its job.

cpu_share() {
  local cpus
  cpus=$(nproc)
  echo $((cpus / $1 > 0 ? cpus / $1 : 1))
}

run_in_background() {
  local max=$1 fn=$2 arg pid pids=()
  shift 2
  for arg in "$@"; do
    while [ "$(jobs -pr | wc -l)" -ge "$max" ]; do sleep 2; done
    "$fn" "$arg" &
    pids+=($!)
  done
  failed_jobs=0
  for pid in "${pids[@]}"; do wait "$pid" || failed_jobs=$((failed_jobs + 1)); done
}
