#!/usr/bin/env python3
"""Every GPU path of cocktail in one command, with one report: run it the moment a GPU is lent.

usage: bench/gpu_check.py [--device cuda|cpu] [--report FILE] [--work DIR] [--scale F]

Steps, each a subprocess with its own time limit (at most about 10 min in all on a GPU, 147 s on an
H200); a failing step is reported with its output's end and the next step still runs:
  env         torch build, CUDA device name and memory, bf16 support, a one-process NCCL (gloo on
              CPU) all_reduce
  data        small synthetic two-speaker tr/cv sets (tests/synth.py): no corpus, no espeak-ng
  features    their features (steps/make_feats.sh)
  train_fp32  egs/mini_2mix's chimera++ config, --ngpu 1, two short epochs
  train_bf16  the same with training.amp: true (bf16 autocast)
  torchrun    the same training started by torchrun (the environment path of nnet/launcher.py): one
              process on a GPU, two gloo processes on CPU
  bench_training, bench_separation, bench_dc_memory   with --device <device>
With --device cpu everything runs at a tiny size (under 2 minutes on 2 cores; tests/test_gpu_check.py
runs it), so that the script is known to work before a GPU is ever lent. --scale multiplies the
step limits (a slow machine). The report (markdown, rewritten atomically after every step) holds
each step's status, seconds and the figures it printed; the exit status is 1 if any step failed.
"""

import argparse
import os
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI_CHIMERA = os.path.join(ROOT, "egs", "mini_2mix", "conf", "tuning", "chimerapp.yaml")

ENV_CHECK = """
import os, torch, torch.distributed as dist
print("torch", torch.__version__, "cuda build", torch.version.cuda)
cuda = "{device}" == "cuda"
print("cuda available", torch.cuda.is_available())
if cuda:
    props = torch.cuda.get_device_properties(0)
    print("device", props.name, "memory_GiB", round(props.total_memory / 2**30, 1),
          "bf16", torch.cuda.is_bf16_supported())
print("nccl available", dist.is_nccl_available())
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="{port}")
dist.init_process_group("nccl" if cuda else "gloo", rank=0, world_size=1)
x = torch.ones(4, device="cuda" if cuda else "cpu")
dist.all_reduce(x)
print("all_reduce ok", dist.get_backend(), x.sum().item())
dist.destroy_process_group()
"""

