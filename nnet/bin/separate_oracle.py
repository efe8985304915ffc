#!/usr/bin/env python3
"""Separate the mixtures of a data dir with ideal masks computed from the references.

usage: separate_oracle.py --mask ibm|irm|psm [--stft-conf FILE] <data-dir> <out-dir>

The masks are applied to the mixture STFT and resynthesized with the mixture phase: the ceiling of
mask-based separation (Table 2 of the chimera++ paper). <data-dir> holds wav.scp and spk<c>.scp.
A noisy corpus's noise1.scp (LibriMix's mix_both) joins the references as one more source when the
masks are computed (IBM: a bin the noise dominates belongs to no speaker; IRM: the noise's magnitude
is in the denominator), and only the speakers' masks are applied: otherwise an ideal mask would pass
all the noise. (The seed papers' data are noise-free; this is the usual extension.)
"""

import argparse
import glob
import os
import sys

import numpy as np
import torch

from nnet import datafiles, dsp, separated_dir
from nnet.oracle_masks import MASK_KINDS, oracle_masks


def reference_tables(data_dir, noise=False):
    """The speakers' tables spk<c>.scp; with noise, the noise tables noise<n>.scp after them."""
    paths = sorted(glob.glob(os.path.join(data_dir, "spk[0-9]*.scp")))
    if not paths:
        sys.exit(f"separate_oracle.py: {data_dir}: no spk1.scp/spk2.scp: oracle masks need the reference sources")
    if noise:
        paths += sorted(glob.glob(os.path.join(data_dir, "noise[0-9]*.scp")))
    return [datafiles.read_table(p) for p in paths], paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mask", choices=MASK_KINDS, required=True)
    parser.add_argument("--stft-conf")
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    args = parser.parse_args()
    refs, ref_paths = reference_tables(args.data_dir, noise=True)
    num_spk = sum(os.path.basename(p).startswith("spk") for p in ref_paths)

    mixtures = datafiles.read_table(os.path.join(args.data_dir, "wav.scp"))
    stft_config = None  # read once, at the first mixture's sample rate
    for utt, mix_path in mixtures.items():
        try:
            mix, rate = datafiles.read_wav(mix_path)
        except datafiles.AudioError as err:
            sys.exit(f"separate_oracle.py: {args.data_dir}/wav.scp: utterance '{utt}': {err}")
        sources = []
        for table, table_path in zip(refs, ref_paths):
            if utt not in table:
                sys.exit(f"separate_oracle.py: {table_path}: no reference for utterance '{utt}'")
            try:
                src, src_rate = datafiles.read_wav(table[utt])
            except datafiles.AudioError as err:
                sys.exit(f"separate_oracle.py: {table_path}: utterance '{utt}': {err}")
            if src_rate != rate or len(src) != len(mix):
                sys.exit(
                    f"separate_oracle.py: utterance '{utt}': reference {table[utt]} "
                    f"({len(src)} samples at {src_rate} Hz) does not match the mixture ({len(mix)} at {rate} Hz)"
                )
            sources.append(src)
        if stft_config is None or stft_config.sample_rate != rate:
            stft_config = dsp.read_stft_conf(args.stft_conf, rate)
        mix_spec = dsp.stft(torch.from_numpy(mix).double(), stft_config)
        src_spec = dsp.stft(torch.from_numpy(np.stack(sources)).double(), stft_config)
        mask = oracle_masks(mix_spec, src_spec, args.mask)[:num_spk]
        estimates = dsp.istft(mask * mix_spec, stft_config, len(mix)).numpy()
        try:
            separated_dir.write_sources(args.out_dir, utt, estimates, rate)
        except ValueError as err:  # an utterance id that is not a file name
            sys.exit(f"separate_oracle.py: {args.data_dir}/wav.scp: {err}")
    print(f"separate_oracle.py: {len(mixtures)} utterances with {args.mask} masks -> {args.out_dir}")


if __name__ == "__main__":
    main()
