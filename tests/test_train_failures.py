"""Training's failure campaign (issue 9): bad configs, non-finite features, damaged or missing
checkpoints, a full disk, an unwritable exp dir, a truncated ark. Each run must exit non-zero
with a message naming the file / key / utterance and leave nothing a re-run takes as finished."""

import os
import shutil
import subprocess

import kaldiio
import numpy as np
import pytest
import torch

from nnet.config import ConfigError, load_config
from test_train import PYTHON, TRAIN, data, finish, start, train, write_config  # noqa: F401 (data is a fixture)


def copy_with_features(src, dst, change):
    """A copy of data dir `src` whose features, read as {utt: matrix}, went through `change`."""
    shutil.copytree(src, dst)
    feats = {utt: np.array(mat) for utt, mat in kaldiio.load_scp(os.path.join(src, "feats.scp")).items()}
    change(feats)
    os.remove(os.path.join(dst, "feats.scp"))
    kaldiio.save_ark(os.path.join(dst, "feats.ark"), feats, scp=os.path.join(dst, "feats.scp"))
    return dst


def run(config, train_dir, valid_dir, exp, *extra, timeout=300):
    return subprocess.run(
        [PYTHON, TRAIN, *extra, config, train_dir, valid_dir, str(exp)], capture_output=True, text=True, timeout=timeout
    )


def assert_clean_failure(proc, exp):
    """Exit 1 with a one-paragraph message (no traceback), no finished marker."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not (exp / ".finished").exists()


# -- case 5: the config ------------------------------------------------------------------------
MODEL = "model:\n  type: dc\n  num_bins: 129\n  layers: 1\n  units: 8\n  emb_dim: 4\n"
BASE = MODEL + "loss:\n  type: dc\n  dc_objective: classic\n  dc_weights: none\n"


@pytest.mark.fault
@pytest.mark.parametrize(
    "text, message",
    [
        (
            BASE + "trainng:\n  epochs: 2\n",
            "unknown section 'trainng:'; expected model:, loss:, training: (and the key init_from)",
        ),
        (BASE + "training:\n  batch_size: four\n", "training.batch_size: 'four' is not an integer"),
        (BASE + "training:\n  grad_clip: yes\n", "training.grad_clip: True is not a number"),
        (BASE + "training:\n  epochs: 2.5\n", "training.epochs: 2.5 is not an integer"),
        (BASE + "training:\n  lr: fast\n", "training.lr: 'fast' is not a number"),
        (BASE + "training:\n  amp: 1\n", "training.amp: 1 is not true or false"),
        (
            BASE + "training:\n  optimizer: adam\n",
            "training.optimizer is not a key any more: training is always Adam: delete the line",
        ),
        (BASE + "training:\n  batch_size: 0\n", "training.batch_size: 0 is not >= 1 (default: 32)"),
        (BASE + "training:\n  lr_factor: 1\n", "training.lr_factor: 1.0 is not in (0, 1) (default: 0.5)"),
        (BASE + "training:\n  segmnet_frames: 10\n", "training.segmnet_frames is not a training key; known: "),
        ("init_from: [a]\n" + BASE, "init_from: ['a'] is not a system name"),
        (BASE + "training: 3\n", "section 'training:' is 3, expected keys"),
        ("", "is empty; expected the sections model:, loss: and training:"),
        ("model: [dc\n", "not valid YAML"),
        ("\x00\x01binary", "not valid YAML"),
        ("- model\n- loss\n", "expected the sections model:, loss: and training:, found a list"),
        (
            BASE.replace("units: 8", "unit: 8"),
            "model.unit is not a key of model type 'dc'; its keys: dropout, emb_dim, ",
        ),
        (BASE.replace("emb_dim: 4", "emb_dim: four"), "model.emb_dim: 'four' is not an integer"),
        (
            MODEL + "loss:\n  type: dc\n  dc_objective: clasic\n  dc_weights: none\n",
            "loss.dc_objective: 'clasic' is not one of classic, laplacian, ",
        ),
    ],
)
def test_config_mistakes_name_the_file_key_and_expected_type(tmp_path, text, message):
    """A misspelled section, a mistyped training key, a non-YAML or empty file: an error naming file and key."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


