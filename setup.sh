#!/usr/bin/env bash
# Usage: ./setup.sh
# Creates .venv, installs the nnet package with pinned dependencies and the system packages the
# recipes and tests use. Idempotent: a second run on a set-up tree only checks and returns.
#
# Environment:
#   COCKTAIL_TORCH   the torch requirement (default "torch==2.13.0": PyPI's build, CUDA on Linux; the CPU
#                    build where a local wheel is found first). Name the build to replace one already in
#                    .venv (pip takes 2.13.0+cpu as satisfying "torch==2.13.0"), e.g. for a GPU
#                    COCKTAIL_TORCH="torch==2.13.0+cu128 --index-url https://download.pytorch.org/whl/cu128"
#   COCKTAIL_SKIP_APT=1   do not install system packages (print what is missing instead)
set -euo pipefail
cd "$(dirname "$0")"

# espeak-ng: the mini corpus; slurm-wlm, munge: the Slurm tests;
# gridengine-*: the Grid Engine tests.
sys_pkgs="espeak-ng slurm-wlm munge gridengine-master gridengine-exec gridengine-client"
missing=""
for p in $sys_pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && [ "${COCKTAIL_SKIP_APT:-0}" != 1 ] && command -v apt-get >/dev/null; then
    echo "setup.sh: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup.sh: please install these system packages (as root):"
    echo "  apt-get install$missing"
  fi
fi

torch_req=${COCKTAIL_TORCH:-torch==2.13.0}
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.cocktail-installed
want="$(cat pyproject.toml; echo "$torch_req")"
if [ -f $stamp ] && [ "$(cat $stamp)" = "$want" ]; then
  echo "setup.sh: .venv is up to date"
  exit 0
fi
pip="./.venv/bin/python -m pip --disable-pip-version-check"
# shellcheck disable=SC2086
$pip install -q $torch_req
$pip install -q -e ".[test]"
./.venv/bin/python -c "import torch, kaldiio, soundfile, pesq, mir_eval, nnet; print('setup.sh: torch', torch.__version__, 'ready in .venv')"
echo "$want" > $stamp
