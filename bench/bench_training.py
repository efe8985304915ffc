#!/usr/bin/env python3
"""Training throughput (frames per second) of a system's config: forward, loss, backward and Adam
step on random batches of the config's segment length, on CPU and, when there is one, on a GPU.

    python3 bench/bench_training.py [--config egs/wsj0_2mix/conf/tuning/chimerapp.yaml]
        [--batch 32] [--frames 400] [--steps 3] [--device cpu|cuda|all] [--amp]
        [--jobs N] [--threads N]

        [--data-dir DIR --valid-dir DIR | --tr-utts N --cv-utts N] [--epoch-steps N]

--jobs N runs N CPU trainings at once (run.sh --train_jobs N), each on --threads threads (default:
cores / N), and prints their summed throughput, to compare with one job on every core.

The steps are timed on random waveforms; the STFT of the targets is included, as it runs on the
training device. The second line of each device gives the step's parts: STFT and features,
forward, loss, backward, Adam step (seconds per step and share). The third and fourth give the
rest of an epoch, measured with nnet/train.py's own Trainer on a training and a cv data dir
(--data-dir, --valid-dir; without them the bench builds small synthetic ones, --tr-utts and
--cv-utts utterances of 2-4 s, with tests/synth.py and steps/make_feats.sh): data loading (the
Trainer's DataLoader over an epoch's batches of --batch segments of --frames, with the config's
num_workers, nothing else running: its CPU cost, which training overlaps with the steps when
num_workers > 0), validation (Trainer.validate: one pass over the cv set) and checkpointing
(Trainer.save: last.pt, best.pt, history.tsv, loss.png), then an epoch of --epoch-steps steps
(default: the training dir's batches per epoch) as seconds and shares. --no-epoch leaves them out.
"""

import argparse
import copy
import importlib.util
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

import torch

from nnet import dsp, history, losses, models, train, training_data
from nnet.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# a training step's parts, timed one after another (the loss part holds DC, MI and PIT, whichever
# the config's loss has; backward includes the loss's backward)
PARTS = ("stft + features", "forward", "loss", "backward", "adam step")


def measure(config, device, batch, frames, steps, amp, barrier=None):
    torch.manual_seed(0)
    stft = dsp.StftConfig()
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
        spec = dsp.stft(waves, stft, center=False)
        valid = torch.ones(batch, frames, dtype=torch.bool, device=device)
        feats = dsp.log_magnitude(spec[:, 0])
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


def make_data_dirs(work, tr_utts, cv_utts):
    """Synthetic tr and cv data dirs under work (tests/synth.py, then steps/make_feats.sh, as
    bench/gpu_check.py makes its data): returns their paths."""
    spec = importlib.util.spec_from_file_location("synth", os.path.join(ROOT, "tests", "synth.py"))
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],  # steps/ call python3
        "PYTHONPATH": os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
    }
    dirs = []
    for name, count, seed in (("tr", tr_utts, 0), ("cv", cv_utts, 1)):
        data = synth.make_data_dir(os.path.join(work, name), num_utts=count, seed=seed, seconds=(2.0, 4.0))
        feats = ["bash", "steps/make_feats.sh", "--nj", "1", data, f"{work}/{name}/log", f"{work}/{name}/feats"]
        run = subprocess.run(feats, cwd=ROOT, env=env, capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"bench_training.py: {' '.join(feats)} failed:\n{run.stdout}{run.stderr}")
        dirs.append(data)
    return dirs


