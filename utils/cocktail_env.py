"""Imported first, for its effect, by every utils/ script that uses the nnet package.

A script started by a Python that lacks nnet or its dependencies (no `. ./path.sh`: the shebang's
python3 is then the system one) is run again under the repository's .venv/bin/python, where
setup.sh installed them (nnet editable, so it is this checkout's); like Kaldi's utils/, these
scripts work without path.sh.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
VENV = os.path.join(ROOT, ".venv")

try:
    import nnet.datafiles  # noqa: F401  numpy, soundfile, kaldiio: what the scripts need
except ImportError as error:
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        raise  # .venv itself is broken: the real error says what is missing
    python = os.path.join(VENV, "bin", "python")
    if not os.access(python, os.X_OK):
        sys.exit(
            f"{os.path.basename(sys.argv[0])}: {error} in {sys.executable}, and {VENV} is missing: "
            f"run {ROOT}/setup.sh, then `. ./path.sh` in the recipe dir"
        )
    os.execv(python, [python, *sys.argv])
