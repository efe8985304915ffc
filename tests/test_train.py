"""Training: the files of an experiment, resume == uninterrupted, the DL-DEF chain, DDP on CPU."""
import os
import signal as os_signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from synth import make_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
TRAIN = os.path.join(ROOT, "nnet", "bin", "train.py")

TINY = {
    "chimera": {
        "model": {"type": "chimera", "num_bins": 129, "num_spk": 2, "layers": 1, "units": 16,
                  "emb_dim": 8, "dropout": 0.2, "mask_activation": "sigmoid"},
        "loss": {"type": "chimera", "dc_objective": "classic", "dc_weights": "mr", "mi_target": "tpsa",
                 "mi_norm": "l1", "alpha": 0.5},
    },
    "dc": {
        "model": {"type": "dc", "num_bins": 129, "layers": 1, "units": 16, "emb_dim": 8},
        "loss": {"type": "dc", "dc_objective": "classic", "dc_weights": "none"},
    },
    "def": {
        "model": {"type": "def", "num_bins": 129, "num_spk": 2, "dc_layers": 1, "dc_units": 16,
                  "emb_dim": 8, "layers": 1, "units": 16, "mask_activation": "relu", "freeze_dc": True},
        "loss": {"type": "mi", "mi_target": "tpsa", "mi_norm": "l2"},
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    dirs = {}
    for name, count, seed in (("tr", 6, 0), ("cv", 2, 1)):
        d = make_data_dir(str(root / name), num_utts=count, seed=seed, seconds=(0.8, 1.2))
        run = subprocess.run(["bash", os.path.join(ROOT, "steps/make_feats.sh"), "--nj", "1", d,
                              str(root / name / "log"), str(root / name / "feats")],
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        dirs[name] = d
    return dirs


def write_config(path, system, **training):
    config = dict(TINY[system])
    config["training"] = {"segment_frames": 50, "batch_size": 3, "epochs": 3, "lr": 0.01,
                          "num_workers": 0, "num_threads": 1, **training}
    path.write_text(yaml.safe_dump(config))
    return str(path)


def train(config, data, exp, *extra, check=True):
    run = subprocess.run([PYTHON, TRAIN, *extra, config, data["tr"], data["cv"], str(exp)],
                         capture_output=True, text=True)
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_experiment_dir_holds_every_file(tmp_path, data):
    exp = tmp_path / "exp"
    config = write_config(tmp_path / "c.yaml", "chimera", epochs=4)
    run = subprocess.run(["bash", os.path.join(ROOT, "steps/train.sh"), config, data["tr"], data["cv"], str(exp)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for name in ("config.yaml", "last.pt", "best.pt", "history.tsv", "loss.png", ".finished", "log/train.log"):
        assert (exp / name).is_file(), name
    rows = (exp / "history.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["epoch", "train_loss", "valid_loss", "lr", "seconds", "frames_per_s"]
    assert [int(r.split("\t")[0]) for r in rows[1:]] == [1, 2, 3, 4]
    valid = [float(r.split("\t")[2]) for r in rows[1:]]
    assert min(valid[1:]) < valid[0]
    log = (exp / "log" / "train.log").read_text()
    assert "epoch 4 train_loss" in log and "frames_per_s" in log
    assert log.splitlines()[-1].endswith("with status 0")
    best = torch.load(exp / "best.pt", weights_only=True)
    assert best["epoch"] == 1 + valid.index(min(valid))
    assert best["config"]["model"]["type"] == "chimera"
    assert best["cmvn_mean"].shape == (129,)
    # a finished training is not redone
    again = train(config, data, exp)
    assert "already finished" in again.stdout
    assert len((exp / "history.tsv").read_text().splitlines()) == 5


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, data):
    config = write_config(tmp_path / "c.yaml", "chimera", epochs=6)
    train(config, data, tmp_path / "whole")
    exp = tmp_path / "killed"
    proc = subprocess.Popen([PYTHON, TRAIN, config, data["tr"], data["cv"], str(exp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = exp / "history.tsv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 3:  # 2 epochs done
            break
        time.sleep(0.02)
    proc.send_signal(os_signal.SIGKILL)
    proc.wait()
    epochs_before = len(history.read_text().splitlines()) - 1
    assert 2 <= epochs_before < 6, "the run was not interrupted mid-way"
    resumed = train(config, data, exp)
    assert f"resumed from {exp}/last.pt after epoch {epochs_before}" in resumed.stdout
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    again = torch.load(exp / "last.pt", weights_only=True)
    assert again["epoch"] == whole["epoch"] == 6
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, again["model"][name]), name
    assert [row[2] for row in again["history"]] == [row[2] for row in whole["history"]]


def test_def_starts_from_the_dc_weights_and_keeps_them_frozen(tmp_path, data):
    train(write_config(tmp_path / "dc.yaml", "dc", epochs=1), data, tmp_path / "dc")
    def_config = write_config(tmp_path / "def.yaml", "def", epochs=2)
    train(def_config, data, tmp_path / "def", "--init", str(tmp_path / "dc" / "best.pt"))
    dc = torch.load(tmp_path / "dc" / "best.pt", weights_only=True)["model"]
    trained = torch.load(tmp_path / "def" / "last.pt", weights_only=True)["model"]
    for name, tensor in dc.items():
        assert torch.equal(trained["dc." + name], tensor), name
    # the wrong kind of checkpoint is refused with a message
    bad = train(write_config(tmp_path / "ch.yaml", "chimera", epochs=1), data, tmp_path / "bad",
                "--init", str(tmp_path / "dc" / "best.pt"), check=False)
    assert bad.returncode != 0
    assert "a 'dc' model cannot initialize a 'chimera' model" in bad.stderr


def test_two_process_ddp_on_cpu(tmp_path, data):
    config = write_config(tmp_path / "c.yaml", "chimera", epochs=2, batch_size=2)
    run = train(config, data, tmp_path / "ddp", "--num-procs", "2")
    assert "2 process(es)" in run.stdout
    rows = (tmp_path / "ddp" / "history.tsv").read_text().splitlines()
    assert len(rows) == 3
    ckpt = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_config_errors_name_the_key(tmp_path, data):
    path = tmp_path / "c.yaml"
    write_config(path, "chimera", segmnet_frames=10)
    run = train(str(path), data, tmp_path / "exp", check=False)
    assert run.returncode != 0 and "unknown training keys ['segmnet_frames']" in run.stderr
