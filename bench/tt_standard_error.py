#!/usr/bin/env python3
"""How far a test set's mean SDRi can be trusted: its standard error from the scores of one system,
with the speakers' share in it, and what other set sizes would give.

    python3 bench/tt_standard_error.py exp/chimerapp/score_tt/per_utt.tsv data/tt/utt2spk \\
        [--metric SDRi] [--sizes 200,400,800,1600]

Each mixture's score is modelled as mu + a_i + a_j + e: a_i, a_j the effects of its two speakers
(utt2spk's speaker label is the pair, '<spkA>_<spkB>', as local/make_mixtures.py and data_prep.sh
write it), e the rest (which utterances, which levels). The effects are fitted by least squares
(a small ridge keeps a speaker seen once from taking its mixture's whole residual); their spread
sd_a is corrected for the fitting noise (the variance of the fitted effects less the mean variance
of their estimates), sd_e comes from the residuals. The mean of n mixtures whose speakers appear
c_k times has variance sd_a^2 * sum_k (c_k / n)^2 + sd_e^2 / n: printed for this set, then for
other sizes over the same speakers with every speaker in 2n/K mixtures (a new draw of the speakers
from the same population; for the same speakers the speaker term is fixed, not noise, and the
standard error is sd_e / sqrt(n)).
"""

import argparse
import csv
import sys

import numpy as np


def read_scores(path, metric):
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows or metric not in rows[0]:
        raise SystemExit(f"{path}: no column '{metric}'")
    return {row["utt"]: float(row[metric]) for row in rows}


def read_pairs(path):
    pairs = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            utt, speaker = line.split()
            pairs[utt] = speaker.split("_")
    return pairs


def variance_components(scores, pairs, ridge=1.0):
    """(sd_a, sd_e, speakers, counts) of the model mu + a_i + a_j + e."""
    utts = sorted(scores)
    speakers = sorted({s for u in utts for s in pairs[u]})
    index = {s: k for k, s in enumerate(speakers)}
    X = np.zeros((len(utts), len(speakers)))
    for m, u in enumerate(utts):
        for s in pairs[u]:
            X[m, index[s]] += 1
    y = np.array([scores[u] for u in utts])
    y = y - y.mean()
    gram = X.T @ X + ridge * np.eye(len(speakers))
    effects = np.linalg.solve(gram, X.T @ y)
    residual = y - X @ effects
    dof = max(len(utts) - len(speakers) - 1, 1)
    sd_e2 = float(residual @ residual) / dof
    noise = sd_e2 * np.mean(np.diag(np.linalg.inv(gram) @ X.T @ X @ np.linalg.inv(gram)))
    sd_a2 = max(float(np.var(effects, ddof=1)) - noise, 0.0)
    return np.sqrt(sd_a2), np.sqrt(sd_e2), speakers, X.sum(0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("per_utt")
    parser.add_argument("utt2spk")
    parser.add_argument("--metric", default="SDRi")
    parser.add_argument("--sizes", default="200,400,800,1600,3000")
    args = parser.parse_args(argv)
    scores = read_scores(args.per_utt, args.metric)
    pairs = read_pairs(args.utt2spk)
    missing = [u for u in scores if u not in pairs]
    if missing:
        raise SystemExit(f"{args.utt2spk}: no speakers for {len(missing)} scored mixtures, e.g. '{missing[0]}'")
    sd_a, sd_e, speakers, counts = variance_components(scores, pairs)
    n, k = len(scores), len(speakers)
    values = np.array(list(scores.values()))
    this = np.sqrt(sd_a**2 * np.sum((counts / n) ** 2) + sd_e**2 / n)
    print(f"{args.metric}: mean {values.mean():.2f} dB, sd {values.std(ddof=1):.2f} over {n} mixtures of {k} speakers")
    print(f"speaker effects sd_a {sd_a:.2f} dB, the rest sd_e {sd_e:.2f} dB per mixture")
    print(f"standard error of this set's mean: {this:.3f} dB (same speakers, new mixtures: {sd_e / np.sqrt(n):.3f})")
    for size in (int(s) for s in args.sizes.split(",")):
        se = np.sqrt(sd_a**2 * 4 / k + sd_e**2 / size)
        print(f"  n = {size:5d} over {k} speakers: {se:.3f} dB (same speakers: {sd_e / np.sqrt(size):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
