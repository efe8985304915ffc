#!/usr/bin/env python3
"""Peak memory and time of forward + backward of each deep clustering objective.

Default size: 32 utterances x 400 frames x 129 bins, D = 40 (the seeds' training batch), on the
embeddings alone (the network is left out). On GPU the peak comes from
torch.cuda.max_memory_allocated; on CPU each objective runs in its own subprocess and the peak is
the resident set's high-water mark (VmHWM, reset through /proc/self/clear_refs once the inputs
exist; ru_maxrss where that is not allowed). "over inputs" is the peak minus the memory held once
the inputs are built, i.e. what the loss and its backward add, embedding gradient included.

--paths names dc_loss's paths to measure (auto: the one losses.dc_path picks; batched; chunked),
each with its own peak; with more than one, the times come from one process that runs the paths
in turn, A B A B ..., and the last column is each path's time over the first path's.

    python3 bench/bench_dc_memory.py [--device cpu|cuda] [--batch 32] [--frames 400] [--emb-dim 40]
        [--paths batched,chunked]
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


def step(objective, path, args, emb, mix, src, valid):
    emb.grad = None
    loss = losses.dc_loss(emb, mix, src, valid, objective, args.weights, path=path).mean()
    loss.backward()
    if emb.device.type == "cuda":
        torch.cuda.synchronize()


def timed(objective, paths, args, inputs, repeats):
    """Median fwd + bwd seconds of each path, the paths run in turn (A B A B ...) after one warm-up
    step each."""
    for path in paths:
        step(objective, path, args, *inputs)
    seconds = {path: [] for path in paths}
    for _ in range(repeats):
        for path in paths:
            start = time.perf_counter()
            step(objective, path, args, *inputs)
            seconds[path].append(time.perf_counter() - start)
    return [statistics.median(seconds[path]) for path in paths]


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def cpu_worker(objective, args):
    """Runs in a subprocess: prints 'peak_over_inputs_mib process_peak_mib seconds' of path
    args.paths, or with --timing the interleaved seconds of every path of args.paths."""
    torch.set_num_threads(args.threads or torch.get_num_threads())
    inputs = make_inputs(args, "cpu")
    if args.timing:
        print(*(f"{t:.5f}" for t in timed(objective, args.paths.split(","), args, inputs, args.repeats)))
        return
    base = rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        peak_of = lambda: rss_kib("VmHWM")  # noqa: E731
    except OSError:
        peak_of = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731
    step(objective, args.paths, args, *inputs)
    peak = peak_of()
    (seconds,) = timed(objective, [args.paths], args, inputs, args.repeats)
    print(f"{(peak - base) / 1024:.1f} {peak / 1024:.1f} {seconds:.4f}")


def cpu_worker_output(objective, args, **changes):
    options = {**vars(args), **changes}
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", objective] + [
        f"--{k.replace('_', '-')}={v}"
        for k, v in options.items()
        if k not in ("worker", "device", "objectives", "timing")
    ]
    cmd += ["--timing"] if options["timing"] else []
    return [float(x) for x in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()]


def cpu_run(objective, args):
    """[(peak over inputs MiB, peak MiB, seconds)] for each path of args.paths, each peak from its
    own process; with two paths or more the seconds come from one process running them in turn."""
    paths = args.paths.split(",")
    rows = [cpu_worker_output(objective, args, paths=path) for path in paths]
    if len(paths) > 1:
        times = cpu_worker_output(objective, args, timing=True)
        rows = [(over, total, seconds) for (over, total, _), seconds in zip(rows, times)]
    return rows


def cuda_run(objective, args):
    paths = args.paths.split(",")
    inputs = make_inputs(args, "cuda")
    rows = []
    for path in paths:
        step(objective, path, args, *inputs)  # warm-up: kernels, workspaces
        inputs[0].grad = None  # the measured step makes it again
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step(objective, path, args, *inputs)
        peak = torch.cuda.max_memory_allocated()
        rows.append(((peak - base) / MIB, peak / MIB))
        inputs[0].grad = None
        torch.cuda.empty_cache()
    times = timed(objective, paths, args, inputs, args.repeats)
    del inputs
    torch.cuda.empty_cache()
    return [(over, total, seconds) for (over, total), seconds in zip(rows, times)]


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
    parser.add_argument("--paths", default="auto", help=f"dc_loss paths, comma-separated: {', '.join(losses.DC_PATHS)}")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for path in args.paths.split(","):
        if path not in losses.DC_PATHS:
            parser.error(f"--paths: unknown path '{path}': use {', '.join(losses.DC_PATHS)}")
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
    auto = losses.dc_path(args.batch, args.frames * args.bins, args.emb_dim)
    print(f"# dc_loss's path at this size (losses.dc_path): {auto}")
    paths = args.paths.split(",")
    print(
        f"{'objective':<18} {'path':<8} {'peak over inputs MiB':>21} {'peak total MiB':>15} {'fwd+bwd s':>10}"
        + (f" {'time / ' + paths[0]:>15}" if len(paths) > 1 else "")
    )
    for objective in args.objectives.split(","):
        run = cuda_run if args.device == "cuda" else cpu_run
        rows = run(objective, args)
        for path, (over, total, seconds) in zip(paths, rows):
            ratio = f" {seconds / rows[0][2]:>15.2f}" if len(paths) > 1 else ""
            print(f"{objective:<18} {path:<8} {over:>21.0f} {total:>15.0f} {seconds:>10.3f}{ratio}", flush=True)


if __name__ == "__main__":
    main()
