#!/usr/bin/env python3
"""Whether each trained system of a recipe stopped improving, from its exp/<system>/history.tsv.

usage: utils/show_convergence.py [--exp exp] [--window 3] [--tolerance 0.01] [system ...]

One markdown row per system (every exp/<system>/history.tsv, or the systems named): epochs run,
the best epoch (lowest validation loss: the model selection figure, MI alone for chimera++), the
validation loss at the first and last epoch, its relative change over the last --window epochs
(last against the one --window epochs before it), and the verdict: 'best before the last' when
the best epoch came before the last one, 'flat' when the change over the window is under
--tolerance, else 'still improving'.
"""

import argparse
import glob
import os
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import history as histories


def read_history(path):
    """[(epoch, valid loss, lr)] of a history.tsv (nnet.history.read); ValueError naming the file."""
    rows = histories.read(path)
    if not rows:
        raise ValueError(f"{path}: no epoch")
    return [(row.epoch, row.valid_loss, row.lr) for row in rows]


def verdict(history, window, tolerance):
    """(best epoch, relative change over the window or None, verdict)."""
    epochs = [e for e, _, _ in history]
    losses = [v for _, v, _ in history]
    best = epochs[losses.index(min(losses))]
    change = None
    if len(losses) > window:
        before = losses[-1 - window]
        change = (losses[-1] - before) / abs(before) if before else None
    if best < epochs[-1]:
        return best, change, "best before the last"
    if change is not None and abs(change) < tolerance:
        return best, change, "flat"
    return best, change, "still improving"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", default="exp")
    parser.add_argument("--window", type=int, default=3)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("systems", nargs="*")
    args = parser.parse_args(argv)
    paths = (
        [os.path.join(args.exp, s, "history.tsv") for s in args.systems]
        if args.systems
        else sorted(glob.glob(os.path.join(args.exp, "*", "history.tsv")))
    )
    if not paths:
        sys.exit(f"show_convergence.py: no {args.exp}/<system>/history.tsv")
    print(f"| system | epochs | best epoch | valid loss first / last | change over the last {args.window} | verdict |")
    print("|---|---:|---:|---|---:|---|")
    for path in paths:
        try:
            history = read_history(path)
        except OSError as err:
            sys.exit(f"show_convergence.py: {path}: {err}")
        except ValueError as err:  # names the file and line
            sys.exit(f"show_convergence.py: {err}")
        best, change, text = verdict(history, args.window, args.tolerance)
        shown = f"{100 * change:+.2f}%" if change is not None else "-"
        system = os.path.basename(os.path.dirname(path))
        first, last = history[0][1], history[-1][1]
        print(f"| {system} | {len(history)} | {best} | {first:.4f} / {last:.4f} | {shown} | {text} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
