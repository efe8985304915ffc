"""The record of a training, epoch by epoch: one Epoch per row, written as <exp>/history.tsv and drawn
as <exp>/loss.png.

history.tsv has the fixed columns of COLUMNS, then each loss term of the objective (dc, mi, ...) for
training and validation, train_<term> and valid_<term>. valid_loss is the model selection loss (MI
alone for chimera++ and dl, the whole objective otherwise: losses.Objective.selects_on). A checkpoint
keeps the rows as dicts of these fields (torch.load(weights_only=True) reads dicts, not classes);
a last.pt of cocktail before named rows holds lists in the order of COLUMNS, with the terms' dict
last, and resumes as well.
"""

import contextlib
import dataclasses
import math
import os

from nnet import datafiles

COLUMNS = ("epoch", "train_loss", "valid_loss", "lr", "seconds", "frames_per_s")


@dataclasses.dataclass
class Epoch:
    epoch: int
    train_loss: float  # the training objective, mean over the epoch's frames
    valid_loss: float  # the model selection loss over the validation set
    lr: float  # the learning rate the epoch trained with
    seconds: float  # of the training steps, validation left out
    frames_per_s: float
    terms: dict = dataclasses.field(default_factory=dict)  # train_<term>, valid_<term>: each loss term

    def saved(self):
        """The row as a checkpoint keeps it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_saved(cls, row):
        """The row of a checkpoint: a dict of the fields, or a list in the order of COLUMNS (+ terms)."""
        return cls(**row) if isinstance(row, dict) else cls(*row)


def best_epoch(history):
    """(epoch, valid loss) of the first strictly lowest finite validation loss, (None, inf) if none:
    the epoch whose weights best.pt holds."""
    best, loss = None, math.inf
    for row in history:
        if row.valid_loss < loss:
            best, loss = row.epoch, row.valid_loss
    return best, loss


def write(exp_dir, history):
    """<exp_dir>/history.tsv and loss.png, each written atomically."""
    with datafiles.atomic_write(os.path.join(exp_dir, "history.tsv")) as f:
        names = list(history[-1].terms) if history else []
        f.write("\t".join(COLUMNS + tuple(names)) + "\n")
        for row in history:
            extra = "".join(f"\t{row.terms.get(k, math.nan):.6f}" for k in names)
            f.write(
                f"{row.epoch}\t{row.train_loss:.6f}\t{row.valid_loss:.6f}\t{row.lr:.3e}\t{row.seconds:.2f}"
                f"\t{row.frames_per_s:.1f}{extra}\n"
            )
    plot(exp_dir, history)


def plot(exp_dir, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row.epoch for row in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [row.train_loss for row in history], "o-", label="train")
    ax.plot(epochs, [row.valid_loss for row in history], "s-", label="valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(os.path.basename(os.path.abspath(exp_dir)))
    ax.legend()
    ax.grid(alpha=0.3)
    tmp = os.path.join(exp_dir, ".loss.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, os.path.join(exp_dir, "loss.png"))
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        plt.close(fig)
