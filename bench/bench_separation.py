#!/usr/bin/env python3
"""Separation real-time factor (processing seconds per second of audio) of chimera++ through its
MI head and of deep clustering through k-means, alone and refined by matched run-time inference,
at a recipe's model sizes with random weights, on CPU and, when there is one, on a GPU.

    python3 bench/bench_separation.py [--recipe egs/wsj0_2mix] [--seconds 6] [--repeats 3]
        [--device cpu|cuda|all]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from nnet import dsp, models
from nnet.separator import Separator
from nnet.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fake_experiment(config_path, directory):
    """An exp dir whose best.pt holds random weights of the config's model (speed does not depend
    on the weights, except k-means iterations: random embeddings are a hard case)."""
    stft = dsp.StftConfig()
    config = load_config(config_path, num_bins=stft.num_bins)  # the 8 kHz features of the built-in STFT
    torch.manual_seed(0)
    model = models.build_model(config["model"])
    torch.save(
        {
            "model": model.state_dict(),
            "cmvn_mean": torch.zeros(stft.num_bins),
            "cmvn_std": torch.ones(stft.num_bins),
            "stft": stft.to_dict(),
            "config": config,
            "epoch": 0,
        },
        os.path.join(directory, "best.pt"),
    )
    return directory


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=os.path.join(ROOT, "egs/wsj0_2mix"))
    parser.add_argument("--seconds", type=float, default=6.0, help="utterance length")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"))
    args = parser.parse_args()
    devices = ["cpu"] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    elif args.device == "cuda":
        sys.exit("bench_separation.py: --device cuda but torch sees no GPU")
    rng = np.random.default_rng(0)
    mixture = (0.1 * rng.standard_normal(int(args.seconds * 8000))).astype(np.float32)
    # (system, head, phase, matched run-time inference)
    cases = [
        ("chimerapp", "mi", "mixture", False),
        ("chimerapp", "mi", "misi", False),
        ("dc_w_mr", "dc", "mixture", False),
        ("dc_w_mr", "dc", "mixture", True),
    ]
    print(
        f"{os.path.relpath(args.recipe, ROOT)} model sizes, {args.seconds:.1f} s utterance at 8 kHz, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    for system, head, phase, matched in cases:
        with tempfile.TemporaryDirectory() as tmp:
            exp = fake_experiment(os.path.join(args.recipe, "conf/tuning", system + ".yaml"), tmp)
            for device in devices:
                separator = Separator(exp, device, head=head, phase=phase, matched_inference=matched)
                separator.separate(mixture)  # warm-up
                if device == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(args.repeats):
                    separator.separate(mixture)
                if device == "cuda":
                    torch.cuda.synchronize()
                rtf = (time.perf_counter() - start) / args.repeats / args.seconds
                label = torch.cuda.get_device_name() if device == "cuda" else "cpu"
                inference = "k-means + matched" if matched else ("k-means" if head == "dc" else "masks")
                print(
                    f"{system:>10} {head} head, {inference:>17}, {phase:>8} phase, {label:>20}: "
                    f"RTF {rtf:.4f} ({1 / rtf:.1f}x real time)"
                )
    if args.device == "all" and "cuda" not in devices:
        print("(no GPU visible: GPU figures skipped)")


if __name__ == "__main__":
    main()
