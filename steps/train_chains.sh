#!/usr/bin/env bash
# Train several systems (stage 3 of the recipes). The DL-DEF chain starts each system from the
# previous one's best weights, so a chain trains in order; independent chains (dc, upit, chimerapp,
# def_dc -> def -> def_joint -> dl_def) train side by side, --train-jobs at a time.
set -euo pipefail
help_message="Usage: $0 [options] <tuning-dir> \"<systems>\" <train-dir> <valid-dir> <exp-root>
 e.g.: $0 --train-jobs 2 conf/tuning \"dc upit def_dc def\" data/tr data/cv exp
Trains <exp-root>/<system>/ from <tuning-dir>/<system>.yaml with steps/train.sh; oracle_* systems
and repeats are skipped, and so is a system that finished training unless --retrain true.
Options:
  --cmd <runner>          job runner (default: utils/run.py; \$cuda_cmd for GPUs)
  --ngpu <n>              GPUs per system (default: 0, the CPU)
  --train-jobs <n>        chains trained at once (default: 1); on the CPU each job gets
                          nproc / n threads (one BLSTM job scales poorly past 1 thread)
  --retrain <true|false>  move a finished system to <exp-root>/old/ and train it again (default: false)"
cmd=
ngpu=0
train_jobs=1
retrain=false
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 5 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
tuning=$1 systems=$2 train=$3 valid=$4 exp=$5
[ "$train_jobs" -ge 1 ] || { echo "$0: --train-jobs $train_jobs: need 1 or more" >&2; exit 1; }
if [ "$ngpu" -gt 0 ] && [ "$train_jobs" -gt 1 ] && [[ $cmd == *run.py* ]]; then
  echo "$0: warning: --train-jobs $train_jobs with the local utils/run.py: every chain uses the first" \
    "$ngpu GPU(s); a scheduler in cuda_cmd (slurm.py, queue.py) gives each chain its own" >&2
fi
threads=0                                   # 0: the config's, for GPU jobs
[ "$ngpu" -gt 0 ] || threads=$(( $(nproc) / train_jobs > 0 ? $(nproc) / train_jobs : 1 ))
declare -A init_from=([def]=def_dc [def_joint]=def [dl_def]=def_joint)

train_system() {
  local system=$1 init=()
  # a .finished without best.pt (left by older versions) goes back to train.py, which repairs or says why
  if [ -f "$exp/$system/.finished" ] && [ -f "$exp/$system/best.pt" ] && ! $retrain; then
    echo "$0: $exp/$system finished training; skipped (--retrain true redoes it)"
    return 0
  fi
  if $retrain && [ -d "$exp/$system" ]; then  # keep the old run (out of RESULTS.md), never delete it
    mkdir -p "$exp/old"
    mv "$exp/$system" "$exp/old/$system.$(date +%Y%m%d-%H%M%S)"
  fi
  [ -z "${init_from[$system]:-}" ] || init=(--init "$exp/${init_from[$system]}/best.pt")
  echo "$0: training $system"
  "$COCKTAIL_ROOT/steps/train.sh" --cmd "$cmd" --ngpu "$ngpu" --num-threads "$threads" "${init[@]}" \
    "$tuning/$system.yaml" "$train" "$valid" "$exp/$system"
}

declare -A listed=()
trained=()                                  # the systems without oracles and repeats
for system in $systems; do
  case $system in oracle_*) continue ;; esac
  [ -f "$tuning/$system.yaml" ] || { echo "$0: no $tuning/$system.yaml: unknown system '$system'" >&2; exit 1; }
  [ -n "${listed[$system]:-}" ] || trained+=("$system")
  listed[$system]=1
done
chains=()                                   # each listed system after the listed one it starts from
for system in "${trained[@]}"; do
  parent=${init_from[$system]:-}
  [ -z "$parent" ] || [ -z "${listed[$parent]:-}" ] || continue  # trained in its parent's chain
  chain=$system last=$system
  while :; do
    next=
    for child in "${trained[@]}"; do [ "${init_from[$child]:-}" != "$last" ] || next=$child; done
    [ -n "$next" ] || break
    chain+=" $next" last=$next
  done
  chains+=("$chain")
done

pids=()
for chain in "${chains[@]}"; do
  while [ "$(jobs -pr | wc -l)" -ge "$train_jobs" ]; do sleep 2; done
  ( for system in $chain; do train_system "$system"; done ) &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
if [ "$failed" -gt 0 ]; then
  echo "$0: $failed training chain(s) failed: see the errors above and $exp/<system>/log/train.log" >&2
  exit 1
fi
