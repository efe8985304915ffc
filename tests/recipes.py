"""The recipes under egs/ and their tuning dirs, found rather than listed: a recipe copied in (or a
config added) is checked by the same tests as the others."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EGS = os.path.join(ROOT, "egs")

# every folder of egs/ with a run.sh
RECIPES = sorted(name for name in os.listdir(EGS) if os.path.isfile(os.path.join(EGS, name, "run.sh")))


def tuning_dirs():
    """Each recipe's conf/tuning once (egs/librimix's is a link to wsj0_2mix's), as real paths."""
    found = {os.path.realpath(os.path.join(EGS, name, "conf", "tuning")) for name in RECIPES}
    return sorted(path for path in found if os.path.isdir(path))
