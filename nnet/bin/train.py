#!/usr/bin/env python3
"""Train a separation system (DC, uPIT, chimera++, DEF chain) from a YAML config.

usage: python3 -m nnet.bin.train [--ngpu N] [--num-procs N] [--num-threads N] [--set SECTION.KEY=VALUE]...
           [--num-spk C] <config.yaml> <train-dir> <valid-dir> <exp-dir>

Resumes from <exp-dir>/last.pt when it exists, provided the config (as parsed) and the data dirs are
those recorded in <exp-dir>/provenance.yaml when the run started (else exit 1 naming each key and file
that differs; config.yaml is written only by a fresh start). One training per exp dir: a second one
is refused while the first holds <exp-dir>/.lock. A config with `init_from: <system>` starts from
<exp-dir>/../<system>/best.pt (the DL-DEF chain). --num-procs > 1 trains with
DistributedDataParallel (one process per GPU, or gloo on CPU with --ngpu 0); under torchrun the
environment decides. --set section.key=value (repeated) sets a key of the config without editing it
(--set training.epochs=2 --set loss.alpha=0.5); --num-spk C is --set model.num_spk=C (wsj0-3mix: 3).
A config that leaves model.num_bins out takes the features' (n_fft / 2 + 1: 129 at 8 kHz, 257 at
16 kHz). <exp-dir>/config.yaml, provenance.yaml and the checkpoints record the config so made.
"""

import argparse
import os
import sys

from nnet import config, datafiles, launcher, training_data
from nnet.training_error import TrainingError, error_message


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ngpu", type=int, default=0, help="GPUs to train on (0: CPU)")
    parser.add_argument("--num-procs", type=int, default=1, help="DDP processes (default: max(1, ngpu))")
    parser.add_argument(
        "--num-threads",
        type=int,
        default=0,
        help="torch CPU threads per process (0: training.num_threads of the config)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="set a key of the config (repeatable): training.epochs=2, loss.alpha=0.5, init_from=def_dc",
    )
    parser.add_argument(
        "--num-spk",
        type=int,
        default=0,
        help="sources per mixture C, the data's spk*.scp count: --set model.num_spk=C (0: the config's)",
    )
    parser.add_argument("config")
    parser.add_argument("train_dir")
    parser.add_argument("valid_dir")
    parser.add_argument("exp_dir")
    args = parser.parse_args()
    for d in (args.train_dir, args.valid_dir):
        if not os.path.isfile(os.path.join(d, "feats.scp")):
            sys.exit(f"train.py: {d}/feats.scp not found: run steps/make_feats.sh (stage 2) first")
    try:
        launcher.train(
            args.config,
            args.train_dir,
            args.valid_dir,
            args.exp_dir,
            ngpu=args.ngpu,
            num_procs=max(args.num_procs, args.ngpu, 1),
            num_threads=args.num_threads,
            num_spk=args.num_spk,
            overrides=args.set,
        )
    except (
        TrainingError,
        config.ConfigError,
        training_data.DataError,
        datafiles.TableError,
    ) as err:  # names file, remedy
        sys.exit(f"train.py: {error_message(err)}")


if __name__ == "__main__":
    main()
