#!/usr/bin/env python3
"""Check a Kaldi data dir and report every problem, each with its file and line.

usage: utils/validate_data_dir.py [--no-feats|--need-feats] [--no-check-files] [--check-audio] <data-dir>
 e.g.: utils/validate_data_dir.py data/tr

Checks: wav.scp, utt2spk and spk2utt exist; every table is sorted (LC_ALL=C) with unique keys and
no empty line or value; every per-utterance table (wav.scp, spk<N>.scp, utt2num_samples, feats.scp,
utt2*) has the utterances of utt2spk; spk2utt lists each utterance under its speaker, sorted;
utt2num_samples holds positive integers; feats.scp holds '<ark>:<offset>' values; the wav and ark
files exist (not checked for commands ending in '|'; relative paths are from the current dir) and
each feats.scp entry lies whole in its ark.
--no-feats        ignore feats.scp
--need-feats      feats.scp is required (by default it is checked when present)
--no-check-files  do not check that the referenced files exist
--check-audio     also read the header of every wav of wav.scp and spk<N>.scp: a file that is
                  unreadable, truncated (shorter than its header says), empty or multi-channel,
                  a sample rate other than that of most files, a reference whose length differs
                  from its mixture's, a wrong utt2num_samples value
Exit status 0 and a one-line summary when the dir is valid, 1 after listing the problems.
"""

import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir


def main():
    parser = datadir.usage_parser(__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--no-feats", dest="feats", action="store_const", const="ignore", default="optional")
    group.add_argument("--need-feats", dest="feats", action="store_const", const="required")
    parser.add_argument("--no-check-files", dest="check_files", action="store_false")
    parser.add_argument("--check-audio", action="store_true")
    parser.add_argument("data_dir")
    args = parser.parse_args()
    problems, num_utts, num_spks = datadir.check_data_dir(args.data_dir, args.feats, args.check_files, args.check_audio)
    data_dir = args.data_dir.rstrip("/") or "/"
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(f"validate_data_dir.py: {data_dir}: {len(problems)} problem(s) found")
    tables = datadir.utt_table_names(data_dir, feats=args.feats != "ignore") + ["spk2utt"]
    print(f"validate_data_dir.py: {data_dir} is valid: {num_utts} utterances, {num_spks} speakers ({' '.join(tables)})")


if __name__ == "__main__":
    main()