@pytest.mark.fault
def test_config_accepts_exponent_strings_as_floats(tmp_path):
    """`lr: 1e-3` is a string to PyYAML: it is read as the float users mean."""
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "training:\n  lr: 1e-3\n  weight_decay: 0\n  grad_clip: 2\n")
    opts = load_config(str(path))["training"]
    assert opts["lr"] == 0.001 and isinstance(opts["lr"], float)
    assert opts["weight_decay"] == 0.0 and opts["grad_clip"] == 2.0


@pytest.mark.fault
def test_config_error_ends_train_py_without_traceback(tmp_path, data):
    """A mistyped key seen by nnet/bin/train.py: exit 1, the message alone, no experiment files."""
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "training:\n  batch_size: four\n")
    proc = run(str(path), data["tr"], data["cv"], tmp_path / "exp")
    assert_clean_failure(proc, tmp_path / "exp")
    assert proc.stderr.strip() == f"train.py: {path}: training.batch_size: 'four' is not an integer (default: 32)"


# -- cases 1 and 6: non-finite features ------------------------------------------------------------
@pytest.mark.fault
def test_nan_in_validation_features_stops_training_naming_the_utterance(tmp_path, data):
    """NaN rows in one cv utterance: exit 1 naming it and cv/feats.scp; no .finished (no dead end)."""
    utt = sorted(kaldiio.load_scp(os.path.join(data["cv"], "feats.scp")))[1]
    cv = copy_with_features(data["cv"], str(tmp_path / "cv"), lambda f: f[utt].__setitem__(slice(3, 6), np.nan))
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "chimera", epochs=1), data["tr"], cv, exp)
    assert_clean_failure(proc, exp)
    assert (
        f"validation: the loss is nan: the features of utterance(s) '{utt}' of {cv}/feats.scp hold NaN or inf"
    ) in proc.stderr
    assert "training.lr" not in proc.stderr
    assert not (exp / "best.pt").exists() and not (exp / "last.pt").exists()


@pytest.mark.fault
def test_nan_in_validation_features_under_ddp_ends_every_process(tmp_path, data):
    """The same under --num-procs 2 (rank 1 has no cv batch and waits in all_reduce): exit 1, no hang."""
    utt = sorted(kaldiio.load_scp(os.path.join(data["cv"], "feats.scp")))[0]
    cv = copy_with_features(data["cv"], str(tmp_path / "cv"), lambda f: f[utt].__setitem__(0, np.nan))
    exp = tmp_path / "exp"
    proc = run(
        write_config(tmp_path / "c.yaml", "chimera", epochs=1), data["tr"], cv, exp, "--num-procs", "2", timeout=180
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"the features of utterance(s) '{utt}' of {cv}/feats.scp hold NaN or inf" in proc.stderr
    assert not (exp / ".finished").exists() and not (exp / "last.pt").exists()


@pytest.mark.fault
def test_inf_in_training_features_names_the_utterance_not_the_learning_rate(tmp_path, data):
    """inf in every frame of one tr utterance: exit 1 naming it and tr/feats.scp, no advice about lr."""
    utt = sorted(kaldiio.load_scp(os.path.join(data["tr"], "feats.scp")))[2]
    tr = copy_with_features(data["tr"], str(tmp_path / "tr"), lambda f: f[utt].__setitem__(slice(None), np.inf))
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "chimera", epochs=2), tr, data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert f"the features of utterance(s) '{utt}' of {tr}/feats.scp hold NaN or inf" in proc.stderr
    assert "training.lr" not in proc.stderr


