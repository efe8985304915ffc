#!/usr/bin/env python3
"""Score separated speech against the references of a data dir (called by steps/score.sh).

usage: score.py compute --separated <sep-dir> <data-dir> <part.tsv>   score a separation
       score.py compute --mixture <data-dir> <part.tsv>               score the unprocessed mixture
       score.py merge <data-dir> <score-dir> <part.tsv>...            -> per_utt.tsv, result.txt

<data-dir> holds wav.scp (mixtures) and spk1.scp .. spkN.scp (references, N = 2 or 3: the files
present); <sep-dir> holds spk1.scp .. spkN.scp listing the estimates. --mixture scores the mixture
as the estimate of every source (the first row of RESULTS.md). Metrics (nnet/metrics.py):
BSS Eval v3 SDR SIR SAR, SDRi, SI-SNR, SI-SNRi, PESQ, STOI, each the mean over the sources of an
utterance, estimates matched to references by BSS Eval's best permutation.

Every utterance is scored, nothing is skipped: a silent estimate scores every metric's floor
(nnet/metrics.py: -150 dB, PESQ 1.0, STOI 0.0), PESQ failing on an estimate scores PESQ's, and a STOI
below 0 is clipped to STOI's; each with a warning naming the utterance and the cause on stderr, which
steps/score.sh's jobs write to <score-dir>/log/score.<job>.log. per_utt.tsv's last column 'floored'
lists the metrics at their floor for the utterance
('-' for none), and result.txt counts the utterances scored (num_utts) and, per metric, those at
the floor (floored_<metric>). Input that cannot be scored stops the job, naming the utterance and
the file: an estimate of another length than its references, NaN or infinite samples, a silent
reference or mixture (a corpus error), a missing estimate.

Before scoring, each utterance's references must be what scoring assumes (check_sources): no two the
same signal (a data dir listing one source twice scores SIR 150 dB), and their sum (with the noise of
noise<n>.scp, LibriMix's mix_both) the mixture, within the rounding of 16-bit files (a mixture that is
not made of them turns SDRi into nonsense); and long enough for BSS Eval's filters (nnet/metrics.py).
"""

import argparse
import glob
import math
import os
import re
import sys
import warnings

import numpy as np

from nnet import datafiles, metrics

HEADER = "\t".join(("utt",) + metrics.METRICS + ("floored",))


def fail(message):
    sys.exit(f"score.py: {message}")


def source_tables(directory, what):
    """Paths of spk1.scp .. spkN.scp in directory (consecutive numbering required)."""
    numbers = sorted(
        int(m.group(1)) for name in os.listdir(directory) if (m := re.fullmatch(r"spk([0-9]+)\.scp", name))
    )
    if not numbers:
        fail(f"{directory}: no spk1.scp, spk2.scp: {what}")
    if numbers != list(range(1, len(numbers) + 1)):
        fail(f"{directory}: spk*.scp numbered {numbers}; expected spk1.scp .. spk{len(numbers)}.scp")
    return [os.path.join(directory, f"spk{n}.scp") for n in numbers]


def read_entry(table, table_path, utt, what):
    if utt not in table:
        fail(
            f"utterance '{utt}': no {what} in {table_path}; "
            "(re)run the stage that writes it for every utterance of the data dir"
        )
    path = table[utt]
    if not os.path.isfile(path):
        fail(f"utterance '{utt}': {what} file {path} (listed in {table_path}) does not exist")
    try:
        return datafiles.read_wav(path, dtype="float64") + (path,)
    except Exception as err:  # soundfile's errors do not always name the file
        fail(f"utterance '{utt}': cannot read {what} {path} (listed in {table_path}): {err}")


# Two talkers' recordings correlate far less than this; a source listed twice (or once more at
# another gain) correlates 1.
SAME_SIGNAL_CORRELATION = 0.99
LSB = 1 / 32768  # a 16-bit sample as nnet.datafiles reads it


