#!/usr/bin/env python3
"""How far matched run-time inference moves a DC system's masks from k-means, on a data dir.

    python3 bench/matched_inference_soft.py [--mixtures 200] [--steps 50] exp/dc_w_mr [exp/...] data/tt

For the first --mixtures mixtures of the data dir, each system's DC head gives the k-means masks
and the matched-inference masks (nnet/separator.py, as stage 4's '+rti'). Printed per system, over
the bins that vote in k-means (within 40 dB of the mixture's peak): the fraction of soft bins
(largest mask under 0.9), the fraction whose dominant source changed, and the mean absolute mask
change. The SDRi change is the '+rti' row against the plain one in the recipe's RESULTS.md.
"""

import argparse
import os

import torch

from nnet import datafiles, dsp, losses, separator

SOFT_BELOW = 0.9  # a bin is soft when no source takes at least this share of it


def mask_movement(system, mixtures, steps):
    """(soft fraction, changed fraction, mean |M_rti - M_kmeans|) over the voting bins of all mixtures."""
    kmeans = separator.Separator(system, head="dc", matched_inference=False)  # a pack's own default aside
    matched = separator.Separator(system, head="dc", matched_inference=True, matched_steps=steps)
    soft = changed = moved = bins = 0.0
    for path in mixtures:
        mix, _ = datafiles.read_wav(path, "float32")
        spec = dsp.stft(torch.as_tensor(mix), kmeans.stft)
        voting = losses.mixture_activity(spec[None], torch.ones(1, spec.shape[0], dtype=torch.bool))[0] > 0
        hard, relaxed = kmeans.masks(spec)[:, voting], matched.masks(spec)[:, voting]
        soft += float((relaxed.max(0).values < SOFT_BELOW).sum())
        changed += float((relaxed.argmax(0) != hard.argmax(0)).sum())
        moved += float((relaxed - hard).abs()[0].sum())
        bins += voting.sum().item()
    return soft / bins, changed / bins, moved / bins


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixtures", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50, help="Adam steps of matched inference (run.sh --rti-steps)")
    parser.add_argument("systems", nargs="+", help="exp dirs of DC systems, then the data dir")
    args = parser.parse_args()
    torch.set_num_threads(1)
    *systems, data = args.systems
    mixtures = list(datafiles.read_table(os.path.join(data, "wav.scp")).values())[: args.mixtures]
    print(f"{len(mixtures)} mixtures of {data}, {args.steps} steps; over the bins within 40 dB of each peak:")
    print("| system | soft bins (max mask < 0.9) | dominant source changed | mean abs mask change |")
    print("|---|---:|---:|---:|")
    for system in systems:
        soft, changed, moved = mask_movement(system, mixtures, args.steps)
        print(f"| {os.path.basename(os.path.normpath(system))} | {soft:.1%} | {changed:.1%} | {moved:.3f} |")


if __name__ == "__main__":
    main()
