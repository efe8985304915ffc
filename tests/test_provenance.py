"""Issue 23: every result knows what made it, the training side. A finished system and a resumed
run are reused only when they were made from the config (its content), data and STFT they are now given
(nnet/provenance.py); one training writes an exp dir at a time; tr and cv share one STFT. Each case was a
run that exited 0 with a wrong result or lost data."""

import os
import shutil
import signal as os_signal
import subprocess
import time

import pytest
import yaml

import synth
from test_recipe_e2e import RECIPE, copied_recipe, tiny_configs, write_corpus
from test_train import ROOT, data, start, train, write_config  # noqa: F401 (data is a fixture)

CHAINS = os.path.join(ROOT, "steps", "train_chains.sh")
TRAIN_SH = os.path.join(ROOT, "steps", "train.sh")


def sh(*args, cwd=ROOT, timeout=300):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """tr and cv data dirs of other utterances than `data`'s (another seed, another place)."""
    root = tmp_path_factory.mktemp("other_data")
    return {
        name: synth.make_featured_data_dir(root / name, num_utts=count, seed=seed, seconds=(0.8, 1.2))
        for name, count, seed in (("tr", 6, 10), ("cv", 2, 11))
    }


def train_chains(tuning, systems, dirs, exp, *options):
    return sh("bash", CHAINS, *options, tuning, systems, dirs["tr"], dirs["cv"], exp)


def kill_after_first_epoch(config, dirs, exp):
    """Start train.py and SIGKILL it once its first epoch is saved; returns the killed pid."""
    proc = start(config, dirs, exp)
    history = exp / "history.tsv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.01)
    proc.send_signal(os_signal.SIGKILL)
    proc.communicate()
    assert 2 <= len(history.read_text().splitlines()) < 4, "the run was not interrupted mid-way"
    return proc.pid


# -- item 1: a finished system is reused only for the config, data and STFT that made it ---------------------
@pytest.mark.fault
@pytest.mark.parametrize("change", ["data", "config", "stft"])
def test_a_finished_system_is_not_reused_for_other_data_config_or_stft(tmp_path, data, other, change):
    """Stage 3 given a finished system and other data, an edited config (same file name) or another STFT:
    refused naming what differs and --retrain true; the unchanged case is still skipped."""
    tuning, exp = tmp_path / "tuning", tmp_path / "exp"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc", epochs=1)
    first = train_chains(tuning, "a", data, exp)
    assert first.returncode == 0, first.stdout + first.stderr
    again = train_chains(tuning, "a", data, exp)
    assert again.returncode == 0 and f"{exp}/a finished training; skipped" in again.stdout, again.stderr
    best = (exp / "a" / "best.pt").read_bytes()
    dirs, named = data, []
    if change == "data":
        dirs = other
        named = [f"the training data {other['tr']} (trained on {data['tr']}", "wav.scp"]
    elif change == "config":
        write_config(tuning / "a.yaml", "dc", epochs=1, lr=0.02)
        named = ["training.lr 0.01 when trained, 0.02 now"]
    else:
        dirs = {}
        for name in ("tr", "cv"):
            shutil.copytree(data[name], tmp_path / name, symlinks=True)
            (tmp_path / name / "stft.conf").write_text("--window=hann\n")
            dirs[name] = str(tmp_path / name)
        named = [f"the training data {dirs['tr']} (trained on {data['tr']}", "stft.conf"]
    proc = train_chains(tuning, "a", dirs, exp)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{exp}/a finished training, but not from what it is given now:" in proc.stderr
    for text in named:
        assert text in proc.stderr, (text, proc.stderr)
    assert "--retrain true trains it again" in proc.stderr and "skipped" not in proc.stdout
    assert (exp / "a" / "best.pt").read_bytes() == best


@pytest.mark.fault
def test_a_finished_system_trained_with_set_is_reused_only_with_the_same_set(tmp_path, data):
    """train_chains.sh --set "training.epochs=1 training.lr=0.02" (run.sh --set): every system of the
    chain trains so; the same --set skips the finished system, another (or none) is refused naming
    the keys, as a changed config file is. The config leaves model.num_bins out, as the recipes' do:
    the check takes the features' as training did."""
    tuning, exp = tmp_path / "tuning", tmp_path / "exp"
    tuning.mkdir()
    write_config(tuning / "a.yaml", "dc", epochs=3)
    written = yaml.safe_load((tuning / "a.yaml").read_text())
    del written["model"]["num_bins"]
    (tuning / "a.yaml").write_text(yaml.safe_dump(written))
    options = ("--set", "training.epochs=1 training.lr=0.02")
    first = train_chains(tuning, "a", data, exp, *options)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "--set training.epochs=1 training.lr=0.02" in first.stdout  # train.sh's command line
    assert len((exp / "a" / "history.tsv").read_text().splitlines()) == 2  # one epoch
    again = train_chains(tuning, "a", data, exp, *options)
    assert again.returncode == 0 and f"{exp}/a finished training; skipped" in again.stdout, again.stderr
    for other, named in (
        ((), "training.epochs 1 when trained, 3 now"),
        (("--set", "training.epochs=1"), "training.lr"),
    ):
        proc = train_chains(tuning, "a", data, exp, *other)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{exp}/a finished training, but not from what it is given now:" in proc.stderr
        assert named in proc.stderr and "--retrain true trains it again" in proc.stderr


