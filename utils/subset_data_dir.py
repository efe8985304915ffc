#!/usr/bin/env python3
"""Copy part of a data dir into a new one: the first/last N utterances, or listed utterances/speakers.

usage: utils/subset_data_dir.py (--first N | --last N | --utt-list FILE | --spk-list FILE) <src> <dest>
 e.g.: utils/subset_data_dir.py --first 100 data/tr data/tr_100
       utils/subset_data_dir.py --spk-list spk.list data/tr data/tr_some

--first/--last take the first/last N utterances in sorted order; --utt-list/--spk-list keep the
utterances/speakers named in the first column of FILE (names that are not in <src> are reported and
skipped). Every per-utterance table of <src> is filtered, spk2utt is rebuilt, the files that
describe the whole set's features (stft.conf, cmvn) are copied. <src> must pass
utils/validate_data_dir.py --no-check-files. <dest> is written in full and then put in place:
an earlier data dir there is replaced.
"""

import os
import shutil
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir, datafiles


def first_column(path):
    """The first word of each non-empty line, in file order."""
    return [line.key for line in datafiles.scan_table(path) if line.key is not None]


def listed(names, known, what, list_path):
    """The names that are known; the others are reported (the list may cover several sets)."""
    unknown = [n for n in names if n not in known]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        print(
            f"subset_data_dir.py: {len(unknown)} {what} of {list_path} are not in the source, skipped: {shown}",
            file=sys.stderr,
        )
    return [n for n in names if n in known]


def main():
    parser = datadir.usage_parser(__doc__)
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--first", type=int, metavar="N")
    choice.add_argument("--last", type=int, metavar="N")
    choice.add_argument("--utt-list", metavar="FILE")
    choice.add_argument("--spk-list", metavar="FILE")
    parser.add_argument("src")
    parser.add_argument("dest")
    args = parser.parse_args()
    src, dest = args.src.rstrip("/") or "/", args.dest.rstrip("/") or "/"

    if os.path.exists(dest) and os.path.exists(src) and os.path.samefile(src, dest):
        sys.exit(f"subset_data_dir.py: <dest> {dest} is <src>; choose another dest")
    if os.path.isfile(dest) or (
        os.path.isdir(dest) and os.listdir(dest) and not os.path.isfile(os.path.join(dest, "utt2spk"))
    ):
        sys.exit(f"subset_data_dir.py: {dest} exists and is not a data dir; remove it or choose another dest")
    try:
        datadir.require_valid(src)
    except datadir.DataDirError as e:
        sys.exit(f"subset_data_dir.py: {e}\nsubset_data_dir.py: fix the source first")
    tables = datadir.load_utt_tables(src)
    utt2spk = tables["utt2spk"]
    utts = sorted(utt2spk)

    count = args.first if args.first is not None else args.last
    if count is not None:
        if not 1 <= count <= len(utts):
            sys.exit(f"subset_data_dir.py: asked for {count} utterances; {src} has {len(utts)}: use 1 to {len(utts)}")
        chosen = utts[:count] if args.first is not None else utts[-count:]
    else:
        list_path = args.utt_list or args.spk_list
        try:
            names = first_column(list_path)
        except (OSError, UnicodeDecodeError) as e:
            sys.exit(f"subset_data_dir.py: cannot read {list_path}: {e}")
        if args.utt_list:
            chosen = listed(names, utt2spk, "utterances", list_path)
        else:
            speakers = set(listed(names, set(utt2spk.values()), "speakers", list_path))
            chosen = [u for u in utts if utt2spk[u] in speakers]
        if not chosen:
            sys.exit(f"subset_data_dir.py: no utterance of {src} is selected by {list_path}; nothing written")

    parent = os.path.dirname(os.path.abspath(dest))
    os.makedirs(parent, exist_ok=True)
    tmp = datadir.make_temp_dir(parent, f".{os.path.basename(dest)}.tmp.")
    try:
        datadir.write_data_dir(tmp, tables, chosen, src)
        datadir.replace_dir(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    num_spks = len({utt2spk[u] for u in chosen})
    print(
        f"subset_data_dir.py: wrote {len(set(chosen))} of {len(utts)} utterances ({num_spks} speakers) "
        f"of {src} to {dest}"
    )


if __name__ == "__main__":
    main()