def check_sources(utt, refs, noises, mix):
    """refs, noises: [(samples, rate, path)] of the references and of the noise tables; mix the
    mixture's. Stops naming the utterance and the files when two references are one signal or when
    the mixture is not their sum (plus the noise), as a corpus writes it: each of the n + 1 16-bit
    files rounds its samples by up to half an LSB, and one LSB more covers writers that scale by
    32767 instead of 32768. Lengths and silence are score_utterance's to check."""
    length = len(mix[0])
    if any(len(samples) != length or metrics.is_silent(samples) for samples, _, _ in refs + noises):
        return  # score_utterance names these, the more telling fault
    for i, (a, _, path_a) in enumerate(refs):
        for j, (b, _, path_b) in enumerate(refs[i + 1 :], i + 1):
            norms = float(np.linalg.norm(a) * np.linalg.norm(b))
            correlation = abs(float(np.dot(a, b))) / norms if norms > 0 else 0.0
            if correlation > SAME_SIGNAL_CORRELATION:
                fail(
                    f"utterance '{utt}': references {i + 1} and {j + 1} are the same signal ({path_a}, {path_b}): "
                    f"normalized correlation {correlation:.4f}, where two talkers stay far below "
                    f"{SAME_SIGNAL_CORRELATION}: the data dir lists one source twice; fix its spk*.scp"
                )
    worst = float(np.max(np.abs(mix[0] - sum(s for s, _, _ in refs + noises))))
    tolerance = (len(refs) + len(noises) + 1) / 2 + 1  # in LSB, as the docstring says
    if worst > tolerance * LSB:
        parts = ", ".join(path for _, _, path in refs + noises)
        noise = " and the noise" if noises else ""
        clipped = int(np.sum(np.abs(mix[0]) >= 1 - LSB))
        why = (
            f"the mixture is clipped ({clipped} samples at full scale): make the corpus with its sources scaled so "
            "that their sum does not clip, as wsj0-2mix's and LibriMix's scripts do"
            if clipped
            else "the mixture and these sources do not belong together (another corpus, a table that points "
            "elsewhere); fix the data dir's tables"
        )
        fail(
            f"utterance '{utt}': the mixture {mix[2]} is not the sum of its references{noise} ({parts}): they differ "
            f"by up to {worst:.4g} ({worst / LSB:.0f} LSB at 16 bits, where rounding the files explains "
            f"{tolerance:g}): {why}"
        )


def format_value(value):
    return f"{round(value, 4) + 0.0:.4f}"  # + 0.0: no "-0.0000"


def compute(args):
    ref_paths = source_tables(args.data_dir, "the references are needed for scoring")
    if args.separated:
        est_paths = source_tables(args.separated, "run the separation stage first")
        if len(est_paths) != len(ref_paths):
            fail(f"{args.separated} has {len(est_paths)} spk*.scp, {args.data_dir} has {len(ref_paths)}")
        est_tables = [datafiles.read_table(p) for p in est_paths]
    ref_tables = [datafiles.read_table(p) for p in ref_paths]
    noise_paths = sorted(glob.glob(os.path.join(args.data_dir, "noise[0-9]*.scp")))  # LibriMix's mix_both
    noise_tables = [datafiles.read_table(p) for p in noise_paths]
    mix_path = os.path.join(args.data_dir, "wav.scp")
    mixtures = datafiles.read_table(mix_path)

    rows = []
    for utt in sorted(mixtures):
        mixture, rate, mix_file = read_entry(mixtures, mix_path, utt, "mixture")
        refs = [read_entry(t, p, utt, f"reference {n}") for n, (t, p) in enumerate(zip(ref_tables, ref_paths), 1)]
        if args.separated:
            ests = [read_entry(t, p, utt, f"estimate {n}") for n, (t, p) in enumerate(zip(est_tables, est_paths), 1)]
        else:
            ests = [(mixture, rate, mix_file)] * len(refs)
        for samples, r, path in refs + ests:
            if r != rate:
                fail(f"utterance '{utt}': {path} is at {r} Hz, the mixture {mix_file} at {rate} Hz")
        if len({len(samples) for samples, _, _ in refs}) > 1:
            fail(f"utterance '{utt}': the references {[p for _, _, p in refs]} differ in length")
        noises = [read_entry(t, p, utt, f"noise {n}") for n, (t, p) in enumerate(zip(noise_tables, noise_paths), 1)]
        check_sources(utt, refs, noises, (mixture, rate, mix_file))
        paths = {
            f"{kind} {n}": path
            for kind, signals in (("reference", refs), ("estimate", ests))
            for n, (_, _, path) in enumerate(signals, 1)
        }
        paths["mixture"] = mix_file
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", metrics.MetricWarning)
            try:
                scores = metrics.score_utterance(
                    np.stack([s for s, _, _ in refs]), [s for s, _, _ in ests], mixture, rate, utt
                )
            except metrics.ScoreError as err:
                fail(f"{err} ({paths[err.signal]})" if err.signal else str(err))
        for w in caught:
            print(f"score.py: WARNING: {w.message}", file=sys.stderr)
        rows.append(
            "\t".join([utt] + [format_value(scores[m]) for m in metrics.METRICS] + [",".join(scores["floored"]) or "-"])
        )

    with datafiles.atomic_write(args.out_tsv, encoding="utf-8") as f:
        f.write(HEADER + "\n")
        f.writelines(row + "\n" for row in rows)
    what = args.separated or "the mixtures"
    print(f"score.py: scored {len(rows)} utterances of {args.data_dir} ({what}) -> {args.out_tsv}", file=sys.stderr)


