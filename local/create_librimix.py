#!/usr/bin/env python3
"""Create LibriMix (Libri2Mix, Libri3Mix) from LibriSpeech and WHAM! noise, as LibriMix's scripts do.

usage: local/create_librimix.py metadata  --librispeech DIR [--wham DIR] --num-spk N --metadata DIR [options]
       local/create_librimix.py mixtures  --librispeech DIR [--wham DIR] --num-spk N --metadata DIR --out DIR [options]
       local/create_librimix.py index     --num-spk N --metadata DIR --out DIR [options]
 e.g.: local/create_librimix.py metadata --librispeech /data/LibriSpeech --wham /data/wham_noise \\
           --num-spk 2 --metadata Libri2Mix/metadata
       local/create_librimix.py mixtures ... --out Libri2Mix --sample-rates 8k --modes min --job 1 --num-jobs 4
       local/create_librimix.py index ... --out Libri2Mix --sample-rates 8k --modes min

metadata: writes <metadata>/libri<N>mix_<subset>.csv (columns mixture_ID, source_1_path, source_1_gain,
  .., noise_path, noise_gain; paths relative to --librispeech and --wham), by the rules of
  nnet/librimix.py: training subsets use each utterance of 3 s or more once (--train-mixtures N:
  only the first N mixtures of that draw, a smaller corpus for a quick run); dev and test draw
  --dev-test-mixtures (3000, LibriMix's count) distinct groups; each mixture gets an unused WHAM!
  noise of its set (tr, cv, tt) at least as long as its longest source (training sets: the longest
  one left when none is; dev/test: the group is dropped); when every noise of tr has been used, they
  are used again (LibriMix adds speed-perturbed noise copies instead: for the exact corpus give the
  official CSVs with --metadata and skip this step). Row counts of 100 or more are rounded down to a
  multiple of 100, as LibriMix does. An existing CSV is kept, never overwritten.
  Without --wham the CSVs have no noise columns and only mix_clean can be made.
mixtures: for every row of <metadata>/libri<N>mix_<subset>.csv (the official ones or those made above)
  writes <out>/wav<rate>/<mode>/<set>/{s1..sN,noise,mix_clean,mix_both}/<mixture_ID>.wav (16-bit).
  A mixture whose files all exist is skipped: an interrupted run is restarted where it stopped.
index: after every job: checks that each row's files exist and writes the mixture lists
  <out>/wav<rate>/<mode>/metadata/mixture_<set>_<type>.csv (mixture_ID, mixture_path, source_1_path,
  .., noise_path, length), as LibriMix's own tree has them.

options:
  --subsets LIST        LibriSpeech subsets (default: train-clean-100,dev-clean,test-clean)
  --sample-rates LIST   8k, 16k or 8k,16k (default: 8k)
  --modes LIST          min, max or min,max (default: min)
  --types LIST          mix_clean, mix_both or both (default: mix_clean,mix_both; mix_both needs noise)
  --seed N              metadata draws (default: 72)
  --dev-test-mixtures N mixtures of dev and test (default: 3000)
  --train-mixtures N    at most N mixtures of a training subset (default: 0, every utterance once)
  --job J --num-jobs N  mixtures: this job takes every N-th row, starting with row J (default 1 1)
"""

import argparse
import csv
import os
import random
import sys

from nnet import corpus, datafiles, librimix
from nnet.corpus import CreationError

MODES = ("min", "max")
TYPES = ("mix_clean", "mix_both")


def find_root(path, option, child, what):
    """The folder that holds `child` (LibriSpeech/, wham_noise/ above it are accepted too)."""
    for base in (path, os.path.join(path, what)):
        if os.path.isdir(os.path.join(base, child)):
            return base
    raise CreationError(f"{option} {path}: no {child}/ in it (nor in {what}/ there); give the {what} folder")


def read_audio(path, first_channel=False):
    """16 kHz float64 samples (datafiles.read_wav's checks); WHAM!'s two-channel noise gives its first channel."""
    samples, rate = datafiles.read_wav(path, dtype="float64", first_channel=first_channel)
    if rate != librimix.RATE:
        raise datafiles.AudioError(path, f"sample rate {rate} Hz; LibriSpeech and WHAM! noise are {librimix.RATE} Hz")
    return samples


