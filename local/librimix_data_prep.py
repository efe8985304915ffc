#!/usr/bin/env python3
"""Kaldi data dirs of a LibriMix tree, from its mixture lists (metadata/mixture_<set>_<type>.csv).

usage: local/librimix_data_prep.py [options] <librimix-dir> <data-root>
 e.g.: local/librimix_data_prep.py --mix-type mix_both /data/Libri2Mix/wav8k/min data

<librimix-dir> is one rate and mode of a LibriMix tree (made by stage 0 or by LibriMix's own
scripts): <dir>/metadata/mixture_<set>_<type>.csv lists the mixtures and <dir>/<set>/{<type>,s1,..,
sN,noise}/<mixture_ID>.wav holds them. The CSV's paths are not used (they are absolute paths of the
machine that made the corpus): the files are taken from <librimix-dir>, so a moved tree works.
Writes <data-root>/<name>/ with wav.scp (the mixtures), spk1.scp .. spkN.scp (the clean sources:
the references of scoring), noise1.scp (mix_both: the noise), utt2spk, spk2utt, utt2num_samples.
Utterance ids: <spkA>_<spkB>_<mixture_ID> of speaker group <spkA>_<spkB>, the LibriSpeech speakers of
the mixture_ID's utterances (<speaker>-<chapter>-<utterance>), as Kaldi sorts an utterance after its
speaker. Every wav header is checked (utils/validate_data_dir.py --check-audio).

options:
  --mix-type TYPE   mix_clean (speech only) or mix_both (speech + noise) (default: mix_both)
  --num-spk N       sources per mixture: 2 (Libri2Mix) or 3 (Libri3Mix) (default: 2)
  --sets LIST       <LibriMix set>:<data dir name> pairs (default: "train-100:tr dev:cv test:tt")
"""

import argparse
import csv
import os
import shutil
import sys

from nnet import datadir, datafiles


class PrepError(Exception):
    """Bad input: the message names the file and line and says what to do."""


def speaker_group(mixture_id, num_spk, where):
    parts = mixture_id.split("_")
    speakers = [p.split("-")[0] for p in parts]
    if len(parts) != num_spk or any(p.count("-") != 2 or not s for p, s in zip(parts, speakers)):
        raise PrepError(
            f"{where}: mixture_ID '{mixture_id}' is not {num_spk} LibriSpeech utterance ids "
            "(<speaker>-<chapter>-<utterance>) joined by '_'; is --num-spk right?"
        )
    return "_".join(speakers)


def prepare(src, subset, name, args, data_root):
    csv_path = os.path.join(src, "metadata", f"mixture_{subset}_{args.mix_type}.csv")
    if not os.path.isfile(csv_path):
        raise PrepError(
            f"{csv_path} not found: stage 0 has not finished this set (or the tree has no {args.mix_type}: "
            "--mix-type mix_clean for a tree made without noise)"
        )
    kinds = [f"s{i}" for i in range(1, args.num_spk + 1)] + (["noise"] if args.mix_type == "mix_both" else [])
    tables = {
        t: {} for t in ["wav.scp", "utt2spk", "utt2num_samples"] + [f"spk{i}.scp" for i in range(1, args.num_spk + 1)]
    }
    if args.mix_type == "mix_both":
        tables["noise1.scp"] = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for column in ("mixture_ID", "length"):
            if column not in (reader.fieldnames or []):
                raise PrepError(f"{csv_path}: no column {column}: is it a LibriMix mixture list?")
        for lineno, row in enumerate(reader, 2):
            where = f"{csv_path}:{lineno}"
            mixture = row["mixture_ID"]
            group = speaker_group(mixture, args.num_spk, where)
            utt = f"{group}_{mixture}"
            if utt in tables["wav.scp"]:
                raise PrepError(f"{where}: mixture '{mixture}' listed twice")
            folder = os.path.join(src, subset)
            tables["wav.scp"][utt] = os.path.join(folder, args.mix_type, mixture + ".wav")
            for kind in kinds:
                table = "noise1.scp" if kind == "noise" else f"spk{kind[1:]}.scp"
                tables[table][utt] = os.path.join(folder, kind, mixture + ".wav")
            tables["utt2spk"][utt] = group
            if not row["length"].isdigit() or int(row["length"]) == 0:
                raise PrepError(f"{where}: length '{row['length']}' is not a positive number of samples")
            tables["utt2num_samples"][utt] = row["length"]
    if not tables["wav.scp"]:
        raise PrepError(f"{csv_path} lists no mixture; rerun stage 0")
    final = os.path.join(data_root, name)
    tmp = os.path.join(data_root, f".{name}.tmp.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for table, values in tables.items():
            datafiles.write_table(os.path.join(tmp, table), values)
        datadir.write_spk2utt(os.path.join(tmp, "spk2utt"), tables["utt2spk"])
        problems, num_utts, num_spks = datadir.check_data_dir(tmp, "ignore", True, True)
        if problems:
            for problem in problems:
                print(str(problem).replace(tmp, final), file=sys.stderr)
            raise PrepError(f"the data dir made from {csv_path} is not valid (problems above); rerun stage 0")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"librimix_data_prep.py: {final}: {num_utts} utterances, {num_spks} speaker groups ({subset}, {args.mix_type})"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, usage=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mix-type", default="mix_both", choices=("mix_clean", "mix_both"))
    parser.add_argument("--num-spk", type=int, default=2, choices=(2, 3))
    parser.add_argument("--sets", default="train-100:tr dev:cv test:tt")
    parser.add_argument("src")
    parser.add_argument("data_root")
    args = parser.parse_args(argv)
    try:
        if not os.path.isdir(args.src):
            raise PrepError(
                f"{args.src}: no such directory; give one rate and mode of the tree, e.g. Libri2Mix/wav8k/min"
            )
        pairs = [p.split(":") for p in args.sets.split()]
        if not pairs or any(len(p) != 2 or not all(p) for p in pairs):
            raise PrepError(f"--sets '{args.sets}': expected <LibriMix set>:<data dir name> pairs, e.g. 'dev:cv'")
        for subset, name in pairs:
            prepare(os.path.abspath(args.src), subset, name, args, args.data_root)
    except PrepError as e:
        print(f"librimix_data_prep.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
