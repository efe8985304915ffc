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


def read(path):
    """The rows of a history.tsv as Epochs; ValueError naming the file and line of a malformed one."""
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if tuple(header[: len(COLUMNS)]) != COLUMNS:
            raise ValueError(f"{path}: not a history.tsv (its first columns are not {', '.join(COLUMNS)})")
        rows = []
        for lineno, line in enumerate(f, 2):
            cells = line.rstrip("\n").split("\t")
            try:
                values = [float(cell) for cell in cells]
            except ValueError:
                raise ValueError(f"{path}:{lineno}: a value that is not a number") from None
            if len(values) != len(header):
                raise ValueError(f"{path}:{lineno}: {len(values)} values, the header names {len(header)}")
            fixed = dict(zip(COLUMNS, values))
            fixed["epoch"] = int(fixed["epoch"])
            rows.append(Epoch(**fixed, terms=dict(zip(header[len(COLUMNS) :], values[len(COLUMNS) :]))))
    return rows


def panels(history):
    """What loss.png draws, like with like: one panel per loss term (dc, mi, ...), each with the term's
    training and validation values, so that chimera++'s alpha-weighted training objective is not drawn
    against its MI-alone validation loss. [(term, {label: values})]; a history without terms has one
    panel, the training and validation objective ('loss')."""
    terms = []
    for row in history:
        for key in row.terms:
            term = key.split("_", 1)[1]
            if term not in terms:
                terms.append(term)
    if not terms:
        return [("loss", {"train": [r.train_loss for r in history], "valid": [r.valid_loss for r in history]})]
    return [
        (term, {split: [r.terms.get(f"{split}_{term}", math.nan) for r in history] for split in ("train", "valid")})
        for term in terms
    ]


def lr_halvings(history):
    """The epochs that trained with a lower learning rate than the one before."""
    return [b.epoch for a, b in zip(history, history[1:]) if b.lr < a.lr]


def plot(exp_dir, history):
    """<exp_dir>/loss.png: panels(), with the selected epoch (best.pt's) and the lr halvings marked."""
    name = os.path.basename(os.path.abspath(exp_dir))
    draw({name: history}, os.path.join(exp_dir, "loss.png"))


def draw(histories, out_png):
    """One panel per loss term, the curves of every system of {name: history}: training and
    validation for one system, validation alone for several (utils/plot_history.py); the selected
    epochs (dots) and lr halvings (dotted lines, one system only) marked. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = []
    for history in histories.values():
        terms += [term for term, _ in panels(history) if term not in terms]
    fig, axes = plt.subplots(1, len(terms), figsize=(5 * len(terms), 4), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for name, history in histories.items():
            curves = dict(panels(history)).get(term)
            if curves is None:
                continue
            epochs = [row.epoch for row in history]
            prefix = "" if len(histories) == 1 else f"{name} "
            for split, values in curves.items():
                if split == "train" and len(histories) > 1:
                    continue
                (line,) = ax.plot(epochs, values, "o-" if split == "train" else "s-", ms=3, label=prefix + split)
            best, _ = best_epoch(history)
            if best is not None:
                ax.plot([best], [curves["valid"][epochs.index(best)]], "*", ms=12, color=line.get_color())
            if len(histories) == 1:
                for epoch in lr_halvings(history):
                    ax.axvline(epoch - 0.5, ls=":", color="gray")
        ax.set_xlabel("epoch (*: selected; dotted: lr halved)" if len(histories) == 1 else "epoch (*: selected)")
        ax.set_title(term if len(histories) > 1 else f"{next(iter(histories))}: {term}")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = os.path.join(os.path.dirname(os.path.abspath(out_png)), f".{os.path.basename(out_png)}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, out_png)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        plt.close(fig)
