#!/usr/bin/env python3
"""Repair a Kaldi data dir: sort the tables, drop bad lines, keep the utterances of every table.

usage: utils/fix_data_dir.py <data-dir>
 e.g.: utils/fix_data_dir.py data/tr

- drops empty lines, lines without a value and repeated keys (the first line of a key is kept);
- keeps only the utterances present in every per-utterance table (utt2spk, wav.scp, spk<N>.scp,
  feats.scp, utt2*) and says which were removed and why;
- sorts every table (LC_ALL=C order) and rebuilds spk2utt from utt2spk.
A table is rewritten only when it changes, after a copy of it is saved in
<data-dir>/.backup/<n>/ (n = 1, 2, ...: a new folder per run, earlier backups are kept).
Exit status 1 when the dir cannot be repaired this way (the remaining problems are listed).
"""

import os
import shutil
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir, datafiles

MAX_EXAMPLES = 10


def examples(items):
    shown = ", ".join(str(item) for item in items[:MAX_EXAMPLES])
    return shown + (f" and {len(items) - MAX_EXAMPLES} more" if len(items) > MAX_EXAMPLES else "")


class Backup:
    """Copies files into <data-dir>/.backup/<n>/, a folder created on the first copy of this run."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.dir = None

    def save(self, name):
        if self.dir is None:
            root = os.path.join(self.data_dir, ".backup")
            os.makedirs(root, exist_ok=True)
            n = 1 + max((int(d) for d in os.listdir(root) if d.isdigit()), default=0)
            while True:
                try:
                    os.mkdir(os.path.join(root, str(n)))
                    break
                except FileExistsError:  # another run took this number meanwhile
                    n += 1
            self.dir = os.path.join(root, str(n))
        shutil.copy2(os.path.join(self.data_dir, name), os.path.join(self.dir, name))


def read_leniently(path, say):
    """{key: value} of the usable lines of a table (first line of each key); says what it drops."""
    table, first_line, dropped = {}, {}, []
    for line in datafiles.scan_table(path):
        if line.key is None:
            dropped.append(f"line {line.lineno} (empty)")
        elif not line.value:
            dropped.append(f"line {line.lineno} (key '{line.key}' without a value)")
        elif line.key in table:
            dropped.append(f"line {line.lineno} (duplicate key '{line.key}', kept line {first_line[line.key]})")
        else:
            table[line.key] = line.value
            first_line[line.key] = line.lineno
    if dropped:
        say(f"{path}: dropped {len(dropped)} line(s): {examples(dropped)}")
    return table


def table_text(table):
    return "".join(f"{key} {table[key]}\n" for key in sorted(table))


def file_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main():
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("data_dir")
    args = parser.parse_args()
    data_dir = args.data_dir.rstrip("/") or "/"

    def say(message):
        print(f"fix_data_dir.py: {message}")

    if not os.path.isdir(data_dir):
        sys.exit(f"fix_data_dir.py: {data_dir}: not a directory")
    if not os.path.isfile(os.path.join(data_dir, "utt2spk")):
        sys.exit(
            f"fix_data_dir.py: {data_dir}/utt2spk: missing; it is needed to rebuild spk2utt "
            "(with one speaker per utterance, write '<utt> <utt>' lines)"
        )
    names = datadir.utt_table_names(data_dir)
    try:
        tables = {name: read_leniently(os.path.join(data_dir, name), say) for name in names}
    except UnicodeDecodeError as e:
        sys.exit(f"fix_data_dir.py: {data_dir}: a table is not UTF-8 text ({e}); regenerate it")

    all_utts = set().union(*(t.keys() for t in tables.values()))
    kept = set.intersection(*(set(t) for t in tables.values()))
    if not kept:
        sys.exit(
            f"fix_data_dir.py: {data_dir}: no utterance is in every table ({' '.join(names)}); "
            "nothing changed: check that the tables belong to the same set"
        )
    removed = {}  # the tables lacking them -> removed utterances
    for utt in sorted(all_utts - kept):
        removed.setdefault(tuple(n for n in names if utt not in tables[n]), []).append(repr(utt))
    for lacking, utts in removed.items():
        say(f"{data_dir}: removed {len(utts)} utterance(s) missing from {', '.join(lacking)}: {examples(utts)}")

    backup = Backup(data_dir)
    new_texts = {name: table_text({k: v for k, v in tables[name].items() if k in kept}) for name in names}
    new_texts["spk2utt"] = datadir.spk2utt_text({u: s for u, s in tables["utt2spk"].items() if u in kept})
    changed = []
    for name, text in new_texts.items():
        path = os.path.join(data_dir, name)
        old = file_text(path)
        if old == text:
            continue
        if old is not None:
            backup.save(name)
        with datafiles.atomic_write(path, encoding="utf-8") as f:
            f.write(text)
        changed.append(name)

    num_spks = len(set(tables["utt2spk"][u] for u in kept))
    if changed:
        say(
            f"{data_dir}: rewrote {' '.join(changed)}; now {len(kept)} utterances, {num_spks} speakers"
            + (f"; the previous files are in {backup.dir}" if backup.dir else "")
        )
    else:
        say(f"{data_dir}: nothing to fix ({len(kept)} utterances, {num_spks} speakers)")

    problems, _, _ = datadir.check_data_dir(data_dir, check_files=False)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(f"fix_data_dir.py: {data_dir}: {len(problems)} problem(s) remain that this tool does not repair")


if __name__ == "__main__":
    main()
