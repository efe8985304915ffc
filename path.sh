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
# its tens of MiB of tensors afresh. Keeping freed memory in the process for reuse made the mini
# chimera++ train 1.07x more frames/s (5 rounds side by side, 1 thread); each process keeps its
# peak memory instead (+50 MiB for that training). glibc 2.36 takes a 1 GiB mmap threshold; older
# ones may refuse more than 32 MiB, and a refused threshold with a raised trim threshold is slower
# than the default, so they get 32 MiB. Malloc settings of your own in GLIBC_TUNABLES win.
_mmap_threshold=33554432
case $(getconf GNU_LIBC_VERSION 2>/dev/null) in
  "glibc 2.3"[6-9]*|"glibc 2."[4-9][0-9]*) _mmap_threshold=1073741824 ;;
esac
case ${GLIBC_TUNABLES:-} in
  *glibc.malloc.mmap_threshold*|*glibc.malloc.trim_threshold*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.mmap_threshold=$_mmap_threshold:glibc.malloc.trim_threshold=4294967296" ;;
esac
unset _mmap_threshold
export PYTHONUNBUFFERED=1
