#!/usr/bin/env python3
"""Print the lines of a table whose key is (or, with --exclude, is not) in the first column of a list.

usage: utils/filter_scp.py [--exclude] [-f FIELD] <id-list> [<in-table>]
 e.g.: utils/filter_scp.py data/cv/utt2spk data/all/wav.scp > data/cv/wav.scp
       utils/filter_scp.py --exclude -f 2 bad_speakers data/tr/utt2spk

-f FIELD    compare field FIELD (1-based, whitespace-separated) of each line instead of the key
--exclude   print the lines whose field is NOT in <id-list>
The lines are printed unchanged, in the order of <in-table> (standard input when absent or '-').
"""

import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir, datafiles


def main():
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("--exclude", action="store_true")
    parser.add_argument("-f", dest="field", type=int, default=1, metavar="FIELD")
    parser.add_argument("id_list")
    parser.add_argument("in_table", nargs="?", default="-")
    args = parser.parse_args()
    if args.field < 1:
        parser.error(f"-f {args.field}: fields are numbered from 1")
    in_name = "<stdin>" if args.in_table == "-" else args.in_table
    try:
        ids = {line.key for line in datafiles.scan_table(args.id_list) if line.key is not None}
        lines = sys.stdin if args.in_table == "-" else open(args.in_table, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"filter_scp.py: {e}")
    out = sys.stdout
    with lines:
        for lineno, line in enumerate(lines, 1):
            fields = line.split()
            if len(fields) < args.field:
                sys.exit(
                    f"filter_scp.py: {in_name}:{lineno}: {len(fields)} field(s), -f {args.field} needs "
                    f"{args.field}; remove or fix the line"
                )
            if (fields[args.field - 1] in ids) != args.exclude:
                out.write(line if line.endswith("\n") else line + "\n")


if __name__ == "__main__":
    main()