def num_samples(path):
    return datafiles.wav_info(path, first_channel=True).num_samples


def csv_name(num_spk, subset):
    return f"libri{num_spk}mix_{subset}.csv"


def source_columns(num_spk):
    return [c for i in range(1, num_spk + 1) for c in (f"source_{i}_path", f"source_{i}_gain")]


def list_utterances(librispeech, subset):
    """[(speaker, utterance id, path relative to the root, samples)] of a subset, sorted by path."""
    top = os.path.join(librispeech, subset)
    if not os.path.isdir(top):
        raise CreationError(f"{top}: no such LibriSpeech subset; unpack {subset}.tar.gz under {librispeech}")
    found = []
    for folder, _, files in sorted(os.walk(top)):
        for name in sorted(files):
            if name.endswith(".flac"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, librispeech)
                speaker = rel.split(os.sep)[1]
                found.append((speaker, name[: -len(".flac")], rel.replace(os.sep, "/"), num_samples(path)))
    if not found:
        raise CreationError(f"{top}: holds no .flac file (LibriSpeech's <speaker>/<chapter>/<utt>.flac)")
    return found


def write_metadata(args, librispeech, wham, subset):
    path = os.path.join(args.metadata, csv_name(args.num_spk, subset))
    if os.path.exists(path):
        print(f"{path} exists: kept (remove it to draw it again)")
        return
    if subset not in librimix.SETS:
        raise CreationError(f"--subsets {subset}: expected some of {','.join(librimix.SETS)}")
    rng = random.Random(f"{args.seed} {subset}")
    minimum = librimix.MIN_SECONDS * librimix.RATE
    utterances = [u for u in list_utterances(librispeech, subset) if u[3] >= minimum]
    train = subset.startswith("train")
    groups = librimix.group_utterances(utterances, args.num_spk, rng, reuse=not train, target=args.dev_test_mixtures)
    if train and args.train_mixtures:
        groups = groups[: args.train_mixtures]  # the draw is shuffled: its first N are a random N
    noises = []
    if wham:
        noise_dir = os.path.join(wham, librimix.WHAM_SUBSET[librimix.SETS[subset]])
        names = sorted(n for n in os.listdir(noise_dir) if n.endswith(".wav")) if os.path.isdir(noise_dir) else []
        if not names:
            raise CreationError(f"{noise_dir}: no WHAM! noise wav files; give --wham the wham_noise folder")
        noises = [
            (os.path.relpath(os.path.join(noise_dir, n), wham), num_samples(os.path.join(noise_dir, n))) for n in names
        ]
    unused = list(range(len(noises)))
    rows = []
    for group in groups:
        members = [utterances[i] for i in group]
        noise = None
        if wham:
            if not unused:
                unused = list(range(len(noises)))  # every noise used: again (see the usage)
            longest = max(m[3] for m in members)
            fitting = [i for i in unused if noises[i][1] >= longest]
            if fitting:
                noise = rng.choice(fitting)
            elif train:
                noise = max(unused, key=lambda i: noises[i][1])
            else:
                continue
            unused.remove(noise)
        sources = [read_audio(os.path.join(librispeech, m[2])) for m in members]
        noise_samples = read_audio(os.path.join(wham, noises[noise][0]), first_channel=True) if wham else None
        try:
            gains, noise_gain = librimix.draw_gains(sources, noise_samples, rng)
        except ValueError as e:
            raise CreationError(f"mixture of {', '.join(m[2] for m in members)}: {e}") from None
        row = ["_".join(m[1] for m in members)]
        for m, gain in zip(members, gains):
            row += [m[2], repr(float(gain))]
        if wham:
            row += [noises[noise][0].replace(os.sep, "/"), repr(float(noise_gain))]
        rows.append(row)
    if len(rows) >= 100:
        rows = rows[: len(rows) // 100 * 100]
    if not rows:
        raise CreationError(f"{subset}: no mixture could be made (too few speakers or utterances of 3 s or more)")
    header = ["mixture_ID"] + source_columns(args.num_spk) + (["noise_path", "noise_gain"] if wham else [])
    with datafiles.atomic_write(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{path}: {len(rows)} mixtures of {len(utterances)} utterances of 3 s or more")


def read_metadata(args, subset):
    """(path, [(line number, row dict)]) of a metadata CSV, its columns checked."""
    path = os.path.join(args.metadata, csv_name(args.num_spk, subset))
    if not os.path.isfile(path):
        raise CreationError(
            f"{path} not found: run the metadata step first, or give --metadata the folder of the "
            f"official LibriMix CSVs (metadata/Libri{args.num_spk}Mix in LibriMix's repository)"
        )
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in ["mixture_ID"] + source_columns(args.num_spk) if c not in header]
        if missing:
            raise CreationError(f"{path}: no column {', '.join(missing)}: is it a Libri{args.num_spk}Mix metadata CSV?")
        rows = list(enumerate(reader, 2))
    for lineno, row in rows:
        for column in header:
            if row.get(column) in (None, ""):
                raise CreationError(f"{path}:{lineno}: empty {column}")
    return path, rows, "noise_path" in header


def output_dir(args, rate, mode, subset):
    return os.path.join(args.out, f"wav{rate}", mode, librimix.SETS[subset])


def kinds(num_spk, types, noisy):
    out = [f"s{i}" for i in range(1, num_spk + 1)] + [t for t in types if t == "mix_clean"]
    return out + (["noise", "mix_both"] if noisy and "mix_both" in types else [])


def write_mixtures(args, librispeech, wham, subset):
    path, rows, noisy = read_metadata(args, subset)
    if "mix_both" in args.types and not noisy:
        raise CreationError(f"{path} has no noise columns: mix_both needs them (use --types mix_clean)")
    if noisy and "mix_both" in args.types and not wham:
        raise CreationError("mix_both needs the noise: give --wham the wham_noise folder (or --types mix_clean)")
    mine = rows[args.job - 1 :: args.num_jobs]

    def files_of(name):
        """{(rate, mode): {kind: path}} of one mixture."""
        return {
            (rate, mode): {
                k: os.path.join(output_dir(args, rate, mode, subset), k, name + ".wav")
                for k in kinds(args.num_spk, args.types, noisy)
            }
            for rate in args.sample_rates
            for mode in args.modes
        }

    # what a killed run of this job left, all at once: one listing of each folder, not one a mixture
    datafiles.remove_temporaries(
        f for _, row in mine for files in files_of(row["mixture_ID"]).values() for f in files.values()
    )
    written = 0
    for lineno, row in mine:
        todo = [
            (rate, mode, files)
            for (rate, mode), files in files_of(row["mixture_ID"]).items()
            if not all(os.path.isfile(f) for f in files.values())
        ]
        if not todo:
            continue
        where = f"{path}:{lineno}"
        try:
            sources = [
                read_audio(os.path.join(librispeech, row[f"source_{i}_path"])) for i in range(1, args.num_spk + 1)
            ]
            gains = [float(row[f"source_{i}_gain"]) for i in range(1, args.num_spk + 1)]
            noise = noise_gain = None
            if noisy and "mix_both" in args.types:
                longest = max(len(s) for s in sources)
                noise = read_audio(os.path.join(wham, row["noise_path"]), first_channel=True)[:longest]
                noise_gain = float(row["noise_gain"])
            for rate, mode, files in todo:
                made = librimix.make_mixture(sources, gains, noise, noise_gain, librimix.RATES[rate], mode)
                for kind, file in files.items():
                    datafiles.write_wav(file, made[kind], librimix.RATES[rate])
        except (datafiles.AudioError, ValueError) as e:
            raise CreationError(f"{where}: {e}") from None
        written += 1
    print(f"{subset}: job {args.job}/{args.num_jobs}: {len(mine)} of {len(rows)} mixtures, {written} written")


def write_index(args, subset):
    path, rows, noisy = read_metadata(args, subset)
    for rate in args.sample_rates:
        for mode in args.modes:
            folder = output_dir(args, rate, mode, subset)
            for mix_type in args.types:
                if mix_type == "mix_both" and not noisy:
                    continue
                names = [f"s{i}" for i in range(1, args.num_spk + 1)] + (["noise"] if mix_type == "mix_both" else [])
                lines, missing = [], []
                for _, row in rows:
                    name = row["mixture_ID"]
                    files = [os.path.abspath(os.path.join(folder, k, name + ".wav")) for k in [mix_type] + names]
                    missing += [f for f in files if not os.path.isfile(f)]
                    if not missing:
                        lines.append([name] + files + [datafiles.wav_info(files[0]).num_samples])
                if missing:
                    raise CreationError(
                        f"{folder}: {len(missing)} file(s) of {path} missing, e.g. {missing[0]}: "
                        "the mixtures step has not finished; run it again (it makes only what is missing)"
                    )
                header = ["mixture_ID", "mixture_path"] + [f"source_{i}_path" for i in range(1, args.num_spk + 1)]
                header += (["noise_path"] if mix_type == "mix_both" else []) + ["length"]
                index = os.path.join(
                    args.out, f"wav{rate}", mode, "metadata", f"mixture_{librimix.SETS[subset]}_{mix_type}.csv"
                )
                with datafiles.atomic_write(index, newline="") as f:
                    writer = csv.writer(f)
                    writer.writerow(header)
                    writer.writerows(lines)
                print(f"{index}: {len(lines)} mixtures")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, usage=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=("metadata", "mixtures", "index"))
    parser.add_argument("--librispeech")
    parser.add_argument("--wham")
    parser.add_argument("--num-spk", type=int, required=True, choices=(2, 3))
    parser.add_argument("--metadata", required=True)
    parser.add_argument("--out")
    parser.add_argument("--subsets", default="train-clean-100,dev-clean,test-clean")
    parser.add_argument("--sample-rates", default="8k")
    parser.add_argument("--modes", default="min")
    parser.add_argument("--types", default="mix_clean,mix_both")
    parser.add_argument("--seed", type=int, default=72)
    parser.add_argument("--dev-test-mixtures", type=int, default=3000)
    parser.add_argument("--train-mixtures", type=int, default=0)
    parser.add_argument("--job", type=int, default=1)
    parser.add_argument("--num-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        subsets = corpus.parse_list(args.subsets, tuple(librimix.SETS), "--subsets")
        args.sample_rates = corpus.parse_list(args.sample_rates, tuple(librimix.RATES), "--sample-rates")
        args.modes = corpus.parse_list(args.modes, MODES, "--modes")
        args.types = corpus.parse_list(args.types, TYPES, "--types")
        if args.dev_test_mixtures < 1 or args.train_mixtures < 0:
            raise CreationError(
                f"--dev-test-mixtures {args.dev_test_mixtures} --train-mixtures {args.train_mixtures}: "
                "need 1 or more dev/test mixtures and 0 (all) or more training mixtures"
            )
        if not 1 <= args.job <= args.num_jobs:
            raise CreationError(f"--job {args.job} --num-jobs {args.num_jobs}: need 1 <= job <= num-jobs")
        if args.step != "index" and not args.librispeech:
            raise CreationError(f"{args.step} needs --librispeech DIR (the LibriSpeech folder)")
        if args.step != "metadata" and not args.out:
            raise CreationError(f"{args.step} needs --out DIR")
        librispeech = wham = None
        if args.librispeech:
            librispeech = find_root(args.librispeech, "--librispeech", subsets[0], "LibriSpeech")
        if args.wham:
            wham = find_root(args.wham, "--wham", librimix.WHAM_SUBSET[librimix.SETS[subsets[0]]], "wham_noise")
        for subset in subsets:
            if args.step == "metadata":
                write_metadata(args, librispeech, wham, subset)
            elif args.step == "mixtures":
                write_mixtures(args, librispeech, wham, subset)
            else:
                write_index(args, subset)
    except (CreationError, datafiles.AudioError) as e:
        print(f"create_librimix.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
