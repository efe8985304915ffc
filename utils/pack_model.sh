#!/usr/bin/env bash
# Pack a trained system into one zip to share: utils/pack_model.sh exp/<system> <pack.zip>.
set -euo pipefail
echo "$0 $*"  # the command line first, for the log
help_message="Usage: $0 [options] <exp-dir> <pack.zip>
 e.g.: $0 --results RESULTS.md exp/chimerapp chimerapp.zip
The zip holds best.pt (weights, CMVN, STFT, config), config.yaml, the system's rows of RESULTS.md
that were scored on this best.pt's estimates (the others are left out, named) and meta.yaml (system, sample rate, speakers, head/inference/phase, training corpus and its licence
note, commit, torch/python versions, date, best.pt's sha256); nnet/pack.py describes it.
Use it with: nnet/bin/separate_wav.py --model <pack.zip> in.wav out/, or steps/separate.sh <pack.zip> ...
Show it: python3 -m nnet.bin.pack_model show <pack.zip>; unpack: ... unpack <pack.zip> <exp-dir>.
Options:
  --corpus <text>     what it was trained on (default: the recipe dir's name, e.g. mini_2mix)
  --license <text>    the training corpus's licence note (default: 'unknown: say it with --license')
  --citation <text>   what users of the model must cite, e.g. the corpus's paper (meta.yaml: citation)
  --results <file>    the recipe's RESULTS.md (default: RESULTS.md when it exists)
  --phase <mixture|griffin-lim|misi>  phase reconstruction users get by default (default: mixture)
  --head <mi|dc>      the head users get by default (default: the model's first, mi when it has one)
  --matched-inference <true|false>  users get k-means refined by matched run-time inference (dc head)
  --matched-steps <n> its Adam steps: the count its figures were measured with, e.g. the recipe's
                      rti_steps for its +rti rows (default: nnet/inference.py's MATCHED_STEPS)"
corpus=
license="unknown: say it with --license"
citation=
results=
phase=mixture
head=
matched_inference=false
matched_steps=
. "$(dirname "$0")/../path.sh"
. "$COCKTAIL_ROOT/utils/parse_options.sh"
[ $# -eq 2 ] || { echo "$help_message" >&2; exit 1; }
corpus=${corpus:-$(basename "$PWD")}
[ -n "$results" ] || [ ! -f RESULTS.md ] || results=RESULTS.md
opts=(--corpus "$corpus" --license "$license" --citation "$citation" --phase "$phase"
  --matched-inference "$matched_inference")
[ -z "$head" ] || opts+=(--head "$head")
[ -z "$matched_steps" ] || opts+=(--matched-steps "$matched_steps")
[ -z "$results" ] || opts+=(--results "$results")
python3 -m nnet.bin.pack_model pack "${opts[@]}" "$1" "$2"
