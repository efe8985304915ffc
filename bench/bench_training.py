#!/usr/bin/env python3
"""Training throughput (frames per second) of a system's config: forward, loss, backward and Adam
step on random batches of the config's segment length, on CPU and, when there is one, on a GPU.

    python3 bench/bench_training.py [--config egs/wsj0_2mix/conf/tuning/chimerapp.yaml]
        [--batch 32] [--frames 400] [--steps 3] [--device cpu|cuda|all] [--amp]
        [--jobs N] [--threads N]

--jobs N runs N CPU trainings at once (run.sh --train_jobs N), each on --threads threads (default:
cores / N), and prints their summed throughput, to compare with one job on every core.

Data loading is left out (it runs in worker processes during training); the STFT of the targets
is included, as it runs on the training device. The second line of each device gives the step's
parts: STFT and features, forward, loss, backward, Adam step (seconds per step and share).
"""

import argparse
import multiprocessing
import os
import sys
import time

import torch

from nnet import losses, models, signal
from nnet.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a training step's parts, timed one after another (the loss part holds DC, MI and PIT, whichever
# the config's loss has; backward includes the loss's backward)
PARTS = ("stft + features", "forward", "loss", "backward", "adam step")


def measure(config, device, batch, frames, steps, amp, barrier=None):
    torch.manual_seed(0)
    stft = signal.StftConfig()
    model = models.build_model(config["model"]).to(device).train()
    objective = losses.build_objective(config["loss"])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    num_spk = config["model"].get("num_spk", 2)
    samples = (frames - 1) * stft.hop_length + stft.n_fft
    waves = torch.randn(batch, 1 + num_spk, samples, device=device) * 0.1
    waves[:, 0] = waves[:, 1:].sum(1)
    lengths = torch.full((batch,), frames)

    parts = dict.fromkeys(PARTS, 0.0)

    def tick(name, since):
        """Add the time since `since` to part `name` (after the device's queued work is done)."""
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        parts[name] += now - since
        return now

    def step():
        t = time.perf_counter()
        spec = signal.stft(waves, stft, center=False)
        valid = torch.ones(batch, frames, dtype=torch.bool, device=device)
        feats = signal.log_magnitude(spec[:, 0])
        t = tick("stft + features", t)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            outputs = model(feats, lengths)
        outputs = {k: v.float() for k, v in outputs.items()}
        t = tick("forward", t)
        loss, _ = objective(
            outputs, {"mix_spec": spec[:, 0], "src_spec": spec[:, 1:], "lengths": lengths, "valid": valid}
        )
        t = tick("loss", t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t = tick("backward", t)
        optimizer.step()
        tick("adam step", t)

    step()  # warm-up: allocations, cuDNN plans
    parts.update(dict.fromkeys(PARTS, 0.0))
    if barrier is not None:  # concurrent jobs time the same interval
        barrier.wait()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return seconds, batch * frames / seconds, peak, {k: v / steps for k, v in parts.items()}


def _cpu_job(config, batch, frames, steps, threads, barrier, results):
    torch.set_num_threads(threads)
    results.put(measure(config, torch.device("cpu"), batch, frames, steps, False, barrier)[1])


def measure_cpu_jobs(config, batch, frames, steps, jobs, threads):
    """Summed frames/s of `jobs` CPU trainings running at once."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(jobs), context.Queue()
    procs = [
        context.Process(target=_cpu_job, args=(config, batch, frames, steps, threads, barrier, results))
        for _ in range(jobs)
    ]
    for proc in procs:
        proc.start()
    rates = [results.get() for _ in procs]
    for proc in procs:
        proc.join()
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(ROOT, "egs/wsj0_2mix/conf/tuning/chimerapp.yaml"))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    parser.add_argument("--amp", action="store_true", help="bf16 autocast on GPU")
    parser.add_argument("--jobs", type=int, default=1, help="CPU trainings at once (run.sh --train_jobs)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per job (0: cores / jobs)")
    args = parser.parse_args()
    config = load_config(args.config)
    if args.jobs > 1 or args.threads:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        rates = measure_cpu_jobs(config, args.batch, args.frames, args.steps, args.jobs, threads)
        print(
            f"config {os.path.relpath(args.config, ROOT)}: {config['model']['type']}, batch {args.batch} x "
            f"{args.frames} frames, {args.jobs} CPU job(s) x {threads} thread(s): "
            f"{sum(rates):.0f} frames/s in all ({', '.join(f'{rate:.0f}' for rate in rates)})"
        )
        return
    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    elif args.device == "cuda":
        sys.exit("bench_training.py: --device cuda but torch sees no GPU")
    print(
        f"config {os.path.relpath(args.config, ROOT)}: {config['model']['type']}, batch {args.batch} x "
        f"{args.frames} frames, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name() if name == "cuda" else "cpu"
        seconds, fps, peak, parts = measure(config, device, args.batch, args.frames, args.steps, args.amp)
        print(
            f"{label:>24}: {seconds:7.3f} s/step  {fps:10.0f} frames/s"
            + (f"  peak {peak:.2f} GiB" if name == "cuda" else "")
        )
        print(" " * 26 + "  ".join(f"{part} {t:.3f} s ({100 * t / seconds:.0f}%)" for part, t in parts.items()))
    if args.device == "all" and "cuda" not in devices:
        print("(no GPU visible: GPU figure skipped)")


if __name__ == "__main__":
    main()
