# Sourced by every run.sh (through the recipe's path.sh link) and every steps/ script.
# Puts the repository root on PYTHONPATH and PATH (utils/, steps/), activates .venv.
COCKTAIL_ROOT=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")  # through the recipe's link
export COCKTAIL_ROOT
if [ -f "$COCKTAIL_ROOT/.venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "$COCKTAIL_ROOT/.venv/bin/activate"
else
  echo "path.sh: $COCKTAIL_ROOT/.venv is missing: run $COCKTAIL_ROOT/setup.sh first" >&2
fi
export PYTHONPATH="$COCKTAIL_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$COCKTAIL_ROOT/utils:$PATH"
export LC_ALL=C
# glibc's malloc returns large freed blocks to the kernel (mmap'ed ones above a threshold that
# grows to at most 32 MiB, and the heap's top above 128 KiB), so every training step page-faults
# its tens of MiB of tensors afresh. Keeping freed memory in the process for reuse made a mini
# chimera++ training step 15-30% faster on 2 CPU cores (1 thread: 0.58-0.71 -> 0.48 s; system time
# halved); memory stays at the process's peak instead. A GLIBC_TUNABLES of your own is kept.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296}"
export PYTHONUNBUFFERED=1
