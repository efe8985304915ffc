"""Issue 26, item 1: a recipe's defaults fit the machine at hand (--nj its cores, --ngpu 1 only with
a GPU that torch can use), the same in every recipe (utils/recipe.sh, utils/gpus.py), and training
with GPUs that are not there stops with a message naming run.sh's --ngpu 0."""

import os
import subprocess
import sys

import pytest
import torch

from recipes import RECIPES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_nvidia_smi(folder, gpus):
    """An nvidia-smi on PATH that lists `gpus` GPUs (none: the driver's 'No devices were found')."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "nvidia-smi")
    lines = "".join(f"echo 'GPU {k}: NVIDIA Fake (UUID: GPU-{k})'\n" for k in range(gpus))
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + (lines or "echo 'No devices were found'; exit 6\n"))
    os.chmod(path, 0o755)
    return folder


def env_with(tmp_path, gpus, cuda_visible_devices=None):
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PATH"] = fake_nvidia_smi(str(tmp_path / f"bin{gpus}"), gpus) + os.pathsep + env["PATH"]
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    return env


def option_values(recipe, env):
    """{option: value} of `run.sh --help`, which prints each option's value after the defaults ran."""
    result = subprocess.run(
        ["./run.sh", "--help"], cwd=os.path.join(ROOT, "egs", recipe), env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split()[:2] for line in result.stdout.splitlines() if line.startswith("  --")), result.stderr


@pytest.mark.parametrize("recipe", RECIPES)
def test_defaults_on_a_machine_without_a_gpu_are_the_cpu_and_its_cores(recipe, tmp_path):
    env = env_with(tmp_path, 0)
    cores = subprocess.run(["nproc"], env=env, capture_output=True, text=True, check=True).stdout.strip()
    values, _ = option_values(recipe, env)
    assert values["--ngpu"] == "0" and values["--nj"] == cores


@pytest.mark.parametrize(
    "gpus, visible, count",
    [(2, None, "2"), (0, None, "0"), (2, "", "0"), (0, "3,1", "2"), (0, "0,-1,2", "1"), (2, "GPU-0", "1")],
)
def test_gpus_are_counted_by_the_local_runners_rule(gpus, visible, count, tmp_path):
    """CUDA_VISIBLE_DEVICES when set (a negative id hides the rest), else nvidia-smi -L's lines."""
    result = subprocess.run(
        [os.path.join(ROOT, "utils", "gpus.py"), "count"],
        env=env_with(tmp_path, gpus, visible),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == count


@pytest.mark.skipif(torch.cuda.is_available(), reason="torch here can use a GPU")
def test_a_visible_gpu_that_torch_cannot_use_leaves_the_default_on_the_cpu(tmp_path):
    values, stderr = option_values("librimix", env_with(tmp_path, 1))
    assert values["--ngpu"] == "0"
    assert "a GPU is visible" in stderr and "training on the CPU (--ngpu 0)" in stderr


def test_forcing_ngpu_1_without_a_gpu_names_run_sh_option_before_any_training(tmp_path):
    recipe = tmp_path / "librimix"
    copied = subprocess.run(
        [os.path.join(ROOT, "utils", "copy_recipe.sh"), os.path.join(ROOT, "egs", "librimix"), str(recipe)],
        capture_output=True,
        text=True,
    )
    assert copied.returncode == 0, copied.stderr
    result = subprocess.run(
        ["./run.sh", "--stage", "3", "--ngpu", "1", "--systems", "oracle_irm chimerapp"],
        cwd=recipe,
        env=env_with(tmp_path, 0, ""),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "--ngpu 1 but 0 GPU(s) visible here (CUDA_VISIBLE_DEVICES='')" in result.stderr
    assert "train on the CPU with --ngpu 0 (run.sh's option" in result.stderr
    assert "No such file" not in result.stderr and not (recipe / "exp").exists()
    assert "stage 4" not in result.stdout
    # oracle masks train nothing: no GPU is needed for them, nor asked for
    result = subprocess.run(
        ["./run.sh", "--stage", "3", "--stop-stage", "3", "--ngpu", "1", "--systems", "oracle_irm"],
        cwd=recipe,
        env=env_with(tmp_path, 0, ""),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_train_sh_says_the_runner_refused_instead_of_a_missing_log(tmp_path):
    """run.py refuses --gpu 1 without a GPU before it writes the log: train.sh says so (and that an
    older train.log is not this run's), where it once spilled grep's 'No such file or directory'."""
    exp = tmp_path / "exp" / "chimerapp"
    args = ["--ngpu", "1", os.path.join(ROOT, "egs", "mini_2mix", "conf", "tuning", "chimerapp.yaml")]
    args += [str(tmp_path / "tr"), str(tmp_path / "cv"), str(exp)]
    env = env_with(tmp_path, 0, "")
    for former_log in (False, True):
        if former_log:
            (exp / "log" / "train.log").write_text("train.py: an error of a former run\n")
            os.utime(exp / "log" / "train.log", (1, 1))
        result = subprocess.run(
            [os.path.join(ROOT, "steps", "train.sh"), *args], env=env, capture_output=True, text=True
        )
        assert result.returncode == 1
        assert "No such file" not in result.stderr and "a former run" not in result.stderr
        assert "--gpu 1 but 0 GPU(s) visible" in result.stderr  # run.py's own message, kept
        assert "did not start train.py" in result.stderr and "train on the CPU with --ngpu 0" in result.stderr


@pytest.mark.parametrize("recipe", ("librimix", "wsj0_2mix", "speechocean762"))
def test_the_quick_run_configs_hold_every_system_of_the_recipe(recipe, tmp_path):
    """README's quick first run takes the mini recipe's small networks, --tuning ../mini_2mix/conf/tuning:
    every system a recipe trains by default has its config there, its init_from chain included, and
    every config passes the checks training makes first."""
    work = os.path.join(ROOT, "egs", recipe)
    with open(os.path.join(work, "run.sh")) as f:
        systems = next(line for line in f if line.startswith("systems=")).split('"')[1].split()
    result = subprocess.run(
        [sys.executable, "-m", "nnet.config", "chains", "../mini_2mix/conf/tuning", str(tmp_path / "exp"), *systems],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    trained = [s for s in systems if not s.startswith("oracle_")]
    assert sorted(result.stdout.split()) == sorted(trained)
