"""Issue 23: every result knows what made it, the results side. A RESULTS.md row, a pack's rows and
a pack's meta.yaml are reused only when they fit what made them (the score dirs' provenance.yaml,
nnet/provenance.py); a run's RESULTS.md is not the published one. Each case was a run that exited 0
with a wrong result or lost data."""

import os
import shutil
import subprocess
import zipfile

import pytest
import torch
import yaml

import synth
from nnet import datafiles
from test_score import make_separated
from test_separate import pack_model, rewrite_pack, trained  # noqa: F401 (trained is a fixture)
from test_train import PYTHON, ROOT


def sh(*args, cwd=ROOT, timeout=300):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# -- item 7: RESULTS.md rows of data that changed since -------------------------------------------------------
def score_dir(data, sep, out):
    proc = sh("bash", os.path.join(ROOT, "steps/score.sh"), "--nj", "1", data, sep, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.fault
def test_results_leave_out_rows_scored_on_an_older_corpus(tmp_path):
    """Two systems scored on data/tt, the corpus re-made (other utterances), one system re-scored: RESULTS.md
    holds the fresh row only, and says which row was left out and why."""
    recipe = tmp_path / "recipe"
    data = synth.make_data_dir(str(recipe / "tt"), num_utts=2, seed=1)
    for system in ("sys_a", "sys_b"):
        sep = make_separated(data, str(recipe / "exp" / system / "separate_tt"))
        score_dir(data, sep, str(recipe / "exp" / system / "score_tt"))
    shutil.rmtree(recipe / "tt")
    data = synth.make_data_dir(str(recipe / "tt"), num_utts=3, seed=2)  # re-made: new recordings
    shutil.rmtree(recipe / "exp" / "sys_a" / "separate_tt")
    sep = make_separated(data, str(recipe / "exp" / "sys_a" / "separate_tt"))
    score_dir(data, sep, str(recipe / "exp" / "sys_a" / "score_tt"))
    proc = sh(
        PYTHON, os.path.join(ROOT, "utils/show_results.py"), "--exp", recipe / "exp", "--out", recipe / "RESULTS.md"
    )
    assert proc.returncode == 0, proc.stderr
    text = (recipe / "RESULTS.md").read_text()
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| sys_")]
    assert rows == ["| sys_a"], text
    why = f"the data {data} changed since it was scored (spk1.scp, spk2.scp, utt2num_samples, wav.scp differ)"
    assert f"- sys_b tt: {why}" in text, text
    assert f"show_results.py: left out {recipe}/exp/sys_b/score_tt: {why}" in proc.stderr, proc.stderr


# -- item 9: a pack carries the rows of the model it packs -------------------------------------------------------
@pytest.mark.fault
def test_a_pack_carries_only_the_rows_of_its_own_model(tmp_path, trained):
    """A system separated, scored and gathered, then trained again (another best.pt): its pack leaves the old
    rows out, saying so; before the retraining the rows travel."""
    exp, tt = trained
    system = tmp_path / "exp" / "chimerapp"
    shutil.copytree(exp, system)
    proc = sh("bash", os.path.join(ROOT, "steps/separate.sh"), "--nj", "1", system, tt, system / "separate_tt")
    assert proc.returncode == 0, proc.stderr
    score_dir(tt, str(system / "separate_tt"), str(system / "score_tt"))
    results = tmp_path / "RESULTS.md"
    proc = sh(PYTHON, os.path.join(ROOT, "utils/show_results.py"), "--exp", tmp_path / "exp", "--out", results)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(pack_model(system, tmp_path / "fresh.zip", tmp_path)) as z:
        assert "| chimerapp | tt |" in z.read("RESULTS.md").decode()
    best = torch.load(system / "best.pt", weights_only=True)  # "retrained": other weights, another epoch
    best["model"] = {k: v + 0.01 for k, v in best["model"].items()}
    best["epoch"] = 3
    torch.save(best, system / "best.pt")
    proc = sh("bash", os.path.join(ROOT, "utils/pack_model.sh"), system, tmp_path / "stale.zip", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "stale.zip") as z:
        assert "RESULTS.md" not in z.namelist()
    assert (
        f"left out the RESULTS.md row 'chimerapp | tt': {system}/score_tt was separated by another model than "
        f"{system}/best.pt"
    ) in proc.stderr


# -- item 13: a read-only RESULTS.md, a pack's meta.yaml, the published results -----------------------------------
@pytest.mark.fault
def test_a_read_only_results_md_is_kept(tmp_path):
    """show_results.py --out onto a read-only RESULTS.md: exit 1 naming it; its content and mode stay."""
    score = tmp_path / "exp" / "sys" / "score_tt"
    score.mkdir(parents=True)
    values = "".join(f"{m} 1.0\n" for m in ("SDR", "SIR", "SAR", "SDRi", "SI-SNR", "SI-SNRi", "PESQ", "STOI"))
    counts = "".join(f"floored_{m} 0\n" for m in ("SDR", "SIR", "SAR", "SDRi", "SI-SNR", "SI-SNRi", "PESQ", "STOI"))
    (score / "result.txt").write_text(values + "num_utts 3\n" + counts)
    out = tmp_path / "RESULTS.md"
    out.write_text("published\n")
    out.chmod(0o444)
    proc = sh(PYTHON, os.path.join(ROOT, "utils/show_results.py"), "--exp", tmp_path / "exp", "--out", out)
    assert proc.returncode == 1, proc.stderr
    assert f"show_results.py: {out} is read-only (mode 0444): it was left as it is" in proc.stderr
    assert out.read_text() == "published\n" and (out.stat().st_mode & 0o777) == 0o444


@pytest.mark.fault
@pytest.mark.parametrize("key, value", [("sample_rate", 16000), ("num_spk", 3), ("epoch", 9)])
def test_a_pack_whose_meta_disagrees_with_its_weights_is_refused(tmp_path, trained, key, value):
    """A pack's meta.yaml edited (a lying sample rate, speakers, epoch): show and separate_wav exit 1 naming the key."""
    exp, tt = trained
    good = pack_model(exp, tmp_path / "good.zip", tmp_path)
    with zipfile.ZipFile(good) as z:
        true = yaml.safe_load(z.read("meta.yaml"))[key]
    bad = rewrite_pack(good, tmp_path / "bad.zip", meta={key: value})
    message = f"meta.yaml says {key} {value}, its best.pt {true}"
    wav = next(iter(datafiles.read_table(os.path.join(tt, "wav.scp")).values()))
    for command in (["show", str(bad)], ["--model", str(bad), wav, str(tmp_path / "out")]):
        module = "nnet.bin.pack_model" if command[0] == "show" else "nnet.bin.separate_wav"
        proc = sh(PYTHON, "-m", module, *command)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"{bad}: {message}: the pack was edited or damaged" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.fault
def test_a_run_writes_its_results_where_the_published_ones_are_not():
    """Stage 5 writes egs/<recipe>/RESULTS.md: not tracked, ignored; the published table is RESULTS.published.md."""
    tracked = subprocess.run(
        ["git", "ls-files", "egs/*/RESULTS.md", "egs/*/RESULTS.published.md"], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert tracked == ["egs/mini_2mix/RESULTS.published.md"]
    ignored = subprocess.run(["git", "check-ignore", "-q", "egs/mini_2mix/RESULTS.md"], cwd=ROOT)
    assert ignored.returncode == 0
    with open(os.path.join(ROOT, "docs", "results_mini_2mix.md")) as f:
        assert "egs/mini_2mix/RESULTS.published.md" in f.read()


# -- what a separation's jobs resolved joins its record ------------------------------------------------------
@pytest.mark.parametrize(
    "how, note, want",
    [
        ("--nj 1", "mi head, griffin-lim phase\n", "--nj 1 (mi head, griffin-lim phase)"),
        ("", "dc head, mixture phase\n", "(dc head, mixture phase)"),
        ("--nj 2", None, "--nj 2"),  # oracle masks: the jobs resolve nothing
        ("--nj 2", "", "--nj 2"),
    ],
)
def test_record_separated_takes_the_jobs_resolved_note_and_removes_it(tmp_path, how, note, want):
    data = synth.make_data_dir(str(tmp_path / "tt"), num_utts=1, seed=3)
    out = tmp_path / "separated"
    out.mkdir()
    if note is not None:
        (out / "resolved.txt").write_text(note)
    proc = sh(PYTHON, "-m", "nnet.provenance", "record-separated", "--how", how, data, out)
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load((out / "provenance.yaml").read_text())["how"] == want
    assert sorted(os.listdir(out)) == ["provenance.yaml"]
