#!/usr/bin/env bash
# The real-speech recipe at the paper's network size on a lent GPU, as one command that ends well
# inside the device tool's 10-minute limit (issue 22): chimera++ 4 x 600, D = 40, on speechocean762
# mixtures, with its learning curve, the full-tt score of its best epoch and the share of data
# loading in a GPU epoch. Prepare here, then run there:
#   here:  .venv/bin/python bench/gpu_speech_bundle.py --corpus ../shared/corpora/speechocean762 --out .gpu
#          (.gpu/ is git-ignored; carry it: run(carry=[".gpu"], ...))
#   there, with bench/gpu_check.py after it in the same call (it needs the bundle's packages too):
#          bench/gpu_speech.sh --minutes 6 .gpu $OUT; PYTHONPATH=/tmp/cocktail_site:$PWD \
#            timeout 200 python3 bench/gpu_check.py --device cuda --report $OUT/gpu_check.md
set -euo pipefail
help_message="Usage: $0 [options] <bundle> <out-dir>
Makes the mixtures (stages 0-2 of egs/speechocean762/run.sh) from <bundle>/speechocean762, trains
--config with bench/learning_curve.py on --device until --hours of training (or its early stop),
scores best.pt on the first --final-test-mixtures tt mixtures, and measures data loading with
bench/bench_training.py. Writes six files to <out-dir> (the device tool returns at most eight):
report.md (each step's status and seconds, the headline figures), learning_curve.tsv,
learning_curve_best.txt, history.tsv, bench_training.txt and steps.log (the other steps' output).
Every step gets what is left of --minutes but a reserve for the steps after it, and the learning
curve stops early enough for its final scoring. A second run on the same machine reuses the
mixtures and resumes the training.
Options:
  --device <cuda|cpu>        (default: cuda; cpu: a dry run at a tiny size, as tests/test_gpu_speech.py)
  --config <yaml>            (default: egs/speechocean762/conf/tuning/chimerapp_4x600_long.yaml)
  --hours <h>                training hours of the learning curve at most (default: 0.1); it also
                             stops in time for the final scoring within --minutes
  --minutes <m>              the whole command's budget, whole minutes (default: 9)
  --sizes \"<tr> <cv> <tt>\"   mixtures of stage 0 (default: \"1800 200 1200\", the recipe's)
  --test-mixtures <n>        tt mixtures scored after an epoch (default: 300)
  --score-every <n>          score every n-th epoch and the last (default: 4)
  --final-test-mixtures <n>  tt mixtures best.pt is scored on at the end (default: 1200)
  --nj <n>                   jobs of stages 0-2 and scoring processes (default: nproc)
  --recipe <dir>             the recipe dir to run in (default: egs/speechocean762); one with data/
                             or corpus/ of its own is refused
  --site <dir>               where the bundle's wheels are installed (default: /tmp/cocktail_site)"
root=$(cd "$(dirname "$0")/.." && pwd)
device=cuda
config=$root/egs/speechocean762/conf/tuning/chimerapp_4x600_long.yaml
hours=0.1
site=/tmp/cocktail_site
minutes=9
sizes="1800 200 1200"
test_mixtures=300
score_every=4
final_test_mixtures=1200
nj=$(nproc)
recipe=$root/egs/speechocean762
while [[ $# -gt 0 && $1 == --* ]]; do
  [[ $# -ge 2 ]] || { echo "$0: $1 needs a value" >&2; exit 1; }
  name=${1#--}; name=${name//-/_}
  case $name in
    device | config | hours | minutes | sizes | test_mixtures | score_every | final_test_mixtures | nj | recipe | site)
      printf -v "$name" '%s' "$2" ;;
    *) echo "$0: unknown option $1" >&2; echo "$help_message" >&2; exit 1 ;;
  esac
  shift 2
done
[[ $# -eq 2 ]] || { echo "$help_message" >&2; exit 1; }
bundle=$(cd "$1" && pwd) out=$2
[[ -d $bundle/speechocean762/WAVE ]] || {
  echo "$0: $bundle/speechocean762/WAVE not found: make the bundle with bench/gpu_speech_bundle.py" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
config=$(readlink -f "$config")
read -r num_tr num_cv num_tt <<< "$sizes"
deadline=$(( $(date +%s) + ${minutes%.*} * 60 ))
report=$out/report.md
echo "# bench/gpu_speech.sh --device $device --hours $hours ($(date '+%Y-%m-%d %H:%M:%S'), $(hostname))" > "$report"
failed=0

# step <name> <reserve-seconds> <log> <command>...: runs the command with what is left of the budget but
# the reserve (for the steps after it), adds its output to <out>/<log> and a line to the report
step() {
  local name=$1 reserve=$2 log=$out/$3 left start rc=0
  shift 3
  left=$(( deadline - $(date +%s) - reserve ))
  if (( left < 10 )); then
    echo "- $name: skipped, the budget is spent" >> "$report"; failed=1; return 0
  fi
  start=$(date +%s)
  echo "== $name: $*" >> "$log"
  timeout --kill-after 10 "$left" "$@" >> "$log" 2>&1 || rc=$?
  echo "- $name: $([[ $rc -eq 0 ]] && echo ok || echo "FAILED (exit $rc; 124: out of time)"), $(( $(date +%s) - start )) s" >> "$report"
  [[ $rc -eq 0 ]] || { failed=1; tail -n 20 "$log" >&2; }
  return 0
}

give_up() { echo "- $1" >> "$report"; cat "$report"; exit 1; }

. "$root/path.sh"  # this checkout on PYTHONPATH; its .venv where there is one (not on the GPU machine)
# the GPU machine's image has torch, numpy, scipy, PyYAML and matplotlib; the bundle brings the rest
if ls "$bundle"/wheels/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" "$bundle"/wheels/*.whl \
    >> "$out/steps.log" 2>&1 || give_up "packages: pip install of $bundle/wheels into $site FAILED (steps.log)"
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
fi
echo "- PYTHONPATH: $PYTHONPATH" >> "$report"
# what the steps import, at once: a missing package costs seconds here, not a stage's minutes
python3 -c "import torch, soundfile, kaldiio, yaml, nnet.train, nnet.separator, nnet.metrics
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '', 'soundfile from', soundfile.__file__)" \
  >> "$report" 2>> "$out/steps.log" || give_up "imports FAILED (steps.log): a package missing from $bundle/wheels?"

cd "$recipe"
exp=exp/$(basename "$config" .yaml)_gpu
made_from="$bundle $sizes"  # what data/ is made from: a second run on the same machine reuses it
if [[ -f data/tt/feats.scp && "$(cat data/.gpu_speech 2>/dev/null)" == "$made_from" ]]; then
  echo "- stages_0_2: reused $recipe/data" >> "$report"
elif [[ -e data || -e corpus ]]; then  # never over a user's own run of the recipe
  give_up "stages_0_2: $recipe holds data/ or corpus/ not made by $0 from $made_from: give --recipe a copy"
else
  step stages_0_2 150 steps.log ./run.sh --stage 0 --stop-stage 2 --nj "$nj" --speechocean762 "$bundle/speechocean762" \
    --num-tr "$num_tr" --num-cv "$num_cv" --num-tt "$num_tt"
  [[ -f data/tt/feats.scp ]] && echo "$made_from" > data/.gpu_speech
fi
if [[ -f data/tt/feats.scp ]]; then
  read -r batch frames < <(python3 -c "import sys, yaml; t = yaml.safe_load(open(sys.argv[1]))['training']
print(t['batch_size'], t['segment_frames'])" "$config") || give_up "$config: no training.batch_size, segment_frames"
  # the learning curve stops in time for its final scoring and the data loading bench (60 s); its clock
  # starts once torch, the data and the scoring processes are up (30 s)
  wall=$(python3 -c "import sys; print(max(0.5, (int(sys.argv[1]) - int(sys.argv[2]) - 90) / 60))" "$deadline" "$(date +%s)")
  step learning_curve 60 steps.log python3 "$root/bench/learning_curve.py" \
    --config "$config" --train data/tr --valid data/cv --test data/tt --exp "$exp" --hours "$hours" \
    --device "$device" --score-jobs "$nj" --test-mixtures "$test_mixtures" --score-every "$score_every" \
    --final-test-mixtures "$final_test_mixtures" --wall-minutes "$wall"
  step bench_training 0 bench_training.txt python3 "$root/bench/bench_training.py" \
    --config "$config" --device "$device" --batch "$batch" --frames "$frames" --data-dir data/tr --valid-dir data/cv
  for f in learning_curve.tsv learning_curve_best.txt history.tsv; do
    [[ -f $exp/$f ]] && cp "$exp/$f" "$out/"
  done
  # the headline figures in the report too: best.pt on tt, and the parts of a GPU epoch
  [[ -f $out/learning_curve_best.txt ]] && sed 's/^/    /' "$out/learning_curve_best.txt" >> "$report"
  grep -h "epoch of" "$out/bench_training.txt" >> "$report" 2>/dev/null || true
fi
echo "- total: $(( $(date +%s) - deadline + ${minutes%.*} * 60 )) s" >> "$report"
cat "$report"
exit $failed
