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
export PYTHONUNBUFFERED=1
