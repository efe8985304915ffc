"""loss.png and utils/plot_history.py draw like with like (issue 25, item 11): one panel per loss term,
the training and validation values of the same term in it, the selected epoch and the lr halvings
marked; several systems' validation curves side by side."""

import math
import os
import subprocess
import sys

import pytest

from nnet import history

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def chimera_rows():
    """Four epochs of a chimera++-like run: the objective (about 4.4) is alpha-weighted DC + MI, the
    validation loss is MI alone (about 0.25); the lr halves before epoch 3; epoch 3 is the best."""
    rows = []
    for epoch, (lr, dc, mi, vdc, vmi) in enumerate(
        [
            (2e-3, 8.6, 0.34, 8.59, 0.30),
            (2e-3, 8.5, 0.30, 8.55, 0.28),
            (1e-3, 8.4, 0.27, 8.52, 0.25),
            (1e-3, 8.4, 0.26, 8.51, 0.26),
        ],
        1,
    ):
        terms = {"train_dc": dc, "train_mi": mi, "valid_dc": vdc, "valid_mi": vmi}
        rows.append(history.Epoch(epoch, 0.5 * dc + 0.5 * mi, vmi, lr, 10.0, 100.0, terms))
    return rows


def test_panels_put_each_term_against_itself():
    rows = chimera_rows()
    drawn = dict(history.panels(rows))
    assert list(drawn) == ["dc", "mi"]
    assert drawn["mi"] == {"train": [0.34, 0.30, 0.27, 0.26], "valid": [0.30, 0.28, 0.25, 0.26]}
    assert drawn["dc"] == {"train": [8.6, 8.5, 8.4, 8.4], "valid": [8.59, 8.55, 8.52, 8.51]}
    # the alpha-weighted objective is nowhere beside the MI-alone validation loss
    assert all(rows[0].train_loss not in values for curves in drawn.values() for values in curves.values())
    assert history.lr_halvings(rows) == [3]
    assert history.best_epoch(rows) == (3, 0.25)


def test_a_history_without_terms_draws_its_objective():
    rows = [history.Epoch(e, 1.0 / e, 2.0 / e, 1e-3, 1.0, 1.0) for e in (1, 2)]
    assert history.panels(rows) == [("loss", {"train": [1.0, 0.5], "valid": [2.0, 1.0]})]


def test_history_tsv_reads_back_what_write_wrote(tmp_path):
    rows = chimera_rows()
    history.write(str(tmp_path), rows)
    assert (tmp_path / "loss.png").stat().st_size > 1000
    back = history.read(tmp_path / "history.tsv")
    assert [r.epoch for r in back] == [1, 2, 3, 4]
    assert [r.lr for r in back] == [r.lr for r in rows]
    assert all(math.isclose(b.terms["valid_mi"], r.terms["valid_mi"]) for b, r in zip(back, rows))
    (tmp_path / "bad.tsv").write_text("epoch\ttrain_loss\n1\t2\n")
    with pytest.raises(ValueError, match="bad.tsv: not a history.tsv"):
        history.read(tmp_path / "bad.tsv")


def test_plot_history_draws_several_systems_and_names_a_missing_history(tmp_path):
    for name in ("chimerapp", "dc"):
        (tmp_path / name).mkdir()
        history.write(str(tmp_path / name), chimera_rows())
    out = tmp_path / "curves.png"
    script = os.path.join(ROOT, "utils/plot_history.py")
    run = subprocess.run(
        [sys.executable, script, "--out", str(out), str(tmp_path / "chimerapp"), str(tmp_path / "dc")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert out.stat().st_size > 1000 and f"2 systems -> {out}" in run.stdout
    run = subprocess.run(
        [sys.executable, script, "--out", str(out), str(tmp_path / "nosuch")], capture_output=True, text=True
    )
    assert run.returncode == 1 and f"plot_history.py: {tmp_path}/nosuch/history.tsv not found" in run.stderr
