"""Training: the files of an experiment, resume == uninterrupted, the DL-DEF chain, DDP on CPU,
--num-spk (C = 3 from a config that says 2)."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from nnet import datafiles, launcher
from nnet import train as nnet_train
from nnet.training_error import TrainingError
import rank_workers
from synth import make_featured_data_dir, voice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
TRAIN = os.path.join(ROOT, "nnet", "bin", "train.py")

TINY = {
    "chimera": {
        "model": {
            "type": "chimera",
            "num_bins": 129,
            "num_spk": 2,
            "layers": 1,
            "units": 16,
            "emb_dim": 8,
            "dropout": 0.2,
            "mask_activation": "sigmoid",
        },
        "loss": {
            "type": "chimera",
            "dc_objective": "classic",
            "dc_weights": "mr",
            "mi_target": "tpsa",
            "mi_norm": "l1",
            "alpha": 0.5,
        },
    },
    "dc": {
        "model": {"type": "dc", "num_bins": 129, "layers": 1, "units": 16, "emb_dim": 8},
        "loss": {"type": "dc", "dc_objective": "classic", "dc_weights": "none"},
    },
    "def": {
        "model": {
            "type": "def",
            "num_bins": 129,
            "num_spk": 2,
            "dc_layers": 1,
            "dc_units": 16,
            "emb_dim": 8,
            "layers": 1,
            "units": 16,
            "mask_activation": "relu",
            "freeze_dc": True,
        },
        "loss": {"type": "mi", "mi_target": "tpsa", "mi_norm": "l2"},
    },
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    dirs = {}
    for name, count, seed in (("tr", 6, 0), ("cv", 2, 1)):
        dirs[name] = make_featured_data_dir(root / name, num_utts=count, seed=seed, seconds=(0.8, 1.2))
    return dirs


@pytest.fixture(scope="module")
def data3(data, tmp_path_factory):
    """`data` with a third reference, spk3.scp: a voice as long as each mixture. The mixtures and their
    features stay those of s1 + s2 (made once, for the module): enough for the shapes that C = 3 takes
    in training, not for separating."""
    root = tmp_path_factory.mktemp("train_data3")
    rng = np.random.default_rng(5)
    dirs = {}
    for name, src in data.items():
        d = root / name
        d.mkdir()
        for table in ("wav.scp", "spk1.scp", "spk2.scp", "utt2spk", "spk2utt", "utt2num_samples", "feats.scp", "cmvn"):
            shutil.copy(os.path.join(src, table), d / table)
        spk3 = {}
        for utt, length in datafiles.read_table(d / "utt2num_samples").items():
            spk3[utt] = str(d / "s3" / f"{utt}.wav")
            datafiles.write_wav(spk3[utt], voice(rng, 2.0, 8000, 330)[: int(length)], 8000)  # utterances: 0.8-1.2 s
        datafiles.write_table(d / "spk3.scp", spk3)
        dirs[name] = str(d)
    return dirs


def write_config(path, system, model=None, **training):
    config = dict(TINY[system])
    config["model"] = {**config["model"], **(model or {})}
    config["training"] = {
        "segment_frames": 50,
        "batch_size": 3,
        "epochs": 3,
        "lr": 0.01,
        "num_workers": 0,
        "num_threads": 1,
        **training,
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def train(config, data, exp, *extra, check=True):
    run = subprocess.run(
        [PYTHON, TRAIN, *extra, config, data["tr"], data["cv"], str(exp)], capture_output=True, text=True
    )
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_experiment_dir_holds_every_file(tmp_path, data):
    exp = tmp_path / "exp"
    config = write_config(tmp_path / "c.yaml", "chimera", epochs=4)
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/train.sh"), config, data["tr"], data["cv"], str(exp)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    for name in ("config.yaml", "last.pt", "best.pt", "history.tsv", "loss.png", ".finished", "log/train.log"):
        assert (exp / name).is_file(), name
    rows = (exp / "history.tsv").read_text().splitlines()
    header = rows[0].split("\t")
    assert header == [
        "epoch",
        "train_loss",
        "valid_loss",
        "lr",
        "seconds",
        "frames_per_s",
        "train_dc",
        "train_mi",
        "valid_dc",
        "valid_mi",
    ]  # each loss term per epoch
    table = [dict(zip(header, map(float, r.split("\t")))) for r in rows[1:]]
    assert [int(r["epoch"]) for r in table] == [1, 2, 3, 4]
    valid = [r["valid_loss"] for r in table]
    assert min(valid[1:]) < valid[0]
    for r in table:
        # chimera++ selects its model on the MI loss alone (Wang et al. 2018, Sec. 5.1) ...
        assert r["valid_loss"] == pytest.approx(r["valid_mi"], rel=1e-5)
        # ... and trains on alpha * L_DC + (1 - alpha) * L_MI (alpha 0.5 here)
        assert r["train_loss"] == pytest.approx(0.5 * r["train_dc"] + 0.5 * r["train_mi"], rel=1e-4)
        assert r["valid_dc"] > 0
    log = (exp / "log" / "train.log").read_text()
    assert "epoch 4 train_loss" in log and "frames_per_s" in log and "valid_mi" in log
    assert log.splitlines()[-1].endswith("with status 0")
    best = torch.load(exp / "best.pt", weights_only=True)
    assert best["epoch"] == 1 + valid.index(min(valid))
    assert best["config"]["model"]["type"] == "chimera"
    assert best["cmvn_mean"].shape == (129,)
    # a finished training is not redone
    again = train(config, data, exp)
    assert "already finished" in again.stdout
    assert len((exp / "history.tsv").read_text().splitlines()) == 5


def start(config, data, exp, *extra):
    return subprocess.Popen(
        [PYTHON, TRAIN, *extra, config, data["tr"], data["cv"], str(exp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc):
    out, err = proc.communicate()
    assert proc.returncode == 0, out + err
    return out


def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, data):
    # 2 BLSTM layers with dropout between them: the dropout masks of the epochs after the resume
    # come from the CPU RNG, so the weights only match if resume() restores its state (cpu_rng).
    # With 1 layer nn.LSTM's dropout is off and nothing of the RNG reaches the weights.
    config = write_config(
        tmp_path / "c.yaml", "chimera", epochs=3, model={"layers": 2, "units": 8, "emb_dim": 4, "dropout": 0.5}
    )
    whole = start(config, data, tmp_path / "whole")  # runs alongside the interrupted one
    exp = tmp_path / "killed"
    proc = subprocess.Popen(
        [PYTHON, TRAIN, config, data["tr"], data["cv"], str(exp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    history = exp / "history.tsv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:  # 1 epoch done
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    epochs_before = len(history.read_text().splitlines()) - 1
    assert 1 <= epochs_before < 3, "the run was not interrupted mid-way"
    resumed = train(config, data, exp)
    assert f"resumed from {exp}/last.pt after epoch {epochs_before}" in resumed.stdout
    finish(whole)
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    again = torch.load(exp / "last.pt", weights_only=True)
    assert again["epoch"] == whole["epoch"] == 3
    assert whole["config"]["model"]["layers"] == 2 and whole["config"]["model"]["dropout"] > 0
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, again["model"][name]), name
    assert [row["train_loss"] for row in again["history"]] == [row["train_loss"] for row in whole["history"]]
    assert [row["valid_loss"] for row in again["history"]] == [row["valid_loss"] for row in whole["history"]]
    assert torch.equal(whole["cpu_rng"], again["cpu_rng"])


def test_a_last_pt_with_the_history_rows_of_before_named_fields_resumes(tmp_path, data, monkeypatch):
    """last.pt of cocktail 0.1.0 before named history rows (lists [epoch, train_loss, valid_loss, lr,
    seconds, frames_per_s, {terms}]): the training resumes from it and ends as an uninterrupted one,
    with every row in history.tsv and in the new last.pt."""
    config = write_config(tmp_path / "c.yaml", "dc", epochs=2)
    launcher.train(config, data["tr"], data["cv"], str(tmp_path / "whole"))
    exp = tmp_path / "old"
    run = nnet_train.Trainer.run
    with monkeypatch.context() as m:  # stopped after epoch 1, as bench/learning_curve.py stops a run
        m.setattr(nnet_train.Trainer, "run", lambda self: run(self, lambda trainer: True))
        launcher.train(config, data["tr"], data["cv"], str(exp))
    ckpt = torch.load(exp / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and not ckpt["finished"]
    fields = ("epoch", "train_loss", "valid_loss", "lr", "seconds", "frames_per_s", "terms")
    ckpt["history"] = [[row[f] for f in fields] for row in ckpt["history"]]  # as that cocktail wrote it
    torch.save(ckpt, exp / "last.pt")
    launcher.train(config, data["tr"], data["cv"], str(exp))
    whole, again = (torch.load(d / "last.pt", weights_only=True) for d in (tmp_path / "whole", exp))
    assert again["epoch"] == 2 and again["finished"]
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, again["model"][name]), name
    kept = ("epoch", "train_loss", "valid_loss", "lr", "terms")  # seconds and frames_per_s: the machine's
    assert [[row[f] for f in kept] for row in again["history"]] == [[row[f] for f in kept] for row in whole["history"]]
    rows = (exp / "history.tsv").read_text().splitlines()
    assert rows[0].split("\t") == [*fields[:-1], "train_dc", "valid_dc"]
    assert [row.split("\t")[0] for row in rows[1:]] == ["1", "2"]


def test_lr_decay_from_anneals_every_epoch_after_it(tmp_path, data):
    """lr_decay_from 2: epochs 1-2 at lr, then lr_factor more each epoch (the plateau rule kept out of
    the way by its patience)."""
    config = write_config(tmp_path / "c.yaml", "dc", epochs=4, lr=0.01, lr_factor=0.5, lr_patience=10, lr_decay_from=2)
    train(config, data, tmp_path / "exp")
    rows = [line.split("\t") for line in (tmp_path / "exp/history.tsv").read_text().splitlines()[1:]]
    assert [float(row[3]) for row in rows] == pytest.approx([0.01, 0.01, 0.005, 0.0025])


def test_def_starts_from_the_dc_weights_and_keeps_them_frozen(tmp_path, data):
    exp = tmp_path / "exp"
    train(write_config(tmp_path / "dc.yaml", "dc", epochs=1), data, exp / "dc")
    def_config = tmp_path / "def.yaml"
    write_config(def_config, "def", epochs=2)
    def_config.write_text("init_from: dc\n" + def_config.read_text())  # <exp>/dc/best.pt
    run = train(str(def_config), data, exp / "def")
    assert f"started from {exp}/dc/best.pt (init_from: dc)" in run.stdout
    dc = torch.load(exp / "dc" / "best.pt", weights_only=True)["model"]
    trained = torch.load(exp / "def" / "last.pt", weights_only=True)["model"]
    for name, tensor in dc.items():
        assert torch.equal(trained["dc." + name], tensor), name


def test_two_process_ddp_on_cpu(tmp_path, data):
    # DDP over 2 gloo processes with batch_size B must train like 1 process with batch_size 2B:
    # shuffled_batches deals one permutation per (seed, epoch) so that step s of rank r takes
    # order[s*2B + r*B : s*2B + (r+1)*B], i.e. the ranks' batches of step s are exactly the
    # 1-process batch s of size 2B (same number of steps). Every segment is 50 frames, the batch
    # loss is a mean over utterances, so the all-reduced (averaged) gradient equals the gradient
    # of the 2B batch; the model has 1 BLSTM layer (no dropout, no RNG), same seed, same init,
    # so Adam and grad clipping see the same gradients and both runs end with the same weights up
    # to float rounding (observed ~1e-6). Without the all-reduce, rank 0 (whose last.pt this is)
    # would learn from its own half of every batch only: weights ~1e-1 away.
    ddp = tmp_path / "ddp"
    ref = tmp_path / "one"
    ddp_run = start(write_config(tmp_path / "c.yaml", "chimera", epochs=2, batch_size=2), data, ddp, "--num-procs", "2")
    ref_run = start(write_config(tmp_path / "c1.yaml", "chimera", epochs=2, batch_size=4), data, ref)
    assert "2 process(es)" in finish(ddp_run)
    assert "1 process(es)" in finish(ref_run)
    rows = (ddp / "history.tsv").read_text().splitlines()
    assert len(rows) == 3
    got = torch.load(ddp / "last.pt", weights_only=True)
    want = torch.load(ref / "last.pt", weights_only=True)
    assert got["config"]["model"]["layers"] == 1  # exactness needs a model without dropout
    assert got["epoch"] == want["epoch"] == 2
    for name, tensor in want["model"].items():
        torch.testing.assert_close(
            got["model"][name], tensor, rtol=0, atol=1e-4, msg=lambda m, name=name: f"{name}: {m}"
        )
    for mine, theirs in zip(got["history"], want["history"]):
        # train (summed over ranks) and valid loss
        assert [mine["train_loss"], mine["valid_loss"]] == pytest.approx(
            [theirs["train_loss"], theirs["valid_loss"]], rel=1e-5
        )


def test_a_rank_that_dies_after_the_run_completed_does_not_fail_it(capfd):
    # gloo's teardown can abort a rank after the final barrier (SIGABRT, "terminate called without an
    # active exception"): every output is written by then, so the run is complete; a warning says so.
    launcher.run_ranks(rank_workers.die_after_completion, 2)
    err = capfd.readouterr().err
    assert "WARNING: training process 1 of 2 ended with signal SIGABRT while shutting down" in err
    assert "the run is complete" in err


def test_a_rank_that_dies_before_the_run_completed_fails_it():
    with pytest.raises(TrainingError, match=r"training process 1 of 2 failed \(signal SIGABRT\)"):
        launcher.run_ranks(rank_workers.die_before_completion, 2)


def test_a_rank_marks_the_run_complete_only_after_its_training_returned(monkeypatch):
    completed = torch.multiprocessing.get_context("spawn").Value("b", 0)

    def failing(*args):
        raise TrainingError("the data is gone")

    monkeypatch.setattr(launcher, "_train", failing)
    with pytest.raises(SystemExit):
        launcher._worker(0, 1, 0, {}, completed)
    assert completed.value == 0
    monkeypatch.setattr(launcher, "_train", lambda *args: None)
    launcher._worker(0, 1, 0, {}, completed)
    assert completed.value == 1


def test_config_errors_name_the_key(tmp_path, data):
    path = tmp_path / "c.yaml"
    write_config(path, "chimera", segmnet_frames=10)
    run = train(str(path), data, tmp_path / "exp", check=False)
    assert run.returncode != 0 and "training.segmnet_frames is not a training key; known: " in run.stderr


def test_num_spk_option_trains_three_sources_where_the_config_says_two(tmp_path, data3, capsys):
    """train.py --num-spk 3 on three-speaker data with a config of model.num_spk: 2: C = 3 masks, in the
    checkpoints and in <exp>/config.yaml (comments kept, so a resume reads C = 3 too); without the
    option the config's 2 is refused against the data's 3 references."""
    config = tmp_path / "c.yaml"
    write_config(config, "chimera", epochs=1)
    config.write_text("# three sources from a two-source config\n" + config.read_text())
    exp = tmp_path / "exp"
    run = train(str(config), data3, exp / "c3", "--num-spk", "3")  # the command line, once
    assert "epoch 1 train_loss" in run.stdout
    best = torch.load(exp / "c3" / "best.pt", weights_only=True)
    assert best["config"]["model"]["num_spk"] == 3
    assert best["model"]["mask.linear.weight"].shape[0] == 3 * 129  # one mask per source
    copy = (exp / "c3" / "config.yaml").read_text()
    assert copy.startswith("# three sources from a two-source config\n")
    assert yaml.safe_load(copy) == {**yaml.safe_load(config.read_text()), "model": best["config"]["model"]}
    assert "num_spk: 2" in config.read_text()  # the config itself is left as it is
    # in this process (no second start of torch): the copy alone says C = 3, nothing to redo
    launcher.train(str(exp / "c3" / "config.yaml"), data3["tr"], data3["cv"], str(exp / "c3"))
    assert "already finished" in capsys.readouterr().out
    with pytest.raises(TrainingError, match="set model.num_spk: 3 in the config, or train with --num-spk 3"):
        launcher.train(str(config), data3["tr"], data3["cv"], str(exp / "plain"))  # the config's 2: refused
    with pytest.raises(TrainingError, match="--num-spk 1: a mixture has 2 or more sources"):
        launcher.train(str(config), data3["tr"], data3["cv"], str(exp / "c1"), num_spk=1)


def test_set_changes_the_config_without_editing_it_and_is_recorded(tmp_path, data):
    """train.py --set training.epochs=1 --set training.lr=0.02 on a config of 3 epochs: one epoch at lr
    0.02, in <exp>/config.yaml (the file's header kept), provenance.yaml and the checkpoints; the file
    is left as it is. The same command again is a finished run; without --set, a resume of another
    config, refused naming the keys."""
    config = tmp_path / "c.yaml"
    write_config(config, "dc", epochs=3, lr=0.01)
    config.write_text("# a dc config\n" + config.read_text())
    before = config.read_text()
    exp = tmp_path / "exp"
    options = ["--set", "training.epochs=1", "--set", "training.lr=0.02"]
    train(str(config), data, exp, *options)
    assert config.read_text() == before
    rows = (exp / "history.tsv").read_text().splitlines()[1:]
    assert len(rows) == 1 and float(rows[0].split("\t")[3]) == 0.02
    copy = (exp / "config.yaml").read_text()
    assert copy.startswith("# a dc config\n# made by nnet/train.py from ")
    assert "with training.epochs=1, training.lr=0.02\n" in copy
    assert yaml.safe_load(copy)["training"] == {**yaml.safe_load(before)["training"], "epochs": 1, "lr": 0.02}
    recorded = yaml.safe_load((exp / "provenance.yaml").read_text())["config"]["training"]
    assert (recorded["epochs"], recorded["lr"]) == (1, 0.02)
    best = torch.load(exp / "best.pt", weights_only=True)["config"]["training"]
    assert (best["epochs"], best["lr"]) == (1, 0.02)
    resolve = [PYTHON, "-m", "nnet.config", "resolve", *options, "--features", data["tr"], str(config)]
    resolved = subprocess.run(resolve, capture_output=True, text=True, check=True).stdout
    assert yaml.safe_load(resolved) == yaml.safe_load(copy)
    assert "already finished" in train(str(config), data, exp, *options).stdout
    refused = train(str(config), data, exp, check=False)
    assert refused.returncode == 1
    assert "training.epochs 1 when trained, 3 now" in refused.stderr
    assert "training.lr 0.02 when trained, 0.01 now" in refused.stderr


@pytest.mark.parametrize(
    "option, message",
    [
        ("training.epochs=2.5", "{config}: --set training.epochs=2.5: training.epochs: 2.5 is not an integer"),
        ("training.lr=-1", "{config}: --set training.lr=-1: training.lr: -1.0 is not > 0"),
        (
            "epochs=2",
            "{config}: --set epochs=2: expected <section>.<key>=<value> (model, loss, training) or "
            "init_from=<system>: did you mean training.epochs=2?",
        ),
        ("training.epochs", "{config}: --set training.epochs: expected <section>.<key>=<value>"),
        ("training.epoch=2", "{config}: --set training.epoch=2: training.epoch is not a training key; known: "),
        ("model.dc_units=8", "{config} with --set model.dc_units=8: model.dc_units is not a key of model type 'dc'"),
    ],
)
def test_a_wrong_set_is_refused_naming_it(tmp_path, data, option, message):
    config = write_config(tmp_path / "c.yaml", "dc", epochs=1)
    proc = train(config, data, tmp_path / "exp", "--set", option, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert message.format(config=config) in proc.stderr
    assert not (tmp_path / "exp" / "last.pt").exists()


def test_num_bins_comes_from_the_features(tmp_path):
    """16 kHz data: the 32 ms frames are a 512-point FFT, 257 bins. A config that leaves model.num_bins out
    trains with 257, which <exp>/config.yaml, provenance.yaml, best.pt and `nnet.config resolve` say; a
    config of model.num_bins: 129 is refused naming both values and the fix."""
    dirs = {}
    for name, count, seed in (("tr", 3, 0), ("cv", 1, 1)):
        dirs[name] = make_featured_data_dir(tmp_path / name, num_utts=count, seed=seed, rate=16000, seconds=(0.6, 0.8))
    config = tmp_path / "c.yaml"
    write_config(config, "chimera", epochs=1)
    with pytest.raises(
        TrainingError,
        match="have 257 bins .16000 Hz, 512-point FFT. but model.num_bins is 129: leave model.num_bins out of the "
        "config .training takes the features'. or set it to 257",
    ):
        launcher.train(str(config), dirs["tr"], dirs["cv"], str(tmp_path / "plain"))
    written = yaml.safe_load(config.read_text())
    del written["model"]["num_bins"]
    config.write_text(yaml.safe_dump(written))
    launcher.train(str(config), dirs["tr"], dirs["cv"], str(tmp_path / "exp"))
    best = torch.load(tmp_path / "exp" / "best.pt", weights_only=True)
    assert best["config"]["model"]["num_bins"] == 257
    assert best["model"]["mask.linear.weight"].shape[0] == 2 * 257
    copy = (tmp_path / "exp" / "config.yaml").read_text()
    assert "with model.num_bins=257 (the features')" in copy
    made = {**written, "model": {**written["model"], "num_bins": 257}}
    assert yaml.safe_load(copy) == made
    assert yaml.safe_load((tmp_path / "exp" / "provenance.yaml").read_text())["config"]["model"]["num_bins"] == 257
    resolve = [PYTHON, "-m", "nnet.config", "resolve", "--features", dirs["tr"], str(config)]
    assert yaml.safe_load(subprocess.run(resolve, capture_output=True, text=True, check=True).stdout) == made
