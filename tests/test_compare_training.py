"""bench/compare_training.sh: one epoch with another commit's code and with this tree's, side by
side (issue 11's frames/s ratio), on tiny data; and its refusals."""

import os
import re
import subprocess

import pytest

from synth import make_featured_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "compare_training.sh")
CONFIG = """model:
  type: chimera
  num_bins: 129
  num_spk: 2
  layers: 1
  units: 8
  emb_dim: 4
  mask_activation: sigmoid
loss:
  type: chimera
  dc_objective: wkm
  dc_weights: mr
  mi_target: tpsa
  mi_norm: l1
  alpha: 0.5
training:
  segment_frames: 50
  batch_size: 2
  epochs: 7
  num_workers: 0
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare_data")
    dirs = []
    for name, count, seed in (("tr", 4, 0), ("cv", 2, 1)):
        d = make_featured_data_dir(root / name, num_utts=count, seed=seed, seconds=(0.8, 1.2))
        dirs.append(d)
    return dirs


def worktrees():
    return subprocess.run(["git", "-C", ROOT, "worktree", "list"], capture_output=True, text=True).stdout


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, ".git")), reason="needs a git checkout")
def test_one_epoch_of_each_tree_and_the_ratio(data, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(CONFIG)
    before = worktrees()
    run = subprocess.run(
        ["bash", SCRIPT, "--rounds", "2", "--config", str(config), "HEAD", *data],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    runs = [re.fullmatch(r"round (\d) (\S+): (\d+) frames/s, train_loss ([\d.]+), code (\S+)", x) for x in lines[:-1]]
    assert all(runs), lines
    # A B B A, each run on its own tree's code: HEAD's from a temporary worktree, this tree's from ROOT
    assert [(m[1], m[2]) for m in runs] == [("1", "HEAD"), ("1", "this"), ("2", "this"), ("2", "HEAD")]
    for m in runs:
        assert (m[5] == ROOT) == (m[2] == "this") and os.path.basename(m[5]) == (
            "tree" if m[2] == "HEAD" else os.path.basename(ROOT)
        )
    fps = {name: [int(m[3]) for m in runs if m[2] == name] for name in ("HEAD", "this")}
    assert min(fps["HEAD"] + fps["this"]) > 0
    ratio = sum(fps["this"]) / sum(fps["HEAD"])
    last = re.fullmatch(r"mean frames/s over 2 rounds: this tree (\d+), HEAD (\d+): ratio ([\d.]+)", lines[-1])
    assert last, lines[-1]
    assert int(last[1]) == pytest.approx(sum(fps["this"]) / 2, abs=1)
    assert float(last[3]) == pytest.approx(ratio, abs=0.006)
    # each tree's loss is the same in both rounds: the config was cut to one epoch, same seed
    assert runs[0][4] == runs[3][4] and runs[1][4] == runs[2][4]
    assert worktrees() == before  # the other commit's checkout is removed


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, ".git")), reason="needs a git checkout")
def test_refusals(data, tmp_path):
    run = subprocess.run(["bash", SCRIPT, "no-such-commit", *data], capture_output=True, text=True)
    assert run.returncode == 1 and "cannot check out 'no-such-commit'" in run.stderr
    run = subprocess.run(["bash", SCRIPT, "HEAD", str(tmp_path), data[1]], capture_output=True, text=True)
    assert run.returncode == 1 and f"{tmp_path}/feats.scp is missing" in run.stderr
    run = subprocess.run(["bash", SCRIPT, "HEAD"], capture_output=True, text=True)
    assert run.returncode == 1 and "compare_training.sh [--rounds 2]" in run.stderr
