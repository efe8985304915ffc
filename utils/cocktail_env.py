"""Imported first, for its effect, by every utils/ script that uses the nnet package.

- utils/ leaves the front of sys.path for the repository root (utils/queue.py would shadow the
  standard queue module that torch and concurrent.futures import), so `nnet` is this checkout's.
- A script started by a Python that lacks nnet's dependencies (no `. ./path.sh`: the shebang's
  python3 is then the system one) is run again under the repository's .venv/bin/python, where
  setup.sh installed them; like Kaldi's utils/, these scripts work without path.sh.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
VENV = os.path.join(ROOT, ".venv")

sys.path[0] = ROOT
try:
    import nnet.io  # noqa: F401  numpy, soundfile, kaldiio: what the scripts need
except ImportError as error:
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        raise  # .venv itself is broken: the real error says what is missing
    python = os.path.join(VENV, "bin", "python")
    if not os.access(python, os.X_OK):
        sys.exit(f"{os.path.basename(sys.argv[0])}: {error} in {sys.executable}, and {VENV} is missing: "
                 f"run {ROOT}/setup.sh, then `. ./path.sh` in the recipe dir")
    os.execv(python, [python, *sys.argv])
