#!/usr/bin/env python3
"""Print the utt2num_samples of a wav.scp: '<utt> <samples>', in wav.scp's order, from each file's
header (as Kaldi's wav-to-duration reads durations; no sox needed).

usage: utils/wav_to_num_samples.py <wav.scp> > utt2num_samples
"""

import os
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir, datafiles


def main():
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("wav_scp")
    args = parser.parse_args()
    try:
        table = datafiles.read_table(args.wav_scp)
        lines = [f"{utt} {datafiles.wav_info(path).num_samples}\n" for utt, path in table.items()]
    except (OSError, UnicodeDecodeError, datafiles.TableError, datafiles.AudioError) as e:
        sys.exit(f"wav_to_num_samples.py: {os.path.abspath(args.wav_scp)}: {e}")
    sys.stdout.write("".join(lines))


if __name__ == "__main__":
    main()
