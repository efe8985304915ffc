#!/usr/bin/env python3
"""Peak memory and time of forward + backward of each deep clustering objective.

Default size: 32 utterances x 400 frames x 129 bins, D = 40 (the seeds' training batch), on the
embeddings alone (the network is left out). On GPU the peak comes from
torch.cuda.max_memory_allocated; on CPU each objective runs in its own subprocess and the peak is
the resident set's high-water mark (VmHWM, reset through /proc/self/clear_refs once the inputs
exist; ru_maxrss where that is not allowed). "over inputs" is the peak minus the memory held once
the inputs are built, i.e. what the loss and its backward add, embedding gradient included.

    python3 bench/bench_dc_memory.py [--device cpu|cuda] [--batch 32] [--frames 400] [--emb-dim 40]
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from nnet import losses

MIB = 2**20


def make_inputs(args, device):
    gen = torch.Generator(device="cpu").manual_seed(0)
    shape = (args.batch, args.num_spk, args.frames, args.bins)
    src = torch.polar(torch.rand(shape, generator=gen), torch.rand(shape, generator=gen) * 6.28).to(device)
    mix = src.sum(1)
    emb = torch.randn(args.batch, args.frames, args.bins, args.emb_dim, generator=gen).to(device)
    emb = torch.nn.functional.normalize(emb, dim=-1).requires_grad_()
    valid = torch.ones(args.batch, args.frames, dtype=torch.bool, device=device)
    return emb, mix, src, valid


def step(objective, args, emb, mix, src, valid):
    emb.grad = None
    loss = losses.dc_loss(emb, mix, src, valid, objective, args.weights).mean()
    loss.backward()
    if emb.device.type == "cuda":
        torch.cuda.synchronize()


def timed(objective, args, inputs, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(objective, args, *inputs)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_worker(objective, args):
    """Runs in a subprocess: prints 'peak_over_inputs_mib process_peak_mib seconds'."""
    torch.set_num_threads(args.threads or torch.get_num_threads())
    inputs = make_inputs(args, "cpu")
    base = rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        peak_of = lambda: rss_kib("VmHWM")  # noqa: E731
    except OSError:
        peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    step(objective, args, *inputs)
    peak = peak_of()
    seconds = timed(objective, args, inputs, args.repeats)
    print(f"{(peak - base) / 1024:.1f} {peak / 1024:.1f} {seconds:.4f}")


def cpu_run(objective, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", objective] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("worker", "device", "objectives")
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def cuda_run(objective, args):
    inputs = make_inputs(args, "cuda")
    step(objective, args, *inputs)  # warm-up: kernels, workspaces
    inputs[0].grad = None  # the measured step makes it again
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(objective, args, *inputs)
    peak = torch.cuda.max_memory_allocated()
    seconds = timed(objective, args, inputs, args.repeats)
    del inputs
    torch.cuda.empty_cache()
    return (peak - base) / MIB, peak / MIB, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--bins", type=int, default=129)
    parser.add_argument("--emb-dim", type=int, default=40)
    parser.add_argument("--num-spk", type=int, default=2)
    parser.add_argument("--weights", choices=losses.DC_WEIGHTS, default="mr")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per objective (median shown)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads per objective (0: torch's default; on a shared machine more than one makes timings erratic)",
    )
    parser.add_argument("--objectives", default=",".join(losses.DC_OBJECTIVES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return cpu_worker(args.worker, args)

    bins = args.batch * args.frames * args.bins
    emb_mib = bins * args.emb_dim * 4 / MIB
    name = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"cpu, {args.threads or torch.get_num_threads()} thread(s)"
    )
    print(f"# device: {name}; torch {torch.__version__}")
    print(
        f"# {args.batch} x {args.frames} frames x {args.bins} bins, D={args.emb_dim}, C={args.num_spk}, "
        f"weights={args.weights}; embeddings {emb_mib:.0f} MiB (their gradient as much); "
        f"a dense TF x TF affinity would take {args.batch * (args.frames * args.bins) ** 2 * 4 / 2**30:.0f} GiB"
    )
    print(f"{'objective':<18} {'peak over inputs MiB':>21} {'peak total MiB':>15} {'fwd+bwd s':>10}")
    for objective in args.objectives.split(","):
        run = cuda_run if args.device == "cuda" else cpu_run
        over, total, seconds = run(objective, args)
        print(f"{objective:<18} {over:>21.0f} {total:>15.0f} {seconds:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
