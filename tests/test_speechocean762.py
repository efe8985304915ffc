"""egs/speechocean762 at a tiny size: stage 0 on a tree laid out as OpenSLR's speechocean762 (16 kHz
.WAV under WAVE/SPEAKERnnnn/, Kaldi lists train/ and test/), the optional download from a local
archive, and stages 1-5 with tiny configs (dynamic mixing on, as the recipe's)."""

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile

from nnet import datafiles
from synth import voice
from test_recipe_e2e import tiny_configs

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "egs" / "speechocean762"
TRAIN = ("0001", "0005", "0006", "0008")
TEST = ("0003", "0096", "0114")


def write_tree(root):
    """root/speechocean762: WAVE/SPEAKERnnnn/<spk>0<nnnn>.WAV at 16 kHz, train/ and test/ lists."""
    rng = np.random.default_rng(0)
    tree = root / "speechocean762"
    for subset, speakers, per in (("train", TRAIN, 3), ("test", TEST, 2)):
        lines, utt2spk = {}, {}
        for k, spk in enumerate(speakers):
            for n in range(per):
                utt = f"0{spk}{n:04d}"
                rel = f"WAVE/SPEAKER{spk}/{utt}.WAV"
                path = tree / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                samples = voice(rng, rng.uniform(1.0, 1.6), 16000, 100 + 30 * k + (15 if subset == "test" else 0))
                soundfile.write(path, samples, 16000, format="WAV", subtype="PCM_16")
                lines[utt], utt2spk[utt] = rel, spk
        datafiles.write_table(tree / subset / "wav.scp", lines)
        datafiles.write_table(tree / subset / "utt2spk", utt2spk)
    return tree


def tiny_recipe(work):
    """The recipe in work (its own run.sh, cmd.sh, conf; this checkout's code linked) with its
    configs at a tiny size in work/tiny."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("run.sh", "cmd.sh", "conf"):
        src = RECIPE / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(ROOT / name, work / name)
    tiny_configs(str(RECIPE / "conf" / "tuning"), str(work / "tiny"))
    return work


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return tiny_recipe(tmp_path_factory.mktemp("so762")), write_tree(tmp_path_factory.mktemp("corpus"))


def run(work, *args, env=None):
    return subprocess.run(
        ["./run.sh", "--nj", "2", *map(str, args)],
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )


def test_stages_0_to_5_on_a_tiny_speechocean762_tree(recipe):
    work, tree = recipe
    sizes = ("--num-tr", 8, "--num-cv", 4, "--num-tt", 4)
    result = run(
        work,
        "--speechocean762",
        tree,
        *sizes,
        "--tuning",
        "tiny",
        "--systems",
        "oracle_irm chimerapp dc_w_mr",
        "--rti-systems",
        "dc_w_mr",
        "--test-sets",
        "tt",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # stage 0: the lists and the mixtures of unseen speakers in tt
    assert len(list((work / "corpus/wav8k/min/tt/mix").glob("*.wav"))) == 4
    tt_speakers = {s for pair in datafiles.read_table(work / "data/tt/utt2spk").values() for s in pair.split("_")}
    tr_speakers = {s for pair in datafiles.read_table(work / "data/tr/utt2spk").values() for s in pair.split("_")}
    assert tt_speakers <= set(TEST) and tr_speakers <= set(TRAIN)
    # stage 1: the training speakers' recordings for dynamic mixing, a fifth of each in cv
    sources = datafiles.read_table(work / "data/tr/sources/utt2spk")
    assert sorted(set(sources.values())) == sorted(TRAIN) and len(sources) == 8
    # stage 3 trained with dynamic mixing; stage 5's table has every row asked for
    assert "dynamic_mixing: true" in (work / "exp/chimerapp/config.yaml").read_text()
    rows = {tuple(c.strip() for c in line.split("|")[1:3]) for line in (work / "RESULTS.md").read_text().splitlines()}
    for system in ("mixture", "oracle_irm", "chimerapp", "chimerapp +gl", "chimerapp +misi", "dc_w_mr", "dc_w_mr +rti"):
        assert (system, "tt") in rows, system


def test_download_from_a_local_archive_and_offline(recipe, tmp_path):
    work, tree = recipe
    archives = tmp_path / "archives"
    archives.mkdir()
    with tarfile.open(archives / "speechocean762.tar.gz", "w:gz") as tar:
        tar.add(tree, arcname="speechocean762")
    where = tmp_path / "dl"
    where.mkdir()
    for name in ("run.sh", "cmd.sh", "conf", "path.sh", "steps", "utils", "local"):
        os.symlink(work / name, where / name)
    result = run(
        where,
        "--download",
        "true",
        "--archives",
        archives,
        "--stop-stage",
        0,
        "--num-tr",
        4,
        "--num-cv",
        2,
        "--num-tt",
        2,
    )
    assert result.returncode == 0, result.stderr
    assert (where / "downloads/speechocean762/train/wav.scp").is_file()
    assert len(list((where / "corpus/wav8k/min/tr/mix").glob("*.wav"))) == 4
    offline = tmp_path / "offline"
    offline.mkdir()
    for name in ("run.sh", "cmd.sh", "conf", "path.sh", "steps", "utils", "local"):
        os.symlink(work / name, offline / name)
    result = run(
        offline,
        "--download",
        "true",
        "--stop-stage",
        0,
        env={"COCKTAIL_SPEECHOCEAN762_URL": "http://127.0.0.1:9/so.tar.gz"},
    )
    assert result.returncode == 1
    assert "could not download http://127.0.0.1:9/so.tar.gz" in result.stderr and "--archives" in result.stderr
    assert not (offline / "corpus").exists()


@pytest.mark.fault
def test_stage_0_names_what_is_missing(recipe, tmp_path):
    work, _ = recipe
    result = run(work, "--stop-stage", 0)
    assert result.returncode == 1 and "stage 0 needs --speechocean762 <dir>" in result.stderr
    result = run(work, "--stop-stage", 0, "--speechocean762", tmp_path)
    assert result.returncode == 1 and f"{tmp_path}/train/wav.scp not found" in result.stderr
