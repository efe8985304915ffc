#!/usr/bin/env python3
"""Sum Kaldi CMVN stats files (one per job) into one.

usage: sum_cmvn_stats.py <out> <in1> [<in2> ...]
"""

import argparse
import sys

from nnet import features


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("inputs", nargs="+")
    args = parser.parse_args()
    total = None
    for path in args.inputs:
        stats = features.read_cmvn(path)
        if total is not None and stats.shape != total.shape:
            sys.exit(f"{path}: stats of shape {stats.shape}, the others {total.shape}")
        total = stats if total is None else total + stats
    features.write_cmvn(args.out, total)


if __name__ == "__main__":
    main()
