#!/usr/bin/env python3
"""Speed and agreement of nnet.metrics.bss_eval_sources against mir_eval's (the reference).

usage: bench/bench_scoring.py [--num-utts 200] [--mir-eval-utts 100] [--sources 2] [--seed 0]

Synthetic utterances at 8 kHz, 3-6 s: each source is band-pass filtered noise under a slowly
varying syllable-like envelope (speech-like spectrum and pauses); each estimate is a random mix of
the references (the matched one dominant, shuffled order) plus white noise at a random level.
Prints the time per utterance of both, the speed ratio, the largest absolute SDR/SIR/SAR
differences and how often the fast solver fell back to the dense one. mir_eval is slow, so it
runs on the first --mir-eval-utts utterances only (said in the output); the ratio and the
differences are measured on those, timing ours and mir_eval's alternately so that both see the
same machine load. BLAS runs single-threaded, as in steps/score.sh's jobs, unless
OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS are set.
"""

import argparse
import os
import time
import warnings

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS
    os.environ.setdefault(_name, "1")
import numpy as np  # noqa: E402  (after the BLAS thread settings above)
import scipy.signal  # noqa: E402

from nnet import metrics  # noqa: E402

RATE = 8000


def speech_like(rng, length):
    low, high = rng.uniform(80, 300), rng.uniform(2500, 3800)
    sos = scipy.signal.butter(4, [low, high], btype="bandpass", fs=RATE, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(length))
    t = np.arange(length) / RATE
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None)
    phrases = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6))
    return noise * syllables * phrases


def make_utterance(rng, num_sources):
    length = int(rng.uniform(3, 6) * RATE)
    refs = np.stack([speech_like(rng, length) for _ in range(num_sources)])
    mixing = rng.uniform(0, 0.4, (num_sources, num_sources)) + np.eye(num_sources)
    ests = mixing @ refs
    ests += rng.uniform(0.01, 0.3) * refs.std() * rng.standard_normal(ests.shape)
    return refs, ests[rng.permutation(num_sources)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-utts", type=int, default=200)
    parser.add_argument("--mir-eval-utts", type=int, default=100, help="mir_eval on the first N utterances")
    parser.add_argument("--sources", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)  # mir_eval.separation's deprecation notice
    import mir_eval.separation

    rng = np.random.default_rng(args.seed)
    utts = [make_utterance(rng, args.sources) for _ in range(args.num_utts)]
    seconds = sum(r.shape[1] for r, _ in utts) / RATE

    dense_calls = []
    dense_solve = metrics._dense_solve

    def counting_dense_solve(*a, **kw):
        dense_calls.append(1)
        return dense_solve(*a, **kw)

    metrics._dense_solve = counting_dense_solve
    n_ref = min(args.mir_eval_utts, args.num_utts)
    ours, ours_time, ref_time, fallbacks = [], [], [], 0
    diffs, perm_mismatch = np.zeros(3), 0
    for index, (refs, ests) in enumerate(utts):
        # Interleaved, so that both see the same machine load.
        before = len(dense_calls)
        start = time.perf_counter()
        mine = metrics.bss_eval_sources(refs, ests)
        ours_time.append(time.perf_counter() - start)
        ours.append(mine)
        fallbacks += len(dense_calls) > before
        if index < n_ref:
            start = time.perf_counter()
            theirs = mir_eval.separation.bss_eval_sources(refs, ests)
            ref_time.append(time.perf_counter() - start)
            diffs = np.maximum(diffs, [np.abs(a - b).max() for a, b in zip(mine[:3], theirs[:3])])
            perm_mismatch += not np.array_equal(mine[3], theirs[3])
    metrics._dense_solve = dense_solve

    print(
        f"{args.num_utts} synthetic utterances, {args.sources} sources, 8 kHz, 3-6 s "
        f"({seconds / args.num_utts:.2f} s on average); {os.cpu_count()} CPUs, "
        f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}"
    )
    print(
        f"ours:     {1e3 * np.mean(ours_time):8.2f} ms per utterance over all {args.num_utts} "
        f"(dense fallback on {fallbacks} of them)"
    )
    if n_ref:
        ours_sub = np.mean(ours_time[:n_ref])
        print(
            f"mir_eval: {1e3 * np.mean(ref_time):8.2f} ms per utterance over the first {n_ref} only, for time "
            f"(ours on those: {1e3 * ours_sub:.2f} ms)"
        )
        per_utt = np.array(ref_time) / np.array(ours_time[:n_ref])
        print(
            f"speed ratio (mir_eval / ours, same {n_ref} utterances): {np.mean(ref_time) / ours_sub:.1f}x "
            f"in total time; per utterance: median {np.median(per_utt):.1f}x, lowest {per_utt.min():.1f}x"
        )
        print(
            f"largest |difference| on those: SDR {diffs[0]:.2e} dB, SIR {diffs[1]:.2e} dB, "
            f"SAR {diffs[2]:.2e} dB; permutation mismatches: {perm_mismatch}"
        )
    sdr = np.array([o[0] for o in ours])
    print(f"our SDR over all: mean {sdr.mean():.2f} dB, range {sdr.min():.2f} .. {sdr.max():.2f}")


if __name__ == "__main__":
    main()
