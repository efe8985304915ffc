"""bench/gpu_check.py, the one command for a lent GPU, run here at its tiny CPU size so that it is
known to work before a GPU is ever lent (issue 11)."""

import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, "bench", "gpu_check.py")
STEPS = [
    "env",
    "data",
    "features",
    "train_fp32",
    "train_bf16",
    "torchrun",
    "bench_training",
    "bench_separation",
    "bench_dc_memory",
]


def step_status(report):
    return dict(re.findall(r"^\| (\w+) \| ([^|]+?) \| [\d.]+ \| \d+ \|$", report, re.M))


def test_gpu_check_runs_every_step_on_cpu(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            CHECK,
            "--device",
            "cpu",
            "--scale",
            "4",
            "--report",
            str(tmp_path / "report.md"),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = (tmp_path / "report.md").read_text()
    assert run.returncode == 0, report
    assert step_status(report) == dict.fromkeys(STEPS, "ok")
    assert "all_reduce ok gloo 4.0" in report  # the process-group check ran
    assert re.search(r"cpu: +[\d.]+ s/step +\d+ frames/s", report)  # bench_training's figure
    assert "RTF" in report and "peak" in report  # bench_separation, bench_dc_memory
    for exp in ("exp_train_fp32", "exp_train_bf16", "exp_torchrun"):
        best = torch.load(tmp_path / "work" / exp / "best.pt", weights_only=True)
        assert best["config"]["model"]["type"] == "chimera"
        assert (tmp_path / "work" / exp / ".finished").is_file()
    amp = yaml.safe_load((tmp_path / "work" / "exp_train_bf16" / "config.yaml").read_text())["training"]["amp"]
    assert amp is True
    assert "2 process(es)" in report  # torchrun started two gloo ranks


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_reports_failures_and_exits_1(tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            CHECK,
            "--device",
            "cuda",
            "--report",
            str(tmp_path / "report.md"),
            "--work",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = (tmp_path / "report.md").read_text()
    assert run.returncode == 1
    status = step_status(report)
    assert status["env"].startswith("FAILED (exit 1)")
    assert status["train_fp32"].startswith("FAILED") and "torch sees no GPU" in report
    assert status["bench_training"].startswith("FAILED")
    assert status["data"] == "ok"  # a failure does not stop the rest