def epoch_parts(config, device, batch, frames, train_dir, valid_dir, exp_dir):
    """Data loading over one epoch's batches, one validation pass and one checkpoint save, each
    by nnet/train.py's Trainer as its training loop calls them: (seconds of each, batches loaded,
    cv utterances)."""
    config = copy.deepcopy(config)
    config.pop("init_from", None)  # the weights do not matter here, and the source may not exist
    config["training"].update(batch_size=batch, segment_frames=frames)
    trainer = train.Trainer(config, train_dir, valid_dir, exp_dir, device)
    batches = training_data.shuffled_batches(len(trainer.train_set), batch, config["training"]["seed"], 1)
    start = time.perf_counter()
    for _ in trainer._loader(trainer.train_set, batches):  # the loader train_epoch iterates
        pass
    loading = time.perf_counter() - start
    start = time.perf_counter()
    valid_loss, valid_terms = trainer.validate()
    if device.type == "cuda":
        torch.cuda.synchronize()
    validation = time.perf_counter() - start
    # the history row run() appends before it saves (history.tsv and loss.png are part of the save)
    terms = {f"valid_{k}": v for k, v in valid_terms.items()}
    trainer.state["history"].append(history.Epoch(1, valid_loss, valid_loss, config["training"]["lr"], 1.0, 1.0, terms))
    start = time.perf_counter()
    trainer.save(improved=True)
    checkpoint = time.perf_counter() - start
    return (
        {"data loading": loading, "validation": validation, "checkpoint": checkpoint},
        len(batches),
        len(trainer.valid_set),
    )


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
    parser.add_argument("--data-dir", help="training data dir for the epoch parts (default: a synthetic one)")
    parser.add_argument("--valid-dir", help="cv data dir for the epoch parts (default: a synthetic one)")
    parser.add_argument("--tr-utts", type=int, default=0, help="synthetic training utterances (0: 2 x --batch)")
    parser.add_argument("--cv-utts", type=int, default=8, help="synthetic cv utterances")
    parser.add_argument("--epoch-steps", type=int, default=0, help="steps per epoch (0: the training dir's)")
    parser.add_argument("--no-epoch", action="store_true", help="time the steps only")
    args = parser.parse_args()
    if bool(args.data_dir) != bool(args.valid_dir):
        parser.error("--data-dir and --valid-dir go together")
    config = load_config(args.config, num_bins=dsp.StftConfig().num_bins)  # the 8 kHz data made here
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
    with tempfile.TemporaryDirectory(prefix="bench_training_") as work:
        dirs = (args.data_dir, args.valid_dir)
        if not args.no_epoch and not args.data_dir:
            dirs = make_data_dirs(work, args.tr_utts or 2 * args.batch, args.cv_utts)
        for name in devices:
            device = torch.device(name)
            label = torch.cuda.get_device_name() if name == "cuda" else "cpu"
            seconds, fps, peak, parts = measure(config, device, args.batch, args.frames, args.steps, args.amp)
            print(
                f"{label:>24}: {seconds:7.3f} s/step  {fps:10.0f} frames/s"
                + (f"  peak {peak:.2f} GiB" if name == "cuda" else "")
            )
            print(" " * 26 + "  ".join(f"{part} {t:.3f} s ({100 * t / seconds:.0f}%)" for part, t in parts.items()))
            if args.no_epoch:
                continue
            exp_dir = os.path.join(work, f"exp_{name}")
            os.makedirs(exp_dir, exist_ok=True)
            rest, loaded, cv_utts = epoch_parts(config, device, args.batch, args.frames, *dirs, exp_dir)
            steps = args.epoch_steps or loaded
            print(
                " " * 26
                + f"data loading {rest['data loading'] / loaded:.3f} s/batch ({loaded} batches, "
                + f"{config['training']['num_workers']} worker(s))  validation {rest['validation']:.3f} s "
                + f"({cv_utts} cv utterances)  checkpoint {rest['checkpoint']:.3f} s"
            )
            epoch = {
                "steps": steps * seconds,
                "data loading": steps * rest["data loading"] / loaded,
                "validation": rest["validation"],
                "checkpoint": rest["checkpoint"],
            }
            total = sum(epoch.values())
            print(
                " " * 26
                + f"epoch of {steps} steps: {total:.1f} s = "
                + "  ".join(f"{part} {t:.2f} s ({100 * t / total:.1f}%)" for part, t in epoch.items())
            )
    if args.device == "all" and "cuda" not in devices:
        print("(no GPU visible: GPU figure skipped)")


if __name__ == "__main__":
    main()
