#!/usr/bin/env python3
"""Split a data dir into N parts for parallel jobs (Kaldi's split_data.sh layout).

usage: utils/split_data.py [--per-spk] [--at-most] <data-dir> <N>
 e.g.: utils/split_data.py data/tr 4    # writes data/tr/split4/{1,2,3,4}/
       nj=$(utils/split_data.py --at-most data/tt "$nj")   # a step's jobs: at most one per utterance

Every per-utterance table (utt2spk, wav.scp, spk<N>.scp, feats.scp, utt2*) is split into N
contiguous parts of the sorted utterances whose sizes differ by at most one; each part gets its own
spk2utt, and a copy of the set's stft.conf and cmvn if present. With --per-spk, the speakers are
split instead, so that each speaker's utterances stay in one part. The same input always gives the
same parts. An existing split<N> made the same way after the last change of the data dir is
reused; otherwise it is rewritten atomically. The data dir must pass
utils/validate_data_dir.py --no-check-files.
With --at-most, N is lowered to the number of utterances (of speakers with --per-spk) where it is
larger, and the number of parts made is printed on stdout: the steps split their data dir for N
jobs this way and run as many jobs as there are parts.
"""

import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datadir


def main():
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("--per-spk", action="store_true", help="keep each speaker's utterances in one part")
    parser.add_argument(
        "--at-most", action="store_true", help="fewer parts where there are fewer utterances; print the count"
    )
    parser.add_argument("data_dir")
    parser.add_argument("num_parts", type=int)
    args = parser.parse_args()
    try:
        split_dir, reused, sizes = datadir.split_data_dir(args.data_dir, args.num_parts, args.per_spk, args.at_most)
    except datadir.DataDirError as e:
        sys.exit(f"split_data.py: {e}")
    what = "reused up-to-date" if reused else "wrote"
    print(
        f"split_data.py: {what} {split_dir}: {len(sizes)} parts of {min(sizes)}-{max(sizes)} utterances",
        file=sys.stderr,
    )
    if args.at_most:
        print(len(sizes))


if __name__ == "__main__":
    main()
