"""Every subprocess a test starts runs this checkout's code: the checkout's root goes first on
PYTHONPATH, ahead of whatever `nnet` the interpreter's site-packages would find (another checkout's
editable install, when a worktree or clone reuses a .venv); scripts run by path and `python -m` alike."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != ROOT]
os.environ["PYTHONPATH"] = os.pathsep.join([ROOT, *_rest])
