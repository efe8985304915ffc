#!/usr/bin/env python3
"""A system's learning curve: test-set SDRi against training time, scored after every epoch.

    python3 bench/learning_curve.py --config C.yaml --train data/tr --valid data/cv --test data/tt \\
        --exp exp/lc_chimerapp [--hours 2] [--test-mixtures 300] [--threads 1] [--device cpu|cuda]
        [--score-jobs 1] [--score-every 1] [--final-test-mixtures 0] [--wall-minutes 0]

Trains the config with nnet/train.py's own Trainer (the config's epochs and early stopping, unless
--hours ends it first: training stops after the first epoch whose summed training seconds pass it).
After each epoch the epoch's weights (last.pt) separate the first --test-mixtures mixtures of
--test (the model's own head and phase: the MI head for chimera++, k-means on a DC model) and
score them with BSS Eval (PESQ and STOI left out for speed), --score-jobs processes at a time (the
training and the separation run on --device, the scoring on the CPU). Prints one line per epoch and keeps
them in <exp>/learning_curve.tsv:
    epoch  train_hours  valid_loss  sdri  sdri_se  si_snri  num_mixtures
train_hours sums the epochs' training seconds (history.tsv), without validation and scoring: the
time axis of the curve, on the machine that ran it (give its calibration beside it). A re-run
resumes from <exp>/last.pt and adds the epochs after those in the file. --score-every N scores only
the first epoch, every N-th and the last (a GPU epoch can be shorter than its scoring).
--final-test-mixtures N: once training ends, best.pt separates the first N mixtures of --test too,
printed and kept in <exp>/learning_curve_best.txt (as a table line, its epoch the best one's).
--wall-minutes M (a lent machine's command limit): training also stops after the epoch past which
another epoch, its scoring and the final scoring (timed as the epochs and scorings so far) would end
after M minutes of this process's wall-clock time.
"""

import argparse
import multiprocessing
import os
import sys
import time

import numpy as np
import torch

from nnet import datafiles, features, metrics, separator, train
from nnet.config import load_config

HEADER = "epoch\ttrain_hours\tvalid_loss\tsdri\tsdri_se\tsi_snri\tnum_mixtures\n"


def _score(job):
    references, estimates, mix, rate, utt = job
    result = metrics.score_utterance(references, estimates, mix, rate, utt, pesq_stoi=False)
    return result["SDRi"], result["SI-SNRi"]


def score_test_set(exp_dir, test_dir, count, device="cpu", pool=None, checkpoint="last.pt"):
    """(SDRi mean, its standard error, SI-SNRi mean, n) of checkpoint on the first count mixtures."""
    sep = separator.Separator(exp_dir, device=device, checkpoint=checkpoint)
    mixtures = datafiles.read_table(os.path.join(test_dir, "wav.scp"))
    refs = [datafiles.read_table(os.path.join(test_dir, f"spk{c}.scp")) for c in range(1, sep.num_spk + 1)]
    jobs = []
    for utt in list(mixtures)[:count]:
        mix, _ = datafiles.read_wav(mixtures[utt], "float64")
        references = np.stack([datafiles.read_wav(r[utt], "float64")[0] for r in refs])
        jobs.append((references, sep.separate(mix), mix, sep.sample_rate, utt))
    sdri, si_snri = np.array(pool.map(_score, jobs) if pool else [_score(job) for job in jobs]).T
    return float(np.mean(sdri)), float(np.std(sdri, ddof=1) / np.sqrt(len(sdri))), float(np.mean(si_snri)), len(sdri)


def table_line(epoch, hours, valid_loss, scores):
    """A learning_curve.tsv line (HEADER's columns) of score_test_set's scores."""
    sdri, se, si_snri, n = scores
    return f"{epoch}\t{hours:.3f}\t{valid_loss:.4f}\t{sdri:.3f}\t{se:.3f}\t{si_snri:.3f}\t{n}\n"


def past_wall_clock(elapsed, epoch_seconds, per_mixture, test_mixtures, final_mixtures, limit):
    """Whether, `elapsed` seconds after the start, this epoch's scoring, one more epoch of
    epoch_seconds with its scoring and the final scoring of final_mixtures would end after `limit`
    seconds. Scoring takes per_mixture seconds a mixture (None before any scoring was timed: a
    scoring is taken to last as long as the epoch)."""
    scoring = epoch_seconds if per_mixture is None else per_mixture * test_mixtures
    final = scoring * final_mixtures / test_mixtures
    return elapsed + 2 * scoring + epoch_seconds + final > limit


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
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="of the training and separation")
    parser.add_argument("--score-jobs", type=int, default=1, help="BSS Eval processes (on the CPU)")
    parser.add_argument("--score-every", type=int, default=1)
    parser.add_argument("--final-test-mixtures", type=int, default=0)
    parser.add_argument("--wall-minutes", type=float, default=0.0, help="0: no wall-clock limit")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    # spawn: a forked child cannot use CUDA (the workers only score, but must not inherit its state)
    pool = multiprocessing.get_context("spawn").Pool(args.score_jobs) if args.score_jobs > 1 else None
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
    start = time.monotonic()
    clock = {"epoch_end": start, "per_mixture": None}  # wall seconds: the last epoch's end, scoring per mixture

    def out_of_time(epoch_seconds):
        if not args.wall_minutes:
            return False
        return past_wall_clock(
            time.monotonic() - start,
            epoch_seconds,
            clock["per_mixture"],
            args.test_mixtures,
            args.final_test_mixtures,
            60 * args.wall_minutes,
        )

    def after_epoch(trainer):
        history = trainer.state["history"]
        epoch, hours = history[-1].epoch, sum(row.seconds for row in history) / 3600
        stop = hours >= args.hours or out_of_time(time.monotonic() - clock["epoch_end"])
        if epoch not in done and (epoch == 1 or epoch % args.score_every == 0 or stop or trainer.state["finished"]):
            scoring = time.monotonic()
            scores = score_test_set(args.exp, args.test, args.test_mixtures, args.device, pool)
            clock["per_mixture"] = (time.monotonic() - scoring) / scores[-1]
            line = table_line(epoch, hours, history[-1].valid_loss, scores)
            with open(table, "a", encoding="utf-8") as f:
                f.write(line)
            print(line, end="", flush=True)
        clock["epoch_end"] = time.monotonic()
        return stop

    trainer = train.Trainer(config, args.train, args.valid, args.exp, torch.device(args.device))
    trainer.run(after_epoch)
    if args.final_test_mixtures:
        history = trainer.state["history"]
        best = min(history, key=lambda row: row.valid_loss)
        hours = sum(row.seconds for row in history) / 3600
        scores = score_test_set(args.exp, args.test, args.final_test_mixtures, args.device, pool, checkpoint="best.pt")
        line = table_line(best.epoch, hours, best.valid_loss, scores)
        with datafiles.atomic_write(os.path.join(args.exp, "learning_curve_best.txt"), encoding="utf-8") as f:
            f.write(HEADER + line)
        print("best.pt:", line, end="", flush=True)
    if pool:
        pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
