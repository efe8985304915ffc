#!/usr/bin/env bash
# Train several systems (stage 3 of the recipes). A config with `init_from: <system>` starts from
# that system's best weights (the DL-DEF chain def_dc -> def -> def_joint -> dl_def), so a chain
# trains in order; independent chains train side by side, --train-jobs at a time. The chains come
# from the configs (nnet/config.py chains), never from a list here.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <tuning-dir> \"<systems>\" <train-dir> <valid-dir> <exp-root>
 e.g.: $0 --train-jobs 2 conf/tuning \"dc upit def_dc def\" data/tr data/cv exp
Trains <exp-root>/<system>/ from <tuning-dir>/<system>.yaml with steps/train.sh; oracle_* systems
and repeats are skipped, and so is a system that finished training unless --retrain true, provided
it was trained from this config, these data dirs and STFT (else it is refused, naming what differs). A
system whose config has init_from: <other> trains after <other>, in the same chain.
Options:
  --cmd <runner>          job runner (default: utils/run.py; \$cuda_cmd for GPUs)
  --ngpu <n>              GPUs per system (default: 0, the CPU)
  --train-jobs <n>        chains trained at once (default: 1); on the CPU each job gets
                          nproc / n threads (one BLSTM job scales poorly past 1 thread)
  --retrain <true|false>  move a finished system to <exp-root>/old/ and train it again (default: false)
  --set \"<key=value> ...\"  keys set in every system's config, <section>.<key>=<value> each,
                          space-separated: --set \"training.epochs=2\" (steps/train.sh --set); a
                          finished system trained without them is refused (--retrain true) (default: none)
  --num-spk <n>           sources per mixture C of every system, a chain's members alike: --set
                          model.num_spk=<n> (default: 0, the configs')"
cmd=
ngpu=0
train_jobs=1
retrain=false
set=
num_spk=0
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
. "$COCKTAIL_ROOT/utils/background_jobs.sh"
[ $# -eq 5 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
tuning=$1 systems=$2 train=$3 valid=$4 exp=$5
[ "$train_jobs" -ge 1 ] || { echo "$0: --train-jobs $train_jobs: need 1 or more" >&2; exit 1; }
if [ "$ngpu" -gt 0 ] && [ "$train_jobs" -gt 1 ] && [[ $cmd == *run.py* ]]; then
  echo "$0: warning: --train-jobs $train_jobs with the local utils/run.py: every chain uses the first" \
    "$ngpu GPU(s); a scheduler in cuda_cmd (slurm.py, gridengine.py) gives each chain its own" >&2
fi
set_opts=()                                 # nnet.provenance check-training's, as train.py's
read -ra words <<< "$set"
for word in "${words[@]}"; do set_opts+=(--set "$word"); done
threads=0                                   # 0: the config's, for GPU jobs
[ "$ngpu" -gt 0 ] || threads=$(cpu_share "$train_jobs")

train_system() {
  local system=$1
  # a .finished without best.pt (best.pt deleted or lost) goes back to train.py, which repairs it from
  # last.pt or says why it cannot
  if [ -f "$exp/$system/.finished" ] && [ -f "$exp/$system/best.pt" ] && ! $retrain; then
    # reused only if trained from this config (its content, --set included), these data dirs and this
    # STFT: else refused naming what differs (nnet/provenance.py)
    python3 -m nnet.provenance check-training --num-spk "$num_spk" "${set_opts[@]}" \
      "$tuning/$system.yaml" "$train" "$valid" "$exp/$system" || return 1
    echo "$0: $exp/$system finished training; skipped (--retrain true redoes it)"
    return 0
  fi
  if $retrain && [ -d "$exp/$system" ]; then  # keep the old run (out of RESULTS.md), never delete it
    mkdir -p "$exp/old"
    mv "$exp/$system" "$exp/old/$system.$(date +%Y%m%d-%H%M%S)"
  fi
  echo "$0: training $system"
  "$COCKTAIL_ROOT/steps/train.sh" --cmd "$cmd" --ngpu "$ngpu" --num-threads "$threads" --set "$set" \
    --num-spk "$num_spk" "$tuning/$system.yaml" "$train" "$valid" "$exp/$system"
}

# one line per chain, each system after the one it starts from; every config is checked first
chain_lines=$(python3 -m nnet.config chains "$tuning" "$exp" $systems) || exit 1
mapfile -t chains <<< "$chain_lines"
[ -n "$chain_lines" ] || chains=()

train_chain() { local system; for system in $1; do train_system "$system"; done; }
run_in_background "$train_jobs" train_chain "${chains[@]}"
if [ "$failed_jobs" -gt 0 ]; then
  echo "$0: $failed_jobs training chain(s) failed: see the errors above and $exp/<system>/log/train.log" >&2
  exit 1
fi
