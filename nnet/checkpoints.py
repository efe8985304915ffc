"""The checkpoint store of a training run: <exp>/last.pt, everything needed to resume (written after
every epoch by nnet/train.py's Trainer, which makes and reads its content), and <exp>/best.pt, the
weights of the best validation loss with what separating with them needs. Each is written
atomically (a temporary, then a rename); a best.pt left behind last.pt's best epoch by a failure
between the two writes is repaired from last.pt when last.pt holds that epoch."""

import contextlib
import os

import torch
from nnet import history
from nnet.training_error import TrainingError, first_line

# what best.pt keeps of a checkpoint: the weights and what separating with them needs
BEST_KEYS = ("model", "cmvn_mean", "cmvn_std", "stft", "config", "provenance", "epoch")


def load(path, device, exp_dir):
    """The checkpoint at path (the last.pt of exp_dir), on device; TrainingError if it cannot be read."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # EOFError, RuntimeError (zip), UnpicklingError: none names the file
        raise TrainingError(
            f"{path}: cannot read this checkpoint ({first_line(err)}); it is damaged "
            f"(an interrupted copy, a full disk?): restore it, or move {exp_dir} aside "
            "and train again (steps/train_chains.sh --retrain true keeps it in <exp>/old/)"
        ) from None


def save(exp_dir, ckpt, improved):
    """last.pt, then best.pt when the epoch improved: a failure between the two leaves a best.pt
    older than last.pt's best epoch, which check_best repairs from last.pt on the next run."""
    save_atomic(ckpt, os.path.join(exp_dir, "last.pt"))
    if improved:
        save_best(exp_dir, ckpt)


def save_best(exp_dir, ckpt):
    save_atomic({k: ckpt[k] for k in BEST_KEYS if k in ckpt}, os.path.join(exp_dir, "best.pt"))


def check_best(exp_dir, rows, epoch, checkpoint):
    """best.pt must hold the best epoch of last.pt's history (rows; last.pt holds `epoch`) before
    training goes on or is declared finished: repaired from last.pt (checkpoint(), its content)
    when that epoch is last.pt's own, else refused. Returns what it repaired, or None."""
    best_epoch, _ = history.best_epoch(rows)  # the same rule as Trainer.run()
    last, path = os.path.join(exp_dir, "last.pt"), os.path.join(exp_dir, "best.pt")
    if best_epoch is None:
        raise TrainingError(
            f"{last}: no epoch of its history has a finite validation loss (non-finite "
            f"validation features?): fix the data, move {exp_dir} aside and train again"
        )
    try:
        held = torch.load(path, map_location="cpu", weights_only=True)["epoch"]
        have = f"holds epoch {held}"
    except FileNotFoundError:
        held, have = None, "is missing"
    except Exception as err:
        held, have = None, f"cannot be read ({first_line(err)})"
    if held == best_epoch:
        return None
    if best_epoch != epoch:
        raise TrainingError(
            f"{path} {have}, the best epoch is {best_epoch} and {last} holds epoch "
            f"{epoch}: the best weights are lost; move {exp_dir} aside and "
            "train again (steps/train_chains.sh --retrain true keeps it in <exp>/old/)"
        )
    save_best(exp_dir, checkpoint())
    return f"{path} {have}, the best epoch is {best_epoch}: re-saved it from {last}"


def save_atomic(obj, path):
    """torch.save to path + '.tmp', then rename; on failure (a full disk) no temporary stays."""
    tmp = path + ".tmp"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # a full disk: "basic_ios::clear: iostream error" and the like
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise TrainingError(
            f"{path}: cannot write the checkpoint ({first_line(err)}): is the disk full or the "
            f"directory read-only? Free space (df -h {os.path.dirname(path) or '.'}) and run again: "
            "training resumes from the last epoch saved"
        ) from None
