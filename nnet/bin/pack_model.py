#!/usr/bin/env python3
"""Pack a trained system into one zip, show a pack, or unpack it into an exp dir (nnet/pack.py).

usage: pack_model.py pack --corpus TEXT --license TEXT [--citation TEXT] [--results RESULTS.md] [--phase P]
                          [--head H] [--matched-inference true --matched-steps N] <exp-dir> <pack.zip>
       pack_model.py show <pack.zip>
       pack_model.py unpack <pack.zip> <exp-dir>

unpack writes <exp-dir>/{best.pt,config.yaml,meta.yaml[,RESULTS.md]}, which steps/separate.sh
takes like a trained exp dir, with the pack's head, matched inference and phase (meta.yaml); it
refuses an exp dir that already holds a best.pt.
"""

import argparse
import os
import sys
import zipfile

import yaml

from nnet import inference, pack
from nnet.separator import HEADS, PHASES


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--corpus", required=True, help="what the system was trained on (meta.yaml: training_corpus)")
    p.add_argument("--license", required=True, help="the training corpus's licence note (meta.yaml: license)")
    p.add_argument("--citation", default="", help="what users of the model must cite (meta.yaml: citation)")
    p.add_argument("--results", help="the recipe's RESULTS.md: the system's rows go into the pack")
    p.add_argument("--phase", choices=PHASES, default="mixture", help="the phase reconstruction users get by default")
    p.add_argument("--head", choices=HEADS, help="the head users get by default (default: the model's first, mi)")
    p.add_argument(
        "--matched-inference",
        choices=("true", "false"),
        default="false",
        help="users get k-means refined by matched run-time inference (dc head) by default",
    )
    p.add_argument(
        "--matched-steps",
        type=int,
        help=f"its Adam steps: the count its figures were measured with, e.g. the recipe's rti_steps "
        f"(default: {inference.MATCHED_STEPS}, nnet/inference.py's)",
    )
    p.add_argument("exp_dir")
    p.add_argument("pack")
    s = sub.add_parser("show")
    s.add_argument("pack")
    u = sub.add_parser("unpack")
    u.add_argument("pack")
    u.add_argument("exp_dir")
    args = parser.parse_args()
    try:
        if args.command == "pack":
            if args.results and not os.path.isfile(args.results):
                sys.exit(f"pack_model.py: --results {args.results} not found")
            if args.matched_steps is not None and args.matched_inference != "true":
                sys.exit(
                    f"pack_model.py: --matched-steps {args.matched_steps} without --matched-inference true: users "
                    "would get k-means alone; add --matched-inference true, or leave --matched-steps out"
                )
            matched_steps = None
            if args.matched_inference == "true":
                matched_steps = inference.MATCHED_STEPS if args.matched_steps is None else args.matched_steps
            meta = pack.write(
                args.exp_dir,
                args.pack,
                args.corpus,
                args.license,
                args.results,
                args.phase,
                citation=args.citation,
                head=args.head,
                matched_steps=matched_steps,
            )
            print(f"pack_model.py: {args.pack}: {meta['system']} (epoch {meta['epoch']}, commit {meta['commit']})")
        elif args.command == "show":
            meta = pack.read(args.pack)[1]
            print(yaml.safe_dump(meta, sort_keys=False), end="")
        else:
            pack.read(args.pack)  # checks the format and best.pt's sha256 first
            if os.path.exists(os.path.join(args.exp_dir, "best.pt")):
                sys.exit(
                    f"pack_model.py: {args.exp_dir}/best.pt exists: unpack into a new dir (nothing was overwritten)"
                )
            os.makedirs(args.exp_dir, exist_ok=True)
            with zipfile.ZipFile(args.pack) as z:
                for name in z.namelist():
                    if name in (*pack.MEMBERS, "RESULTS.md"):  # only the known names: no path in the zip is trusted
                        z.extract(name, args.exp_dir)
            print(f"pack_model.py: {args.pack} -> {args.exp_dir}")
    except (OSError, pack.PackError) as err:
        sys.exit(f"pack_model.py: {err}")


if __name__ == "__main__":
    main()