MAKE_DATA = """
import importlib.util
spec = importlib.util.spec_from_file_location("synth", "{tests}/synth.py")
synth = importlib.util.module_from_spec(spec)
spec.loader.exec_module(synth)
make_data_dir = synth.make_data_dir
for name, count, seed in (("tr", {num_tr}, 0), ("cv", {num_cv}, 1)):
    print(make_data_dir("{work}/" + name, num_utts=count, seed=seed, seconds=({short}, {long})))
"""


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def training_config(work, amp, sizes):
    """The mini chimera++ config with a short schedule: the check is about the path, not the dB."""
    with open(MINI_CHIMERA, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    config["training"].update(
        epochs=2,
        segment_frames=sizes["frames"],
        batch_size=sizes["batch"],
        valid_batch_size=sizes["batch"],
        num_workers=0,
        amp=amp,
    )
    if sizes["tiny"]:
        config["model"].update(units=16, layers=1)
    path = os.path.join(work, f"chimerapp_{'bf16' if amp else 'fp32'}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f)
    return path


class Report:
    def __init__(self, path, device):
        self.path, self.rows, self.details = path, [], []
        self.header = (
            f"# bench/gpu_check.py --device {device}\n\n{time.strftime('%Y-%m-%d %H:%M:%S')}, "
            f"host {os.uname().nodename}, python {sys.version.split()[0]}\n"
        )

    def add(self, name, status, seconds, limit, output):
        self.rows.append(f"| {name} | {status} | {seconds:.1f} | {limit} |")
        tail = "\n".join(output.strip().splitlines()[-25:])
        self.details.append(f"## {name}: {status}\n\n```\n{tail}\n```\n")
        self.write()

    def write(self):
        text = (
            self.header
            + "\n| step | status | seconds | limit (s) |\n|---|---|---|---|\n"
            + "\n".join(self.rows)
            + "\n\n"
            + "\n".join(self.details)
        )
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.path)


def run_step(report, name, command, limit, env=None):
    start = time.time()
    try:
        # PYTHONPATH: a machine where setup.sh did not install nnet (a GPU box's own torch) still finds it
        pythonpath = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=limit,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        )
        output = proc.stdout + proc.stderr
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        status = f"FAILED (over its {limit} s limit)"
    seconds = time.time() - start
    report.add(name, status, seconds, limit, output)
    print(f"gpu_check.py: {name}: {status} in {seconds:.1f} s", flush=True)
    return status == "ok"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--report", default="gpu_check.md")
    parser.add_argument("--work", default="gpu_check_work", help="data, features and exp dirs of the check")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every step's time limit")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    report = Report(os.path.abspath(args.report), args.device)
    py = sys.executable
    sizes = (
        {"tiny": False, "num_tr": 64, "num_cv": 8, "short": 2.0, "long": 4.0, "frames": 200, "batch": 16}
        if cuda
        else {"tiny": True, "num_tr": 6, "num_cv": 2, "short": 0.8, "long": 1.2, "frames": 50, "batch": 3}
    )

    def limit(seconds):
        return int(seconds * args.scale)

    ok = run_step(report, "env", [py, "-c", ENV_CHECK.format(device=args.device, port=free_port())], limit(45))
    script = MAKE_DATA.format(tests=os.path.join(ROOT, "tests"), work=work, **sizes)
    path_env = {"PATH": os.path.dirname(py) + os.pathsep + os.environ["PATH"]}  # steps/ call python3
    data_ok = run_step(report, "data", [py, "-c", script], limit(30)) and run_step(
        report,
        "features",
        [
            "bash",
            "-c",
            " && ".join(
                f"bash steps/make_feats.sh --nj 1 {work}/{s}/data {work}/{s}/log {work}/{s}/feats" for s in ("tr", "cv")
            ),
        ],
        limit(45),
        env=path_env,
    )
    ok &= data_ok
    train = [py, os.path.join(ROOT, "nnet", "bin", "train.py"), "--ngpu", "1" if cuda else "0"]
    dirs = [f"{work}/tr/data", f"{work}/cv/data"]
    for name, amp in (("train_fp32", False), ("train_bf16", True)):
        if data_ok:
            ok &= run_step(
                report, name, [*train, training_config(work, amp, sizes), *dirs, f"{work}/exp_{name}"], limit(75)
            )
    if data_ok:
        procs = "1" if cuda else "2"
        ok &= run_step(
            report,
            "torchrun",
            [
                py,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node",
                procs,
                *train[1:],
                training_config(work, False, sizes),
                *dirs,
                f"{work}/exp_torchrun",
            ],
            limit(75),
            env={"OMP_NUM_THREADS": "1"},
        )
    bench = os.path.join(ROOT, "bench")
    if cuda:
        benches = [
            ("bench_training", ["--device", "cuda", "--steps", "5"]),
            ("bench_training_bf16", ["--device", "cuda", "--steps", "5", "--amp", "--no-epoch"]),
            ("bench_separation", ["--device", "cuda"]),
            ("bench_dc_memory", ["--device", "cuda"]),
        ]
    else:
        benches = [
            # --no-epoch: the epoch parts (data loading, validation, checkpoint) build data dirs; the GPU run has them
            ("bench_training", ["--device", "cpu", "--batch", "2", "--frames", "50", "--steps", "1", "--no-epoch"]),
            ("bench_separation", ["--device", "cpu", "--seconds", "1", "--repeats", "1"]),
            (
                "bench_dc_memory",
                ["--device", "cpu", "--batch", "2", "--frames", "50", "--repeats", "1", "--objectives", "classic"],
            ),
        ]
    for name, extra in benches:
        script_name = name.replace("_bf16", "") + ".py"
        ok &= run_step(report, name, [py, os.path.join(bench, script_name), *extra], limit(60))
    print(f"gpu_check.py: report in {report.path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