def read_part(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or lines[0] != HEADER:
        fail(f"{path}:1: header is not '{HEADER}': re-run the scoring job that wrote it")
    table = {}
    num_fields = len(HEADER.split("\t"))
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != num_fields:
            fail(f"{path}:{lineno}: {len(fields)} fields, expected {num_fields}")
        values = []
        for name, value in zip(metrics.METRICS, fields[1:]):
            try:
                values.append(float(value))
            except ValueError:
                values.append(math.nan)
            if not math.isfinite(values[-1]):  # nothing may be left out of a mean
                fail(f"{path}:{lineno}: value '{value}' of {name} is not a finite number: re-run the scoring job")
        floored = [] if fields[-1] == "-" else fields[-1].split(",")
        if not set(floored) <= set(metrics.METRICS):
            fail(f"{path}:{lineno}: floored '{fields[-1]}' is not '-' or metric names: re-run the scoring job")
        table[fields[0]] = (values, floored)
    return table


def summarize(rows):
    """Lines of result.txt: the mean of each metric over all utterances, num_utts, and per metric the
    number of utterances with a source at the metric's floor (floored_<metric>)."""
    values = np.array([v for v, _ in rows.values()], dtype=np.float64).reshape(len(rows), len(metrics.METRICS))
    lines = [f"{name} {format_value(float(values[:, m].mean()))}" for m, name in enumerate(metrics.METRICS)]
    lines.append(f"num_utts {len(rows)}")
    lines += [f"floored_{name} {sum(name in floored for _, floored in rows.values())}" for name in metrics.METRICS]
    return lines


def merge(args):
    rows = {}
    for part in args.parts:
        for utt, values in read_part(part).items():
            if utt in rows:
                fail(f"{part}: utterance '{utt}' also in another part")
            rows[utt] = values
    expected = datafiles.read_table(os.path.join(args.data_dir, "wav.scp"))
    missing = [utt for utt in expected if utt not in rows]
    if missing:
        fail(
            f"{len(missing)} utterances of {args.data_dir} not scored, e.g. '{missing[0]}': "
            f"read {args.score_dir}/log/score.*.log"
        )
    rows = {utt: rows[utt] for utt in sorted(expected)}
    with datafiles.atomic_write(os.path.join(args.score_dir, "per_utt.tsv"), encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for utt, (values, floored) in rows.items():
            f.write("\t".join([utt] + [format_value(v) for v in values] + [",".join(floored) or "-"]) + "\n")
    summary = summarize(rows)
    with datafiles.atomic_write(os.path.join(args.score_dir, "result.txt"), encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in summary))
    num_floored = sum(bool(floored) for _, floored in rows.values())
    floor_note = (
        " (a silent estimate: every metric; PESQ failing: PESQ; a STOI below 0 clipped: STOI; "
        f"the 'floored' column of {args.score_dir}/per_utt.tsv names the utterances, and "
        f"{args.score_dir}/log/score.*.log has a warning with the cause of each)"
        if num_floored
        else ""
    )
    print(
        f"score.py: {args.score_dir}/result.txt: {len(rows)} utterances scored, {num_floored} with a metric "
        f"at its floor{floor_note}: " + ", ".join(summary[: len(metrics.METRICS)])
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("compute", help="score the utterances of a data dir into one table")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--separated", metavar="SEP_DIR", help="directory with spk1.scp .. spkN.scp of estimates")
    what.add_argument("--mixture", action="store_true", help="score the mixture as every source's estimate")
    p.add_argument("data_dir")
    p.add_argument("out_tsv")
    p.set_defaults(func=compute)
    p = sub.add_parser("merge", help="merge the job tables into per_utt.tsv and result.txt")
    p.add_argument("data_dir")
    p.add_argument("score_dir")
    p.add_argument("parts", nargs="+")
    p.set_defaults(func=merge)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
