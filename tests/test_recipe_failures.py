"""The recipes' own argument checks: a run.sh that was asked for nothing it can do says so and
exits non-zero before touching any stage."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.fault
@pytest.mark.parametrize("recipe", ["mini_2mix", "wsj0_2mix"])
@pytest.mark.parametrize(
    "args, message",
    [
        (["--stage", "7"], "stages are 0..5; got --stage 7 --stop-stage 5"),
        (["--stage", "0", "--stop-stage", "9"], "stages are 0..5; got --stage 0 --stop-stage 9"),
        (["--stage", "4", "--stop-stage", "2"], "--stage 4 is after --stop-stage 2: nothing would run"),
        (["--stage", "two"], "must be whole numbers 0..5, got 'two'"),
        (["--stop-stage", "-1"], "must be whole numbers 0..5, got '-1'"),
    ],
)
def test_run_sh_refuses_stages_it_does_not_have(recipe, args, message):
    """--stage/--stop-stage outside 0..5 or in the wrong order: exit 1 naming them, no stage runs."""
    result = subprocess.run(["./run.sh", *args], cwd=ROOT / "egs" / recipe, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert "stage 0:" not in result.stdout and "stage 1:" not in result.stdout
