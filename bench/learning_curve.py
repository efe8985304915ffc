#!/usr/bin/env python3
"""A system's learning curve: test-set SDRi against training time, scored after every epoch.

    python3 bench/learning_curve.py --config C.yaml --train data/tr --valid data/cv --test data/tt \\
        --exp exp/lc_chimerapp [--hours 2] [--test-mixtures 300] [--threads 1] [--epochs-max 1000]

Trains the config with nnet/train.py's own Trainer (the config's epochs and early stopping, unless
--hours ends it first: training stops after the first epoch whose summed training seconds pass it).
After each epoch the epoch's weights (last.pt) separate the first --test-mixtures mixtures of
--test (the model's own head and phase: the MI head for chimera++, k-means on a DC model) and
score them with BSS Eval (PESQ and STOI left out for speed). Prints one line per epoch and keeps
them in <exp>/learning_curve.tsv:
    epoch  train_hours  valid_loss  sdri  sdri_se  si_snri  num_mixtures
train_hours sums the epochs' training seconds (history.tsv), without validation and scoring: the
time axis of the curve, on the machine that ran it (give its calibration beside it). A re-run
resumes from <exp>/last.pt and adds the epochs after those in the file.
"""

import argparse
import os
import sys

import numpy as np
import torch

from nnet import datafiles, features, metrics, separator, train
from nnet.config import load_config

HEADER = "epoch\ttrain_hours\tvalid_loss\tsdri\tsdri_se\tsi_snri\tnum_mixtures\n"


def score_test_set(exp_dir, test_dir, count):
    """(SDRi mean, its standard error, SI-SNRi mean, n) of last.pt on the first count mixtures."""
    sep = separator.Separator(exp_dir, checkpoint="last.pt")
    mixtures = datafiles.read_table(os.path.join(test_dir, "wav.scp"))
    refs = [datafiles.read_table(os.path.join(test_dir, f"spk{c}.scp")) for c in range(1, sep.num_spk + 1)]
    sdri, si_snri = [], []
    for utt in list(mixtures)[:count]:
        mix, _ = datafiles.read_wav(mixtures[utt], "float64")
        references = np.stack([datafiles.read_wav(r[utt], "float64")[0] for r in refs])
        result = metrics.score_utterance(references, sep.separate(mix), mix, sep.sample_rate, utt, pesq_stoi=False)
        sdri.append(result["SDRi"])
        si_snri.append(result["SI-SNRi"])
    return float(np.mean(sdri)), float(np.std(sdri, ddof=1) / np.sqrt(len(sdri))), float(np.mean(si_snri)), len(sdri)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--exp", required=True)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--test-mixtures", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config, num_bins=features.data_stft(args.train).num_bins)  # as train.py
    os.makedirs(args.exp, exist_ok=True)
    table = os.path.join(args.exp, "learning_curve.tsv")
    done = set()
    if os.path.isfile(table):
        with open(table, encoding="utf-8") as f:
            done = {int(line.split("\t")[0]) for line in list(f)[1:]}
    else:
        with datafiles.atomic_write(table, encoding="utf-8") as f:
            f.write(HEADER)
    print(HEADER, end="", flush=True)

    def after_epoch(trainer):
        history = trainer.state["history"]
        epoch, hours = history[-1].epoch, sum(row.seconds for row in history) / 3600
        if epoch not in done:
            sdri, se, si_snri, n = score_test_set(args.exp, args.test, args.test_mixtures)
            line = f"{epoch}\t{hours:.3f}\t{history[-1].valid_loss:.4f}\t{sdri:.3f}\t{se:.3f}\t{si_snri:.3f}\t{n}\n"
            with open(table, "a", encoding="utf-8") as f:
                f.write(line)
            print(line, end="", flush=True)
        return hours >= args.hours

    trainer = train.Trainer(config, args.train, args.valid, args.exp, torch.device("cpu"))
    trainer.run(after_epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
