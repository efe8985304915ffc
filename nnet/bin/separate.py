#!/usr/bin/env python3
"""Separate the mixtures of a data dir with a trained system.

usage: separate.py [options] <exp-dir> <data-dir> <out-dir>

Writes <out-dir>/s<c>/<utt>.wav for every utterance of <data-dir>/wav.scp.
"""

import argparse
import os
import sys

import torch

from nnet import datafiles, provenance, separated_dir
from nnet.pack import PackError
from nnet.separator import Separator, add_options, options_of


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-gpu", choices=("true", "false"), default="false")
    add_options(parser)  # --head --phase --iters --matched-inference --matched-steps
    parser.add_argument(
        "--noise-source",
        choices=("true", "false"),
        default="false",
        help="the mixtures hold noise besides the speakers (LibriMix's mix_both): MISI reconstructs it as "
        "one more source, so that it is not spread into the speakers (other phases: no effect)",
    )
    parser.add_argument(
        "--num-threads", type=int, default=1, help="torch CPU threads (fixed so that any --nj gives the same wavs)"
    )
    parser.add_argument("exp_dir")
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()

    torch.set_num_threads(args.num_threads)
    device = "cpu"
    if args.use_gpu == "true":
        if not torch.cuda.is_available():
            sys.exit("separate.py: --use-gpu true but torch sees no GPU: install a CUDA build or use --use-gpu false")
        device = "cuda"
    try:
        separator = Separator(args.exp_dir, device, **options_of(args), noise_source=args.noise_source == "true")
    except (OSError, ValueError, PackError) as err:  # a missing best.pt, a damaged pack, a head the model lacks
        sys.exit(f"separate.py: {err}")
    mixtures = datafiles.read_table(os.path.join(args.data_dir, "wav.scp"))
    for utt, path in mixtures.items():
        try:
            samples, rate = datafiles.read_wav(path)
        except datafiles.AudioError as err:
            sys.exit(f"separate.py: {args.data_dir}/wav.scp: utterance '{utt}': {err}")
        if rate != separator.sample_rate:
            sys.exit(
                f"separate.py: {args.data_dir}/wav.scp: utterance '{utt}' is {rate} Hz, the model "
                f"{separator.sample_rate} Hz: prepare the data at the model's rate"
            )
        try:
            sources = separator.separate(samples)
        except ValueError as err:  # e.g. embeddings that are not finite
            sys.exit(f"separate.py: {args.data_dir}/wav.scp: utterance '{utt}' ({args.exp_dir}): {err}")
        try:
            separated_dir.write_sources(args.out_dir, utt, sources, rate)
        except ValueError as err:  # an utterance id that is not a file name
            sys.exit(f"separate.py: {args.data_dir}/wav.scp: {err}")
    # what the jobs resolved (a pack's head and phase), for the separated dir's record: every job of a
    # run writes the same line (`nnet.provenance record-separated` reads it and removes it)
    with datafiles.atomic_write(os.path.join(args.out_dir, provenance.RESOLVED), encoding="utf-8") as f:
        f.write(separator.summary() + "\n")
    print(f"separate.py: {len(mixtures)} utterances, {separator.summary()} -> {args.out_dir}")


if __name__ == "__main__":
    main()
