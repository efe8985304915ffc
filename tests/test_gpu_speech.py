"""bench/gpu_speech_bundle.py and bench/gpu_speech.sh, the prepared GPU run of issue 22, on the CPU at
a tiny size: the bundle keeps every speaker within its byte budget, and the device script makes the
mixtures, trains, scores and reports from the bundle alone, so that a lent GPU's minutes are not spent
finding its bugs."""

import importlib.util
import os
import subprocess
import zipfile
from pathlib import Path

import yaml

from nnet import datafiles
from test_speechocean762 import TEST, TRAIN, tiny_recipe, write_tree
from test_train import PYTHON

ROOT = Path(__file__).resolve().parent.parent


def probe_wheel(folder):
    """A one-module wheel: installed by gpu_speech.sh into --site as the bundle's real wheels are."""
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / "cocktail_probe-1.0-py3-none-any.whl", "w") as whl:
        whl.writestr("cocktail_probe/__init__.py", "OK = 1\n")
        whl.writestr(
            "cocktail_probe-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: cocktail-probe\nVersion: 1.0\n"
        )
        whl.writestr(
            "cocktail_probe-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        whl.writestr("cocktail_probe-1.0.dist-info/RECORD", "")


def bundle(tmp_path, *options):
    wheels = tmp_path / "wheels"
    probe_wheel(wheels)
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
    # the probe is not one of the wheels the GPU image lacks: the bundle says which are missing
    assert "warning:" in proc.stderr and "soundfile==0.14.0" in proc.stderr


def gpu_speech(tmp_path, work, out, config, *options):
    defaults = ["--device", "cpu", "--config", config, "--recipe", work, "--site", tmp_path / "site"]
    defaults += ["--sizes", "8 4 4", "--test-mixtures", "2", "--final-test-mixtures", "4", "--nj", "2"]
    options = [*defaults, *options]  # the later of two wins
    run = subprocess.run(
        ["bash", ROOT / "bench/gpu_speech.sh", *options, tmp_path / "bundle", out],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    return run, (out / "report.md").read_text()


def rows(path):
    return [line.split("\t") for line in path.read_text().splitlines()[1:]]


def test_the_device_script_runs_from_the_bundle_alone_on_the_cpu(tmp_path):
    proc, tree = bundle(tmp_path)
    assert proc.returncode == 0, proc.stderr
    work = tiny_recipe(tmp_path / "recipe")
    three = yaml.safe_load((work / "tiny" / "chimerapp_4x600_long.yaml").read_text())
    three["training"]["epochs"] = 3
    (work / "tiny" / "three_epochs.yaml").write_text(yaml.safe_dump(three))
    out = tmp_path / "out"
    # a training budget of 0.000001 h (3.6 ms), spent by the first of its 3 epochs (0.2 s here; 0.0001 h,
    # 0.36 s, was not always spent: the epoch's time depends on the machine)
    run, report = gpu_speech(tmp_path, work, out, work / "tiny" / "three_epochs.yaml", "--hours", "0.000001")
    assert run.returncode == 0, report + run.stderr[-3000:]
    for name in ("stages_0_2: ok", "learning_curve: ok", "bench_training: ok"):
        assert f"- {name}" in report, report
    # the bundle's wheels went into --site, first on the steps' PYTHONPATH
    assert (tmp_path / "site" / "cocktail_probe" / "__init__.py").is_file()
    assert f"- PYTHONPATH: {tmp_path / 'site'}:" in report
    assert [row[0] for row in rows(out / "learning_curve.tsv")] == ["1"]
    assert rows(out / "learning_curve.tsv")[0][-1] == "2"  # --test-mixtures
    best = rows(out / "learning_curve_best.txt")
    assert best[0][0] == "1" and best[0][-1] == "4"  # best.pt on --final-test-mixtures
    assert "data loading" in (out / "bench_training.txt").read_text()
    assert "epoch of" in report and "\t".join(best[0]) in report  # the headline figures
    # what the device tool brings back: at most 8 files (gpu_check.md joins these in the same call)
    assert sorted(os.listdir(out)) == sorted(
        ["report.md", "steps.log", "learning_curve.tsv", "learning_curve_best.txt", "history.tsv", "bench_training.txt"]
    )
    # the mixtures came from the bundle's speakers
    tt_speakers = {s for pair in datafiles.read_table(work / "data/tt/utt2spk").values() for s in pair.split("_")}
    assert tt_speakers <= set(TEST)

    # again on the same machine: the mixtures reused; all 3 epochs, scored at the first, every 2nd and the last
    config = work / "tiny" / "chimerapp_4x600_long.yaml"
    config.write_text(yaml.safe_dump(three))
    run, report = gpu_speech(tmp_path, work, tmp_path / "out2", config, "--score-every", "2", "--hours", "1")
    assert run.returncode == 0, report + run.stderr[-3000:]
    assert "- stages_0_2: reused" in report
    curve = rows(tmp_path / "out2" / "learning_curve.tsv")
    assert [row[0] for row in curve] == ["1", "2", "3"]
    best_epoch = min(curve, key=lambda row: float(row[2]))[0]
    assert rows(tmp_path / "out2" / "learning_curve_best.txt")[0][0] == best_epoch

    # no time left: the steps are skipped, and the run fails
    run, report = gpu_speech(tmp_path, work, tmp_path / "out3", config, "--minutes", "0")
    assert run.returncode == 1 and "- learning_curve: skipped, the budget is spent" in report
    # data/ made from other sizes is not taken for this run's, nor written over
    run, report = gpu_speech(tmp_path, work, tmp_path / "out4", config, "--sizes", "6 4 4")
    assert run.returncode == 1 and "holds data/ or corpus/ not made by" in report


def test_the_learning_curve_stops_in_time_for_its_final_scoring():
    """learning_curve.py --wall-minutes: after an epoch it stops when this epoch's scoring, one more
    epoch with its scoring and the final scoring would not end within the limit."""
    spec = importlib.util.spec_from_file_location("learning_curve", ROOT / "bench" / "learning_curve.py")
    curve = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(curve)
    # 100 s gone, 50 s epochs, 0.1 s a mixture: 30 s per scoring of 300, 120 s for the final 1200:
    # 100 + 30 + 50 + 30 + 120 = 330 s
    assert not curve.past_wall_clock(100, 50, 0.1, 300, 1200, limit=340)
    assert curve.past_wall_clock(100, 50, 0.1, 300, 1200, limit=320)
    # nothing scored yet: a scoring of 300 taken as long as the epoch, 50 s; the final one 200 s: 450 s
    assert not curve.past_wall_clock(100, 50, None, 300, 1200, limit=451)
    assert curve.past_wall_clock(100, 50, None, 300, 1200, limit=449)
    # no final scoring: 100 + 30 + 50 + 30 = 210 s
    assert not curve.past_wall_clock(100, 50, 0.1, 300, 0, limit=211)
    assert curve.past_wall_clock(100, 50, 0.1, 300, 0, limit=209)
