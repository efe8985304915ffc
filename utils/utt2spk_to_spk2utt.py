#!/usr/bin/env python3
"""Print the spk2utt of a utt2spk table: '<speaker> <utt1> <utt2> ...', all sorted (LC_ALL=C).

usage: utils/utt2spk_to_spk2utt.py [<utt2spk>] > spk2utt
 e.g.: utils/utt2spk_to_spk2utt.py data/tr/utt2spk > data/tr/spk2utt

Reads standard input when <utt2spk> is absent or '-'.
"""

import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir, datafiles


def main():
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("utt2spk", nargs="?", default="-")
    args = parser.parse_args()
    try:
        utt2spk = datafiles.read_table("/dev/stdin" if args.utt2spk == "-" else args.utt2spk)
    except (OSError, UnicodeDecodeError, datafiles.TableError) as e:
        sys.exit(f"utt2spk_to_spk2utt.py: {e}")
    sys.stdout.write(datadir.spk2utt_text(utt2spk))


if __name__ == "__main__":
    main()
