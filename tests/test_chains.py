"""init_from: a config names the system it starts from; steps/train_chains.sh builds its chains
from that alone, and the weight loading names every model key that differs from the source's."""

import os
import subprocess

import pytest
import torch

from nnet import config as configs, models
from nnet import init_from
from nnet.training_error import TrainingError
from test_train import ROOT, data, data3, train, write_config  # noqa: F401 (data, data3 are fixtures)

CHAINS = os.path.join(ROOT, "steps", "train_chains.sh")


def with_init_from(path, source):
    path.write_text(f"init_from: {source}\n" + path.read_text())
    return str(path)


def train_chains(tuning, systems, data, exp, *options):
    return subprocess.run(
        ["bash", CHAINS, *options, str(tuning), systems, data["tr"], data["cv"], str(exp)],
        capture_output=True,
        text=True,
    )


def test_a_new_config_with_init_from_trains_as_a_chain(tmp_path, data):
    """A pair A -> B in a fresh tuning dir, listed B first: A trains, then B from A's best.pt."""
    tuning, exp = tmp_path / "tuning", tmp_path / "exp"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc", epochs=1)
    write_config(tuning / "b.yaml", "def", epochs=1)
    with_init_from(tuning / "b.yaml", "a")
    proc = train_chains(tuning, "b a", data, exp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.index("training a\n") < proc.stdout.index("training b\n")
    log = (exp / "b" / "log" / "train.log").read_text()
    assert f"started from {exp}/a/best.pt (init_from: a)" in log
    source = torch.load(exp / "a" / "best.pt", weights_only=True)["model"]
    trained = torch.load(exp / "b" / "last.pt", weights_only=True)["model"]
    for name, tensor in source.items():  # b's DC part is frozen: a's weights as they were
        assert torch.equal(trained["dc." + name], tensor), name


def test_a_mismatched_init_names_every_key(tmp_path, data):
    """A dc source of 16 units and D = 8 for a def whose DC part has 8 units and D = 4: exit 1 naming both keys."""
    exp = tmp_path / "exp"
    train(write_config(tmp_path / "a.yaml", "dc", epochs=1), data, exp / "a")
    write_config(tmp_path / "b.yaml", "def", epochs=1, model={"dc_units": 8, "emb_dim": 4})
    b = with_init_from(tmp_path / "b.yaml", "a")
    proc = train(b, data, exp / "b", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "size mismatch" not in proc.stderr
    best = exp / "a" / "best.pt"
    assert (
        f"train.py: {best} does not fit this model: model.units 16 in {best}, model.dc_units 8 here; "
        f"model.emb_dim 8 in {best}, 4 here: make the model keys agree"
    ) in proc.stderr
    assert not (exp / "b" / "last.pt").exists() and not (exp / "b" / ".finished").exists()


def test_a_source_of_another_model_type_is_refused(tmp_path, data):
    exp = tmp_path / "exp"
    train(write_config(tmp_path / "a.yaml", "dc", epochs=1), data, exp / "a")
    write_config(tmp_path / "c.yaml", "chimera", epochs=1)
    proc = train(with_init_from(tmp_path / "c.yaml", "a"), data, exp / "c", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"train.py: {exp}/a/best.pt: a 'dc' model cannot initialize a 'chimera' model" in proc.stderr


def test_a_missing_source_checkpoint_is_named_before_training(tmp_path, data):
    write_config(tmp_path / "b.yaml", "def", epochs=1)
    config = with_init_from(tmp_path / "b.yaml", "a")
    exp = tmp_path / "exp"
    proc = train(config, data, exp / "b", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"train.py: {config}: init_from: a: {exp}/a/best.pt not found: train a first "
        "(steps/train_chains.sh trains a chain in order)"
    )
    assert not (exp / "b").exists()


@pytest.mark.parametrize(
    "configs_text, systems, message",
    [
        ({"b": "a"}, "b", "tuning/b.yaml: init_from: a: there is no tuning/a.yaml"),
        (
            {"a": None, "b": "a"},
            "b",
            "tuning/b.yaml: init_from: a is not among the systems to train and exp/a/best.pt "
            "does not exist: add a to the systems",
        ),
        ({"a": "b", "b": "a"}, "a b", "tuning/a.yaml: init_from makes a cycle (a -> b -> a)"),
        ({"a": "a"}, "a", "tuning/a.yaml: init_from makes a cycle (a -> a)"),
        ({"a": "../a"}, "a", "tuning/a.yaml: init_from: '../a' is not a system name"),
    ],
)
def test_init_from_errors_name_the_file(tmp_path, configs_text, systems, message):
    """An unknown source, one neither listed nor trained, a cycle, a path: exit 1 from train_chains.sh
    naming the config, before anything trains."""
    tuning = tmp_path / "tuning"
    tuning.mkdir()
    for name, source in configs_text.items():
        write_config(tuning / f"{name}.yaml", "dc", epochs=1)
        if source:
            with_init_from(tuning / f"{name}.yaml", source)
    proc = subprocess.run(
        ["bash", CHAINS, "tuning", systems, "tr", "cv", "exp"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "training" not in proc.stdout and not (tmp_path / "exp").exists()


def test_a_source_trained_earlier_need_not_be_listed(tmp_path):
    tuning = tmp_path / "tuning"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc")
    write_config(tuning / "b.yaml", "def")
    with_init_from(tuning / "b.yaml", "a")
    (tmp_path / "exp" / "a").mkdir(parents=True)
    (tmp_path / "exp" / "a" / "best.pt").write_bytes(b"")
    assert configs.chains(str(tuning), str(tmp_path / "exp"), ["b"]) == [["b"]]
    assert configs.chains(str(tuning), str(tmp_path / "exp"), ["oracle_ibm", "b", "a", "b"]) == [["a", "b"]]


def test_branches_train_after_their_common_source(tmp_path):
    """a -> b and a -> c: one chain a, b, c (the old shell table kept only the last child)."""
    tuning = tmp_path / "tuning"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc")
    for name in ("b", "c"):
        write_config(tuning / f"{name}.yaml", "def")
        with_init_from(tuning / f"{name}.yaml", "a")
    assert configs.chains(str(tuning), "exp", ["c", "b", "a"]) == [["a", "c", "b"]]


def test_num_spk_reaches_every_member_of_a_chain(tmp_path, data3):
    """train_chains.sh --num-spk 3 (run.sh's --num-spk) on three-speaker data: the dc source (no
    model.num_spk in its config) and the def that starts from it (model.num_spk: 2 in its config) both
    train with C = 3; a def of another C than its source is refused, naming model.num_spk."""
    tuning, exp = tmp_path / "tuning", tmp_path / "exp"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc", epochs=1)
    write_config(tuning / "b.yaml", "def", epochs=1)
    with_init_from(tuning / "b.yaml", "a")
    proc = train_chains(tuning, "a b", data3, exp, "--num-spk", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--num-spk 3" in proc.stdout  # train.sh's command line
    for system in ("a", "b"):
        assert torch.load(exp / system / "best.pt", weights_only=True)["config"]["model"]["num_spk"] == 3, system
    assert torch.load(exp / "b" / "best.pt", weights_only=True)["model"]["mi.mask.linear.weight"].shape[0] == 3 * 129
    # a def of C = 2 from the C = 3 source: the weights would fit, the number of sources does not
    config = configs.load_config(str(tuning / "b.yaml"))["model"]
    best = exp / "a" / "best.pt"
    with pytest.raises(TrainingError, match=f"model.num_spk 3 in {best}, 2 here"):
        init_from.load_initial_weights(models.build_model(config), config, str(best))
