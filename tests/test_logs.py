"""Logs a user can read back: a step's first output line is its command line (Kaldi's habit), run.sh
--help lists every option with its default, and run.sh stamps each stage's start and elapsed time."""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from recipes import RECIPES
from test_data_prep import lists_of, make_corpus

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "step, args",
    [
        ("steps/make_feats.sh", ["--nj", "2", "nodata", "exp/log", "feats"]),
        ("steps/score.sh", ["--nj", "2", "nodata", "nosep", "exp/score"]),
        ("steps/separate.sh", ["--nj", "2", "exp/nosystem", "nodata", "exp/out"]),
        ("steps/separate_oracle.sh", ["--mask", "irm", "nodata", "exp/out"]),
        ("steps/sweep_alpha.sh", ["--alphas", "0.5 0.9", "none.yaml", "tr", "cv", "exp/sweep"]),
        ("steps/train.sh", ["none.yaml", "tr", "cv", "exp/none"]),
        ("steps/train_chains.sh", ["conf/none", "a b", "tr", "cv", "exp"]),
    ],
)
def test_step_prints_its_command_line_first(step, args, tmp_path):
    """Each step fails here (its inputs do not exist), after printing `$0 $*` as its first line."""
    os.symlink(ROOT / "steps", tmp_path / "steps")
    result = subprocess.run([step, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stdout.splitlines()[0] == " ".join([step, *args])


def option_defaults(run_sh):
    """{variable: default} of the assignments at the start of a line before parse_options.sh."""
    options = {}
    for line in run_sh.read_text().splitlines():
        if re.match(r"\.\s.*parse_options\.sh", line):
            return options
        match = re.match(r"([a-z][a-z0-9_]*)=(.*)", line)
        if match and match.group(1) != "help_message":
            value = shlex.split(match.group(2), comments=True)
            options[match.group(1)] = value[0] if value else ""
    raise AssertionError(f"{run_sh} does not source utils/parse_options.sh")


@pytest.mark.parametrize("recipe", RECIPES)
def test_run_sh_help_lists_every_option_with_its_default(recipe):
    """--help: one line per option variable, `--name-with-dashes <default>` ("" around an empty or
    multi-word default)."""
    work = ROOT / "egs" / recipe
    options = option_defaults(work / "run.sh")
    assert {"stage", "stop_stage", "nj", "systems", "train_jobs"} <= set(options)
    result = subprocess.run(["./run.sh", "--help"], cwd=work, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    missing = []
    for name, default in options.items():
        shown = f'"{default}"' if default == "" or " " in default else default
        if default.startswith("$("):  # a default of the machine's (tests/test_recipe_defaults.py checks it)
            shown = ""
        if not any(line.startswith(f"--{name.replace('_', '-')} {shown}") for line in lines):
            missing.append(f"--{name.replace('_', '-')} {shown}")
    assert missing == []
    assert [line.split()[0] for line in lines if line.startswith("--") and "_" in line.split()[0]] == []  # dashes


def test_run_sh_stamps_each_stage_start_and_elapsed_time(tmp_path):
    """wsj0_2mix stage 1 on a tiny tree: 'stage 1:' with its start time, then its elapsed time."""
    work = tmp_path / "recipe"
    work.mkdir()
    recipe = ROOT / "egs" / "wsj0_2mix"
    for name in ("run.sh", "cmd.sh", "conf"):
        (shutil.copytree if (recipe / name).is_dir() else shutil.copy)(recipe / name, work / name)
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(ROOT / name, work / name)
    corpus = make_corpus(tmp_path / "wsj0-2mix" / "wav8k" / "min")
    result = subprocess.run(
        [
            "./run.sh",
            "--wsj0-2mix",
            str(tmp_path / "wsj0-2mix"),
            "--mixlists",
            str(lists_of(corpus)),
            "--stage",
            "1",
            "--stop-stage",
            "1",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.search(rf"(?m)^{stamp} stage 1: data dirs ", result.stdout), result.stdout
    assert re.search(rf"(?m)^{stamp} stage 1 finished in \d+:\d\d:\d\d$", result.stdout), result.stdout
    assert "stage 0" not in result.stdout and "stage 2" not in result.stdout
