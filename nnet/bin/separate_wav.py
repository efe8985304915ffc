#!/usr/bin/env python3
"""Separate one recording with a trained system, the way you try a model on your own audio.

usage: separate_wav.py --model <exp-dir or pack.zip> [options] <in.wav> <out-dir>

--model takes a trained system's exp dir or a model pack (a .zip of utils/pack_model.sh), such as
egs/speechocean762/pretrained/speechocean762_dc_classic_mr.zip (recorded speech); the head, matched
run-time inference and phase default to the pack's (meta.yaml).
A recording longer than --chunk-seconds (30) is separated in overlapping chunks, each chunk's
sources put in the order of the previous chunk's (nnet.separator.separate_in_chunks): the network's
memory stays that of one chunk (bench/bench_long_recording.py measures a 10-minute file).
Audio at another sample rate is resampled to the model's and the estimates back to the input's,
chunk by chunk.
Writes <out-dir>/<name>_s1.wav, <out-dir>/<name>_s2.wav (<name>: the input's file name).
"""

import argparse
import os
import sys

import numpy as np
import torch

from nnet import datafiles, separated_dir
from nnet.pack import PackError
from nnet.separator import Separator, add_options, options_of, separate_in_chunks
from nnet.dsp import resample


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", required=True, help="experiment dir holding best.pt, or a model pack (utils/pack_model.sh)"
    )
    parser.add_argument("--use-gpu", choices=("true", "false"), default="false")
    add_options(parser)  # --head --phase --iters --matched-inference --matched-steps
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        default=30.0,
        help="a longer recording is separated in chunks of this length (0: whole; memory grows with it)",
    )
    parser.add_argument("--overlap-seconds", type=float, default=3.0, help="chunks overlap by this much")
    parser.add_argument("in_wav")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    name = os.path.splitext(os.path.basename(args.in_wav))[0]
    # before the model runs: an out-dir that is a file, or a name the file system cannot hold
    if os.path.exists(args.out_dir) and not os.path.isdir(args.out_dir):
        sys.exit(f"separate_wav.py: {args.out_dir} is a file, not a dir: give a new or existing dir for the estimates")
    longest = f"{name}_s9.wav"
    limit = os.pathconf(next_existing(args.out_dir), "PC_NAME_MAX")
    if len(os.fsencode(longest)) > limit:
        sys.exit(
            f"separate_wav.py: the estimates of {args.in_wav} would be named {name}_s<c>.wav, "
            f"{len(os.fsencode(longest))} bytes, over the file system's limit of {limit}: copy the input "
            "to a shorter name"
        )
    device = "cpu"
    if args.use_gpu == "true":
        if not torch.cuda.is_available():  # as separate.py: no silent run on the CPU
            sys.exit(
                "separate_wav.py: --use-gpu true but torch sees no GPU: install a CUDA build or use --use-gpu false"
            )
        device = "cuda"
    try:
        separator = Separator(args.model, device, **options_of(args))
    except (OSError, ValueError, PackError) as err:  # a missing best.pt, a damaged pack, a head the model lacks
        sys.exit(f"separate_wav.py: {err}")
    try:
        samples, rate = datafiles.read_wav(args.in_wav)
    except Exception as err:
        sys.exit(f"separate_wav.py: cannot read {args.in_wav}: {err}")

    def separate_at_input_rate(piece):
        # Each chunk is resampled to the model's rate and its estimates back, so that no copy of the
        # whole recording at another rate is held (a 10-minute 44.1 kHz file's estimates in float64
        # are 424 MB). A chunk's resampled edges lie in the overlaps, where the cross-fade gives them
        # almost no weight, or at the recording's own ends.
        estimates = separator.separate(resample(piece, rate, separator.sample_rate))
        return resample(estimates, separator.sample_rate, rate)[:, : len(piece)].astype(np.float32)

    chunk = int(args.chunk_seconds * rate)
    overlap = int(args.overlap_seconds * rate)
    try:
        estimates = separate_in_chunks(separate_at_input_rate, samples, chunk, overlap)
    except ValueError as err:  # chunk and overlap that do not fit, embeddings that are not finite
        sys.exit(
            f"separate_wav.py: {args.in_wav} (--chunk-seconds {args.chunk_seconds} "
            f"--overlap-seconds {args.overlap_seconds}): {err}"
        )
    for c, est in enumerate(estimates, 1):
        path = os.path.join(args.out_dir, f"{name}_s{c}.wav")
        datafiles.write_wav(path, separated_dir.unclipped(est), rate)
        print(path)


def next_existing(path):
    """path, or the nearest dir above it that exists (where out_dir will be made)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


if __name__ == "__main__":
    main()
