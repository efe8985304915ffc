"""utils/ scripts that use the nnet package run without `. ./path.sh`, from a recipe dir through
its utils link, under a Python that has none of our dependencies (utils/cocktail_env.py)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The interpreter the .venv was made from, without site-packages (-S): no numpy, no soundfile, no nnet,
# like the system python3 a shebang finds when path.sh was not sourced.
BARE_PYTHON = [os.path.join(sys.base_prefix, "bin", "python3"), "-S"]
NNET_SCRIPTS = [
    "filter_scp",
    "fix_data_dir",
    "show_results",
    "split_data",
    "subset_data_dir",
    "utt2spk_to_spk2utt",
    "validate_data_dir",
]


def bare_env():
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


@pytest.mark.fault
@pytest.mark.parametrize("script", NNET_SCRIPTS)
def test_utils_script_runs_without_path_sh(script):
    """utils/<x>.py --help from egs/mini_2mix with a bare Python and no path.sh: runs, exit 0."""
    result = subprocess.run(
        [*BARE_PYTHON, f"utils/{script}.py", "--help"],
        cwd=ROOT / "egs" / "mini_2mix",
        env=bare_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert f"usage: utils/{script}.py" in result.stdout


def test_utils_script_does_its_work_without_path_sh(tmp_path):
    """Not only --help: a real table conversion, through the recipe's utils link."""
    utt2spk = tmp_path / "utt2spk"
    utt2spk.write_text("a s1\nb s1\nc s2\n")
    result = subprocess.run(
        [*BARE_PYTHON, "utils/utt2spk_to_spk2utt.py", str(utt2spk)],
        cwd=ROOT / "egs" / "mini_2mix",
        env=bare_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "s1 a b\ns2 c\n"


@pytest.mark.fault
def test_utils_script_without_venv_says_run_setup(tmp_path):
    """A checkout whose .venv was never made: exit 1 naming the missing .venv and setup.sh, no traceback."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "utils", checkout / "utils")
    shutil.copytree(ROOT / "nnet", checkout / "nnet", ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [*BARE_PYTHON, str(checkout / "utils" / "filter_scp.py"), "--help"],
        env=bare_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert f"{checkout}/.venv is missing: run {checkout}/setup.sh" in result.stderr
    assert "Traceback" not in result.stderr


# Directories whose .py files are run as scripts: Python puts a script's own directory first on
# sys.path, so a script named after a standard module (utils/queue.py once) replaces that module for
# every sibling script and all it imports (torch and concurrent.futures import queue).
SCRIPT_DIRS = ["utils", "local", "steps", "bench", "nnet/bin"]


def test_no_script_is_named_after_a_standard_module():
    shadowing = [
        f"{d}/{p.name}"
        for d in SCRIPT_DIRS
        for p in sorted((ROOT / d).glob("*.py"))
        if p.stem in sys.stdlib_module_names
    ]
    assert shadowing == []


def test_utils_scripts_leave_sys_path_alone():
    """A utils/ script finds its sibling modules (jobrunner, cocktail_env) through its own directory and
    nnet through .venv's editable install: no sys.path edits and no `# noqa: E402` imports after them."""
    edits = [
        f"utils/{p.name}:{n}: {line.strip()}"
        for p in sorted((ROOT / "utils").glob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "sys.path.insert" in line or "sys.path[0]" in line or "noqa: E402" in line
    ]
    assert edits == []
