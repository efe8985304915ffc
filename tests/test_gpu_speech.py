"""bench/gpu_speech_bundle.py and bench/gpu_speech.sh, the prepared GPU run of issue 22, on the CPU at
a tiny size: the bundle keeps every speaker within its byte budget, and the device script makes the
mixtures, trains, scores and reports from the bundle alone, so that a lent GPU's minutes are not spent
finding its bugs."""

import os
import subprocess
from pathlib import Path

from nnet import datafiles
from test_speechocean762 import TEST, TRAIN, tiny_recipe, write_tree
from test_train import PYTHON

ROOT = Path(__file__).resolve().parent.parent


def bundle(tmp_path, *options):
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)
    out = tmp_path / "bundle"
    proc = subprocess.run(
        [PYTHON, ROOT / "bench/gpu_speech_bundle.py", "--corpus", write_tree(tmp_path), "--out", out]
        + ["--wheels", wheels, *options],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc, out / "speechocean762"


def sizes(tree, subset):
    scp = datafiles.read_table(tree / subset / "wav.scp")
    files = [next((tree / Path(path).parent).glob(Path(path).stem + ".*")) for path in scp.values()]
    return scp, sum(f.stat().st_size for f in files)


def test_the_bundle_keeps_every_speaker_within_its_budget(tmp_path):
    full = write_tree(tmp_path / "full")

    def first(subset, n):  # bytes of each speaker's first n recordings in the list
        scp = datafiles.read_table(full / subset / "wav.scp")
        utt2spk = datafiles.read_table(full / subset / "utt2spk")
        turns = [[u for u in scp if utt2spk[u] == s][:n] for s in sorted(set(utt2spk.values()))]
        return sum((full / scp[u]).stat().st_size for utts in turns for u in utts)

    # room for two recordings of each training speaker and one of each test speaker, a byte over
    budgets = ((first("train", 2) + 1) / 2**20, (first("test", 1) + 1) / 2**20)
    proc, tree = bundle(tmp_path, "--train-mib", str(budgets[0]), "--test-mib", str(budgets[1]))
    assert proc.returncode == 0, proc.stderr
    for subset, speakers, budget in (("train", TRAIN, budgets[0]), ("test", TEST, budgets[1])):
        scp, used = sizes(tree, subset)
        utt2spk = datafiles.read_table(tree / subset / "utt2spk")
        assert sorted(set(utt2spk.values())) == sorted(speakers)  # every speaker kept
        assert set(utt2spk) == set(scp) and used <= budget * 2**20
        counts = [list(utt2spk.values()).count(s) for s in speakers]
        assert max(counts) - min(counts) <= 1, counts  # in turn: no speaker two recordings ahead
        for utt in scp:  # the files are the corpus's own
            rel = scp[utt]
            assert (tree / rel).read_bytes() == (full / rel).read_bytes()
    assert len(datafiles.read_table(tree / "train" / "wav.scp")) == 2 * len(TRAIN)
    assert len(datafiles.read_table(tree / "test" / "wav.scp")) == len(TEST)
    assert "train: 8 of 12 recordings, 4 of 4 speakers" in (tmp_path / "bundle" / "MANIFEST.txt").read_text()
    again, _ = bundle(tmp_path)
    assert again.returncode != 0 and "bundle exists: give a new folder" in again.stderr


def test_the_device_script_runs_from_the_bundle_alone_on_the_cpu(tmp_path):
    proc, tree = bundle(tmp_path)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "recipe"
    work.mkdir()
    tiny_recipe(work)
    out = tmp_path / "out"
    options = ["--device", "cpu", "--config", work / "tiny" / "chimerapp_4x600_long.yaml", "--recipe", work]
    options += ["--sizes", "8 4 4", "--test-mixtures", "2", "--final-test-mixtures", "4", "--nj", "2"]
    options += ["--hours", "0.0001", "--minutes", "8"]
    run = subprocess.run(
        ["bash", ROOT / "bench/gpu_speech.sh", *options, tmp_path / "bundle", out],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    report = (out / "report.md").read_text()
    assert run.returncode == 0, report + run.stderr[-3000:]
    for name in ("stages_0_2: ok", "learning_curve: ok", "bench_training: ok"):
        assert f"- {name}" in report, report
    # one epoch (the budget of 0.0001 h is spent by it), scored: it is the last
    curve = (out / "learning_curve.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:4] == ["epoch", "train_hours", "valid_loss", "sdri"] and len(curve) == 2
    assert curve[1].split("\t")[0] == "1" and curve[1].split("\t")[-1] == "2"
    best = (out / "learning_curve_best.txt").read_text().splitlines()
    assert best[1].split("\t")[0] == "1" and best[1].split("\t")[-1] == "4"  # best.pt on --final-test-mixtures
    assert "data loading" in (out / "bench_training.txt").read_text()
    assert "epoch of" in report and "best.pt" not in report and best[1] in report  # the headline figures
    # what the device tool brings back: at most 8 files (gpu_check.md joins these in the same call)
    assert sorted(os.listdir(out)) == sorted(
        ["report.md", "steps.log", "learning_curve.tsv", "learning_curve_best.txt", "history.tsv", "bench_training.txt"]
    )
    # the mixtures came from the bundle's speakers
    tt_speakers = {s for pair in datafiles.read_table(work / "data/tt/utt2spk").values() for s in pair.split("_")}
    assert tt_speakers <= set(TEST)
    again = subprocess.run(
        ["bash", ROOT / "bench/gpu_speech.sh", *options, tmp_path / "bundle", tmp_path / "out2"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert "- stages_0_2: reused" in (tmp_path / "out2" / "report.md").read_text(), again.stderr[-2000:]
