#!/usr/bin/env python3
"""Several trained systems' learning curves side by side, from their exp/<system>/history.tsv.

usage: utils/plot_history.py --out curves.png exp/dc_w_mr exp/chimerapp [exp/...]

One panel per loss term (dc, mi, ...; a system without terms: its objective, 'loss'), each system's
validation curve in it, its selected epoch (best.pt's) starred: the comparison of runs that each
exp dir's own loss.png (training against validation, lr halvings marked) does not give.
"""

import argparse
import os
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the png to write")
    parser.add_argument("exp_dirs", nargs="+")
    args = parser.parse_args(argv)
    histories = {}
    for exp_dir in args.exp_dirs:
        path = os.path.join(exp_dir, "history.tsv")
        if not os.path.isfile(path):
            sys.exit(f"plot_history.py: {path} not found: train the system first (stage 3)")
        try:
            rows = history.read(path)
        except ValueError as err:
            sys.exit(f"plot_history.py: {err}")
        if not rows:
            sys.exit(f"plot_history.py: {path} has no epoch yet")
        histories[os.path.basename(os.path.normpath(exp_dir))] = rows
    history.draw(histories, args.out)
    print(f"plot_history.py: {len(histories)} systems -> {args.out}")


if __name__ == "__main__":
    main()
