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


@pytest.mark.fault
@pytest.mark.parametrize("stage", ["3", "4"])
@pytest.mark.parametrize(
    "system, message",
    [
        (
            "nosuch",
            "config.py: --systems: unknown system 'nosuch': there is no conf/tuning/nosuch.yaml and no exp/nosuch: "
            "check the name",
        ),
        (
            "oracle_xyz",
            "config.py: --systems: unknown oracle system 'oracle_xyz': the oracle systems are oracle_ibm, "
            "oracle_irm, oracle_psm",
        ),
    ],
)
def test_run_sh_refuses_a_system_that_names_nothing(stage, system, message):
    """A typo in --systems: stage 4 used to say "train the system first" and stage 3 skipped an
    unknown oracle_* silently; now exit 1 naming what is missing, before any stage runs."""
    result = subprocess.run(
        ["./run.sh", "--stage", stage, "--systems", f"{system} chimerapp"],
        cwd=ROOT / "egs" / "mini_2mix",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr
    assert f"stage {stage}:" not in result.stdout


@pytest.mark.fault
@pytest.mark.parametrize("recipe", ["mini_2mix", "wsj0_2mix", "librimix", "speechocean762"])
def test_run_sh_from_another_dir_says_to_run_it_from_its_own(recipe):
    """`egs/<recipe>/run.sh` from the repository root used to fail on `./path.sh: No such file`."""
    result = subprocess.run(["bash", f"egs/{recipe}/run.sh", "--stage", "2"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"egs/{recipe}/run.sh: run it from its dir: cd egs/{recipe} && ./run.sh ..." in result.stderr
    assert "stage 2:" not in result.stdout