# -- item 2: a resume continues the recorded config or refuses; config.yaml always fits best.pt -------------
@pytest.mark.fault
@pytest.mark.parametrize(
    "killed, changes, named",
    [
        (
            True,
            {"lr": 0.5, "epochs": 5},
            ["training.lr 0.01 when trained, 0.5 now", "training.epochs 3 when trained, 5 now"],
        ),
        (False, {"epochs": 5}, ["training.epochs 3 when trained, 5 now"]),
        (False, {"model": {"units": 8}}, ["model.units 16 when trained, 8 now"]),
    ],
)
def test_a_resume_with_another_config_is_refused_and_config_yaml_kept(tmp_path, data, killed, changes, named):
    """A killed run re-run with another lr and epochs, a finished one with more epochs or another units: exit 1
    naming each changed key; config.yaml, history.tsv and best.pt stay those of the run."""
    config, exp = tmp_path / "c.yaml", tmp_path / "exp"
    write_config(config, "dc", epochs=3)
    if killed:
        kill_after_first_epoch(str(config), data, exp)
    else:
        train(str(config), data, exp)
    kept = {name: (exp / name).read_bytes() for name in ("config.yaml", "history.tsv", "best.pt")}
    model = changes.pop("model", None)
    write_config(config, "dc", model=model, **{"epochs": 3, **changes})
    proc = train(str(config), data, exp, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"train.py: {exp} was trained from another config than {config}:" in proc.stderr
    for text in named:
        assert text in proc.stderr, (text, proc.stderr)
    assert "restore the config, or train it again with --retrain true" in proc.stderr
    for name, content in kept.items():
        assert (exp / name).read_bytes() == content, name


# -- item 3: one writer per exp dir --------------------------------------------------------------------------
@pytest.mark.fault
def test_a_second_training_of_a_running_exp_dir_is_refused(tmp_path, data):
    """Two steps/train.sh on one exp dir, the second while the first runs: the second exits 1 naming the
    first's pid; the first's log and run are untouched and it finishes."""
    exp = tmp_path / "exp"
    first_config = write_config(tmp_path / "first.yaml", "dc", epochs=12)
    first = subprocess.Popen(
        ["bash", TRAIN_SH, first_config, data["tr"], data["cv"], str(exp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (exp / "last.pt").exists():
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second_config = write_config(tmp_path / "second.yaml", "dc", epochs=12, lr=0.5)
        second = sh("bash", TRAIN_SH, second_config, data["tr"], data["cv"], exp, timeout=120)
        assert second.returncode == 1, second.stdout + second.stderr
        assert first.poll() is None, "the first training ended before the second started: make it longer"
        assert f"{exp} is being trained by another run (pid {first.pid} on " in second.stderr, second.stderr
        assert "wait for it to end, or stop it" in second.stderr
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, os_signal.SIGKILL)
    assert first.returncode == 0, out + err
    log = (exp / "log" / "train.log").read_text()
    assert "second.yaml" not in log and "epoch 12 train_loss" in log
    assert yaml.safe_load((exp / "config.yaml").read_text())["training"]["lr"] == 0.01
    assert [int(line.split("\t")[0]) for line in (exp / "history.tsv").read_text().splitlines()[1:]] == list(
        range(1, 13)
    )


@pytest.mark.fault
def test_the_lock_of_a_killed_training_is_recognised_as_stale(tmp_path, data):
    """A training SIGKILLed mid-run leaves its lock: the re-run takes it over, saying whose it was, and resumes."""
    config, exp = write_config(tmp_path / "c.yaml", "dc", epochs=3), tmp_path / "exp"
    pid = kill_after_first_epoch(config, data, exp)
    assert f" {pid} " in f" {(exp / '.lock').read_text()} "
    proc = train(config, data, exp)
    assert f"{exp}/.lock: taken over from pid {pid} on " in proc.stdout
    assert "(no longer running: a killed run?)" in proc.stdout and f"resumed from {exp}/last.pt" in proc.stdout


# -- item 12: the STFT of tr and cv ---------------------------------------------------------------------------
@pytest.mark.fault
def test_validation_features_of_another_stft_are_refused(tmp_path, data):
    """cv's features made with a Hann window, tr's with sqrt-Hann: exit 1 naming both stft.conf and the window."""
    cv = tmp_path / "cv"
    shutil.copytree(data["cv"], cv, ignore=shutil.ignore_patterns("split*", "feats.scp", "cmvn", "stft.conf"))
    conf = tmp_path / "hann.conf"
    conf.write_text("--window=hann\n")
    made = sh(
        "bash",
        os.path.join(ROOT, "steps/make_feats.sh"),
        "--nj",
        "1",
        "--stft-conf",
        conf,
        cv,
        tmp_path / "log",
        tmp_path / "feats",
    )
    assert made.returncode == 0, made.stderr
    exp = tmp_path / "exp"
    proc = train(write_config(tmp_path / "c.yaml", "dc", epochs=1), {"tr": data["tr"], "cv": str(cv)}, exp, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        f"train.py: {cv}/stft.conf and {data['tr']}/stft.conf describe different STFTs (window: hann in {cv}, "
        f"sqrt_hann in {data['tr']})"
    ) in proc.stderr
    assert "re-make the features of one with the other's --stft-conf" in proc.stderr
    assert not (exp / "last.pt").exists()


# -- README's two commands in one clone: the copy takes no finished system of other data --------------------------
@pytest.mark.fault
def test_a_copied_recipe_neither_carries_nor_reuses_the_source_runs_systems(tmp_path, data):
    """A recipe dir with a finished exp/ of other data (the main job's, README's quick start): the tests' copy
    leaves exp/ behind, and a copy that has it anyway (cp -r) refuses the system at stage 3, naming the data."""
    source = tmp_path / "src"
    subprocess.run(["cp", "-r", RECIPE, str(source)], check=True)
    # the checkout's own main job may have run (README's two commands in one clone): its exp/ is not
    # this test's source run, which trains below
    shutil.rmtree(source / "exp", ignore_errors=True)
    tiny_configs(os.path.join(RECIPE, "conf", "tuning"), str(tmp_path / "tiny"))  # those of the copy
    made = train(str(tmp_path / "tiny" / "upit.yaml"), data, source / "exp" / "upit")
    assert "epoch 1" in made.stdout and (source / "exp" / "upit" / ".finished").is_file()
    (tmp_path / "copy").mkdir()
    work = copied_recipe(tmp_path / "copy", source=str(source))
    assert not (work / "exp").exists()
    shutil.copytree(source / "exp", work / "exp")  # README's `cp -r` would have carried it
    names = {"tr": [f"m01a{i:04d}_0.5_f02b{i:04d}_-0.5" for i in range(4)], "cv": ["m03a0001_0.1_f04b0001_-0.1"]}
    names["tt"] = ["m05a0001_0.2_f06b0001_-0.2"]
    write_corpus(tmp_path / "corpus", names, 2, seed=8)
    run = subprocess.run(
        ["./run.sh", "--stage", "1", "--stop-stage", "3", "--nj", "1", "--tuning", "tiny", "--systems", "upit"]
        + ["--wav-dir", str(tmp_path / "corpus"), "--mixlists", "none"],
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode != 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "exp/upit finished training, but not from what it is given now:" in run.stderr
    assert f"the training data data/tr (trained on {data['tr']})" in run.stderr
    assert "exp/upit finished training; skipped" not in run.stdout
    assert not list((work / "exp" / "upit").glob("separate_*"))


# -- item 13: a sweep re-run with other --epochs ---------------------------------------------------------------
@pytest.mark.fault
def test_a_sweep_rerun_with_other_epochs_does_not_reuse_its_trainings(tmp_path, data):
    """sweep_alpha.sh --epochs 1, then --epochs 2 into the same dir: refused naming training.epochs, not reused."""
    config = write_config(tmp_path / "chimera.yaml", "chimera", epochs=3)
    sweep = ["bash", os.path.join(ROOT, "steps/sweep_alpha.sh"), "--alphas", "0.5", "--nj", "1"]
    first = sh(*sweep, "--epochs", "1", config, data["tr"], data["cv"], tmp_path / "sweep")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    proc = sh(*sweep, "--epochs", "2", config, data["tr"], data["cv"], tmp_path / "sweep")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "training.epochs 1 when trained, 2 now" in proc.stderr
    rows = (tmp_path / "sweep" / "result.tsv").read_text().splitlines()
    assert rows[1].split("\t")[3] == "1"  # the first sweep's table stays as it was
