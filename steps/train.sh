#!/usr/bin/env bash
# Train one system from its YAML config; resumes from <exp-dir>/last.pt after an interruption.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <config.yaml> <train-dir> <valid-dir> <exp-dir>
 e.g.: $0 --cmd \"\$cuda_cmd\" --ngpu 1 conf/tuning/chimerapp.yaml data/tr data/cv exp/chimerapp
Writes <exp-dir>/{config.yaml,provenance.yaml,last.pt,best.pt,history.tsv,loss.png,log/train.log}.
A re-run resumes the run recorded in provenance.yaml, or refuses naming what differs (config keys,
data dirs); a second training of <exp-dir> is refused while this one runs (<exp-dir>/.lock).
Options:
  --cmd <runner>     job runner (default: utils/run.py; \$cuda_cmd for GPUs)
  --ngpu <n>         GPUs (default: 0, the CPU); n > 1 trains with DistributedDataParallel
  --num-procs <n>    DDP processes on CPU when --ngpu 0 (default: 1)
  --num-threads <n>  CPU threads per process; the runner is asked for n x processes (default: 0,
                     the config's training.num_threads, else cores / processes); run.sh sets it
                     to the job's share of the cores (--train-jobs)
  --set \"<key=value> ...\"  keys of the config set without editing it, <section>.<key>=<value>
                     each, space-separated: --set \"training.epochs=2 loss.alpha=0.5\" (train.py --set);
                     <exp-dir>/config.yaml and provenance.yaml record them (default: none)
  --num-spk <n>      sources per mixture C: --set model.num_spk=<n> (default: 0, the config's);
                     run.sh passes its --num-spk
A config with init_from: <system> starts from <exp-dir>/../<system>/best.pt (the DL-DEF chain)."
cmd=
ngpu=0
num_procs=1
num_threads=0
set=
num_spk=0
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 4 ] || { echo "$help_message" >&2; exit 1; }
cmd=${cmd:-"$COCKTAIL_ROOT/utils/run.py"}
config=$1 train=$2 valid=$3 exp=$4
[ -f "$config" ] || { echo "$0: config $config not found" >&2; exit 1; }
mkdir -p "$exp/log"
# One writer per exp dir: a second training here would mix its checkpoints, config and log with this
# one's. The lock (nnet/provenance.py) is held on fd 9 until this script ends, the job's log included;
# train.py knows it from COCKTAIL_EXP_LOCK. A killed run's lock goes with its processes.
exec 9>>"$exp/.lock"
python3 -m nnet.provenance lock --fd 9 "$exp" || exit 1
trap ': > "$exp/.lock"' EXIT  # a holder line left behind means a run that did not end cleanly
COCKTAIL_EXP_LOCK=$(cd "$exp" && pwd -P)
export COCKTAIL_EXP_LOCK
set_opts=()
read -ra words <<< "$set"
for word in "${words[@]}"; do set_opts+=(--set "$word"); done
runner_opt=()
[ "$ngpu" -eq 0 ] || runner_opt=(--gpu "$ngpu")
procs=$(( num_procs > ngpu ? num_procs : ngpu )); [ "$procs" -ge 1 ] || procs=1
[ "$num_threads" -eq 0 ] || runner_opt+=(--num-threads $((num_threads * procs)))  # Slurm/SGE slots
log=$exp/log/train.log
started=$(date +%s)  # a train.log older than this is a former run's
if ! $cmd "${runner_opt[@]}" "$log" \
  python3 -m nnet.bin.train --ngpu "$ngpu" --num-procs "$num_procs" --num-threads "$num_threads" \
    --num-spk "$num_spk" "${set_opts[@]}" "$config" "$train" "$valid" "$exp"; then
  # train.py's own errors (its progress lines start with a date), a crash's end, or a runner's refusal
  hint=
  [ "$ngpu" -eq 0 ] || hint="; if it says no GPU is visible: train on the CPU with --ngpu 0 (run.sh's option too)"
  "$COCKTAIL_ROOT/utils/job_errors.sh" --hint "$hint" "$0" train.py "$started" "$log"
  exit 1
fi
echo "$0: trained $exp ($(tail -n 1 "$exp/history.tsv" | cut -f1) epochs); log: $log"