@pytest.mark.fault
def test_diverging_training_names_the_batch_and_advises_a_lower_lr(tmp_path, data):
    """Finite features but an infinite learning rate: exit 1 naming the batch's utterances and advising lr."""
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "chimera", epochs=1, lr=float("inf")), data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert "epoch 1 step 2: the loss is nan on utterance(s) 'a0" in proc.stderr
    assert f"of {data['tr']}/feats.scp; their features are finite: lower training.lr" in proc.stderr


# -- case 3: best.pt must match the history ---------------------------------------------------------
@pytest.mark.fault
def test_stale_best_pt_is_repaired_from_last_pt(tmp_path, data):
    """best.pt left at epoch 1 while history says epoch 2 was best (a failed save): re-saved, not 'finished'."""
    exp = tmp_path / "exp"
    one = start(write_config(tmp_path / "c1.yaml", "chimera", epochs=1), data, tmp_path / "one")
    config = write_config(tmp_path / "c2.yaml", "chimera", epochs=2)
    train(config, data, exp)
    finish(one)
    last = torch.load(exp / "last.pt", weights_only=True)
    assert last["history"][1]["valid_loss"] < last["history"][0]["valid_loss"], "epoch 2 must be the best for this test"
    shutil.copy(tmp_path / "one" / "best.pt", exp / "best.pt")  # what a failed save of epoch 2 leaves
    (exp / ".finished").unlink()
    proc = train(config, data, exp)
    assert f"{exp}/best.pt holds epoch 1, the best epoch is 2: re-saved it from {exp}/last.pt" in proc.stdout
    best = torch.load(exp / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    for name, tensor in last["model"].items():
        assert torch.equal(best["model"][name], tensor), name
    assert (exp / ".finished").exists()


@pytest.mark.fault
def test_lost_best_epoch_is_refused_not_finished(tmp_path, data):
    """best.pt gone while the best epoch (1) is older than last.pt (2): exit 1 naming best.pt; no .finished."""
    exp = tmp_path / "exp"
    # lr 1e-30: no weight moves in float32 (lr 0 is refused), so epoch 1 stays the best
    config = write_config(tmp_path / "c.yaml", "dc", epochs=2, lr=1e-30)
    train(config, data, exp)
    (exp / "best.pt").unlink()
    (exp / ".finished").unlink()
    proc = run(config, data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert (
        f"{exp}/best.pt is missing, the best epoch is 1 and {exp}/last.pt holds epoch 2: the best "
        f"weights are lost; move {exp} aside and train again"
    ) in proc.stderr


# -- case 8: damaged, missing or unwritable checkpoints -----------------------------------------------
@pytest.mark.fault
@pytest.mark.parametrize("keep", [0, 0.5])
def test_damaged_last_pt_is_named_with_the_remedy(tmp_path, data, keep):
    """An empty or truncated last.pt: exit 1 naming it and what to do; best.pt is kept."""
    exp = tmp_path / "exp"
    config = write_config(tmp_path / "c.yaml", "dc", epochs=1)
    train(config, data, exp)
    content = (exp / "last.pt").read_bytes()
    (exp / "last.pt").write_bytes(content[: int(len(content) * keep)])
    (exp / ".finished").unlink()
    best = (exp / "best.pt").read_bytes()
    proc = run(config, data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert f"train.py: {exp}/last.pt: cannot read this checkpoint (" in proc.stderr
    assert f"restore it, or move {exp} aside and train again" in proc.stderr
    assert (exp / "best.pt").read_bytes() == best


@pytest.mark.fault
def test_deleted_last_pt_does_not_restart_over_best_pt(tmp_path, data):
    """last.pt deleted, best.pt there: refuse to start afresh over it (exit 1), best.pt unchanged."""
    exp = tmp_path / "exp"
    config = write_config(tmp_path / "c.yaml", "dc", epochs=1)
    train(config, data, exp)
    (exp / "last.pt").unlink()
    (exp / ".finished").unlink()
    best = (exp / "best.pt").read_bytes()
    proc = run(config, data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert (
        f"{exp} holds best.pt, history.tsv of an earlier run but no last.pt to resume from: a fresh "
        f"start would overwrite them; move {exp} aside"
    ) in proc.stderr
    assert (exp / "best.pt").read_bytes() == best


@pytest.mark.fault
def test_disk_full_while_saving_names_the_file_and_removes_the_temporary(tmp_path, data):
    """last.pt's temporary on /dev/full (ENOSPC): exit 1 naming last.pt and the disk; no last.pt.tmp left."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "last.pt.tmp").symlink_to("/dev/full")
    proc = run(write_config(tmp_path / "c.yaml", "dc", epochs=1), data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert f"train.py: {exp}/last.pt: cannot write the checkpoint (" in proc.stderr
    assert "is the disk full or the directory read-only?" in proc.stderr
    assert not os.path.lexists(exp / "last.pt.tmp") and not (exp / "last.pt").exists()


@pytest.mark.fault
def test_unwritable_exp_dir_is_refused_before_training(tmp_path, data):
    """An exp dir that cannot be created (under a regular file): exit 1 naming it, before any training."""
    (tmp_path / "file").write_text("")
    exp = tmp_path / "file" / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "dc", epochs=1), data["tr"], data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert proc.stderr.startswith(f"train.py: {exp}: cannot write in the experiment directory (")
    assert "epoch" not in proc.stdout


@pytest.mark.fault
@pytest.mark.parametrize("num_workers", [0, 1])
def test_truncated_ark_names_the_utterance_and_the_ark(tmp_path, data, num_workers):
    """feats.scp into a truncated ark, read in-process or by a loader worker: exit 1 naming utterance and ark."""
    tr = copy_with_features(data["tr"], str(tmp_path / "tr"), lambda f: None)
    ark = os.path.join(tr, "feats.ark")
    with open(os.path.join(tr, "feats.scp")) as f:
        scp = dict(line.split() for line in f)
    last_utt = max(scp, key=lambda u: int(scp[u].rsplit(":", 1)[1]))
    offset = int(scp[last_utt].rsplit(":", 1)[1])
    os.truncate(ark, offset + 100)  # the last utterance loses most of its matrix
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "dc", epochs=1, num_workers=num_workers), tr, data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert (
        f"train.py: {tr}/feats.scp: utterance '{last_utt}': cannot read its features from {ark}:{offset} ("
    ) in proc.stderr
    assert "re-run steps/make_feats.sh" in proc.stderr


@pytest.mark.fault
def test_truncated_reference_wav_names_the_utterance_and_the_file(tmp_path, data):
    """A reference wav cut short after the data dir was checked: exit 1 naming the data dir, utterance and wav."""
    tr = copy_with_features(data["tr"], str(tmp_path / "tr"), lambda f: None)
    spk1 = dict(line.split() for line in open(os.path.join(tr, "spk1.scp")))
    utt = sorted(spk1)[0]
    bad = tmp_path / "cut.wav"
    shutil.copy(spk1[utt], bad)  # the fixture's files are shared: cut a copy
    os.truncate(bad, 44 + 2 * 100)  # header kept, 100 of its samples left
    spk1[utt] = str(bad)
    with open(os.path.join(tr, "spk1.scp"), "w") as f:
        f.writelines(f"{u} {p}\n" for u, p in sorted(spk1.items()))
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "dc", epochs=1), tr, data["cv"], exp)
    assert_clean_failure(proc, exp)
    assert f"train.py: {tr}: utterance '{utt}': {bad}: truncated" in proc.stderr


def train_with_feats_scp(tmp_path, data, lines):
    """One epoch on a copy of data['tr'] whose feats.scp is `lines`: (process, the copy), the failure checked clean."""
    tr = tmp_path / "tr"
    shutil.copytree(data["tr"], tr)
    (tr / "feats.scp").write_text("".join(lines))
    exp = tmp_path / "exp"
    proc = run(write_config(tmp_path / "c.yaml", "dc", epochs=1), str(tr), data["cv"], exp)
    assert_clean_failure(proc, exp)
    return proc, tr


@pytest.mark.fault
def test_duplicate_feats_scp_key_names_both_lines_without_traceback(tmp_path, data):
    """A feats.scp line repeated: exit 1 naming the file, both lines and the repair, no traceback."""
    lines = open(os.path.join(data["tr"], "feats.scp")).readlines()
    proc, tr = train_with_feats_scp(tmp_path, data, lines + lines[:1])
    utt = lines[0].split()[0]
    assert (
        f"train.py: {tr}/feats.scp:{len(lines) + 1}: duplicate key '{utt}' (first on line 1); keep one line per key"
    ) in proc.stderr


@pytest.mark.fault
def test_feats_scp_of_another_set_names_the_missing_utterance_without_traceback(tmp_path, data):
    """tr's feats.scp replaced by another set's (utterances tr does not have): exit 1 naming tr's
    wav.scp, the utterance and utils/fix_data_dir.py, no traceback."""
    other = ["other_" + line for line in open(os.path.join(data["cv"], "feats.scp"))]
    proc, tr = train_with_feats_scp(tmp_path, data, other)
    utt = other[0].split()[0]
    assert (
        f"train.py: {tr}/wav.scp: no entry for utterance '{utt}' of feats.scp; run utils/fix_data_dir.py {tr}"
    ) in proc.stderr


# -- the shell steps ---------------------------------------------------------------------------
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.fault
def test_train_sh_shows_train_py_error_not_only_the_log_path(tmp_path, data):
    """steps/train.sh with `epochs: 2.5`: exit 1 and train.py's message on stderr, not only 'read the log'."""
    path = tmp_path / "c.yaml"
    path.write_text(BASE + "training:\n  epochs: 2.5\n")
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/train.sh"), str(path), data["tr"], data["cv"], str(tmp_path / "exp")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert f"steps/train.sh: train.py: {path}: training.epochs: 2.5 is not an integer (default: 100)" in proc.stderr


@pytest.mark.fault
def test_finished_marker_without_best_pt_is_not_skipped(tmp_path, data):
    """A .finished beside no best.pt (the dead end of NaN validation): stage 3 does not skip it; best.pt comes back."""
    tuning, exp = tmp_path / "tuning", tmp_path / "exp"
    tuning.mkdir()
    write_config(tuning / "dc.yaml", "dc", epochs=1)
    train(str(tuning / "dc.yaml"), data, exp / "dc")
    (exp / "dc" / "best.pt").unlink()
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/train_chains.sh"), str(tuning), "dc", data["tr"], data["cv"], str(exp)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "finished training; skipped" not in proc.stdout
    assert torch.load(exp / "dc" / "best.pt", weights_only=True)["epoch"] == 1
    assert "the best epoch is 1: re-saved it" in (exp / "dc" / "log" / "train.log").read_text()


@pytest.mark.fault
def test_a_config_for_other_speaker_counts_than_the_data_is_refused(tmp_path, data):
    """model.num_spk 3 on two-speaker data dirs: exit 1 naming the data dir, both counts and the key
    to set, before any epoch (no shape error from the loss, no checkpoint)."""
    exp = tmp_path / "exp"
    proc = run(
        write_config(tmp_path / "c.yaml", "chimera", model={"num_spk": 3}, epochs=1), data["tr"], data["cv"], exp
    )
    assert_clean_failure(proc, exp)
    assert (
        f"{data['tr']} has 2 references (spk1.scp .. spk2.scp) but model.num_spk is 3: "
        "set model.num_spk: 2 in the config"
    ) in proc.stderr
    assert not (exp / "last.pt").exists()
