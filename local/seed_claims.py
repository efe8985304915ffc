#!/usr/bin/env python3
"""The seed papers' claims, checked on a recipe's scores: a markdown table for its results page
(docs/results_<recipe>.md).

usage: local/seed_claims.py [--exp exp] [--second-exp DIR] [--metric SDR] [--margin 0.3] [--suffix S]

Each claim compares two rows of RESULTS.md (exp/<system>/score_<set>[_<variant>]/result.txt): the
paper's better system first. On the open-speaker set (tt) a claim holds when the first is higher.
--second-exp names the exp dir of the same systems trained with another seed, whose tt margin is
shown beside; then every claim holds only when it holds with both seeds, whatever its margin (on
mini at 9d1710f, seeds 777 and 778 gave chimera++ 5.16 and 3.08 dB tt SDRi, uPIT 3.94 and 5.17).
Without it, a margin under --margin dB is flagged "needs a second seed". The closed-speaker (cv)
difference is shown too. A comparison whose rows were not scored is "not run". --suffix S reads
the rows of the systems <system>S instead (--suffix _long: the systems trained to convergence,
conf/tuning/*_long.yaml); the table names them so.
"""

import argparse
import os

from nnet import datafiles

# (claim as the paper makes it, better row, worse row); a row is "<system>" or "<system> +<variant>"
CLAIMS = [
    ("run-time inference > k-means (W, W_MR)", "dc_w_mr +rti", "dc_w_mr"),
    ("run-time inference > k-means (classic, W_MR)", "dc_classic_mr +rti", "dc_classic_mr"),
    ("run-time inference > k-means (classic, W_VA; def_dc)", "def_dc +rti", "def_dc"),
    ("run-time inference > k-means (L, W_VA)", "dc_l_va +rti", "dc_l_va"),
    ("run-time inference > k-means (S, W_MR)", "dc_s_mr +rti", "dc_s_mr"),
    ("run-time inference > k-means (LDA, W_VA)", "dc_lda_va +rti", "dc_lda_va"),
    ("W > classic (W_MR, k-means)", "dc_w_mr", "dc_classic_mr"),
    ("W > classic (W_MR, run-time inference)", "dc_w_mr +rti", "dc_classic_mr +rti"),
    ("chimera++ > MI alone", "chimerapp", "mi_sigmoid_tpsa_l1"),
    ("chimera++ > DC alone (W, W_MR)", "chimerapp", "dc_w_mr"),
    ("MISI > Griffin-Lim", "chimerapp +misi", "chimerapp +gl"),
    ("Griffin-Lim > mixture phase", "chimerapp +gl", "chimerapp"),
    ("DEF > uPIT", "def", "upit"),
    ("DEF > DC (its own DC network, k-means)", "def", "def_dc"),
    ("joint training > DEF", "def_joint", "def"),
    ("discriminative learning > joint training", "dl_def", "def_joint"),
]


def score(exp, row, test_set, metric):
    system, _, variant = row.partition(" +")
    name = f"score_{test_set}" + (f"_{variant}" if variant else "")
    path = os.path.join(exp, system, name, "result.txt")
    if not os.path.isfile(path):
        return None
    return float(datafiles.read_table(path)[metric])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", default="exp")
    parser.add_argument("--metric", default="SDR", help="a result.txt field (default: SDR, the papers')")
    parser.add_argument("--margin", type=float, default=0.3)
    parser.add_argument("--second-exp", help="the same systems trained with another seed")
    parser.add_argument("--suffix", default="", help="compare the systems <system><suffix>")
    args = parser.parse_args()
    print(f"| claim | rows compared | tt {args.metric} | tt margin | cv margin | second seed tt margin | holds on tt |")
    print("|---|---|---:|---:|---:|---:|---|")
    for claim, *rows in CLAIMS:
        better, worse = (row.replace(" +", f"{args.suffix} +", 1) if " +" in row else row + args.suffix for row in rows)
        tt = [score(args.exp, row, "tt", args.metric) for row in (better, worse)]
        cv = [score(args.exp, row, "cv", args.metric) for row in (better, worse)]
        if None in tt:
            print(f"| {claim} | {better} vs {worse} | | | | | not run |")
            continue
        margin = tt[0] - tt[1]
        cv_margin = f"{cv[0] - cv[1]:+.2f}" if None not in cv else ""
        verdict = "yes" if margin > 0 else "no"
        second = (
            [score(args.second_exp, row, "tt", args.metric) for row in (better, worse)] if args.second_exp else [None]
        )
        second_margin = second[0] - second[1] if None not in second else None
        if second_margin is not None:
            if (second_margin > 0) != (margin > 0):
                verdict = "not held: the seeds disagree"
            else:
                verdict += ", with both seeds"
        elif abs(margin) < args.margin:
            verdict += f" (under {args.margin} dB: needs a second seed)"
        second_cell = f"{second_margin:+.2f}" if second_margin is not None else ""
        print(
            f"| {claim} | {better} vs {worse} | {tt[0]:.2f} vs {tt[1]:.2f} | {margin:+.2f} | {cv_margin} "
            f"| {second_cell} | {verdict} |"
        )


if __name__ == "__main__":
    main()
