"""LibriMix: metadata by LibriMix's rules, mixtures from metadata CSVs (ours or the official ones),
Kaldi data dirs from the mixture lists, and egs/librimix/run.sh stages 0-5, on tiny LibriSpeech- and
WHAM!-layout trees made here (<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac; two-channel noise)."""

import contextlib
import csv
import importlib.util
import io
import os
import random
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from nnet import datafiles, dsp, librimix
from synth import voice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    """A local/ script as a module: the tests call its main() in this process (no interpreter start)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "local", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CREATE = load("create_librimix")
PREP = load("librimix_data_prep")
RATE = librimix.RATE
# speakers of each tiny subset (LibriSpeech keeps the speakers of its subsets apart)
SPEAKERS = {
    "train-clean-100": ("103", "1034", "1040", "1069"),
    "dev-clean": ("1272", "1462"),
    "test-clean": ("121", "237"),
}


def librispeech_tree(root, seed=0, utts=2):
    """<root>/LibriSpeech/<subset>/<spk>/<chapter>/<spk>-<chapter>-<nnnn>.flac, 3.2-4.5 s each at
    levels 20 dB apart, and one 2 s utterance per subset (too short for LibriMix)."""
    rng = np.random.default_rng(seed)
    top = os.path.join(root, "LibriSpeech")
    for subset, speakers in SPEAKERS.items():
        for s, spk in enumerate(speakers):
            chapter = str(100 + s)
            folder = os.path.join(top, subset, spk, chapter)
            os.makedirs(folder)
            for u in range(utts + (s == 0)):
                seconds = 2.0 if u == utts else rng.uniform(3.2, 4.5)
                x = voice(rng, seconds, RATE, rng.uniform(100, 250)) * 10 ** rng.uniform(-1, 0)
                soundfile.write(os.path.join(folder, f"{spk}-{chapter}-{u:04d}.flac"), x, RATE, subtype="PCM_16")
    return top


def wham_tree(root, seed=1, per_subset=6):
    """<root>/wham_noise/{tr,cv,tt}/<name>.wav, two channels (the second is not used), 4.6-6 s (longer than
    every utterance) but for two 3 s ones in cv and tt, which no mixture may take."""
    rng = np.random.default_rng(seed)
    top = os.path.join(root, "wham_noise")
    for subset in ("tr", "cv", "tt"):
        os.makedirs(os.path.join(top, subset))
        for n in range(per_subset):
            length = int((3.0 if n < 2 and subset != "tr" else rng.uniform(4.6, 6.0)) * RATE)  # 3 s: too short
            noise = np.stack([rng.normal(0, 0.05, length), rng.normal(0, 0.3, length)], axis=1)
            soundfile.write(os.path.join(top, subset, f"01{subset}0{n}_0.5_20{n}c0{n}_-0.5.wav"), noise, RATE)
    return top


def run(script, argv, ok=True):
    """script.main(argv) -> (returncode, stdout, stderr) as a process would give them."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        returncode = script.main(argv)
    result = subprocess.CompletedProcess(argv, returncode, out.getvalue(), err.getvalue())
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("librimix_sources")
    return librispeech_tree(str(root)), wham_tree(str(root))


def test_gains_reach_the_drawn_loudness_and_the_peak_guard():
    rng = np.random.default_rng(3)
    sources = [voice(rng, 3.5, RATE, 120) * 0.05, voice(rng, 4.0, RATE, 220) * 0.5]
    noise = rng.normal(0, 0.01, 5 * RATE)
    gains, noise_gain = librimix.draw_gains(sources, noise, random.Random(7))
    replay = random.Random(7)
    targets = [replay.uniform(-33, -25), replay.uniform(-33, -25), replay.uniform(-38, -30)]
    length = 4 * RATE
    for x, gain, target in zip(sources + [noise], gains + [noise_gain], targets):
        assert abs(librimix.loudness(gain * librimix.fit(x, length)) - target) < 0.5
    # two trains of clicks at the same instants (a crest factor of 30 dB): each at its drawn loudness
    # peaks below 1, their sum above 0.9: every gain is scaled alike so that the sum peaks at 0.9
    clicks = np.zeros(length)
    clicks[::800] = 1.0
    gains, noise_gain = librimix.draw_gains([clicks, clicks], noise, random.Random(7))
    unguarded = [
        10 ** ((t - librimix.loudness(x)) / 20) for t, x in zip(targets, [clicks, clicks, librimix.fit(noise, length)])
    ]
    assert max(unguarded[:2]) < 1 and sum(unguarded[:2]) > 0.9
    peak = np.max(np.abs((gains[0] + gains[1]) * clicks + noise_gain * librimix.fit(noise, length)))
    assert peak == pytest.approx(0.9, abs=1e-9)
    np.testing.assert_allclose(
        np.array(gains + [noise_gain]) / unguarded,
        0.9 / np.max(np.abs((unguarded[0] + unguarded[1]) * clicks + unguarded[2] * librimix.fit(noise, length))),
    )
    with pytest.raises(ValueError, match="silent"):
        librimix.draw_gains([sources[0], np.zeros(RATE * 4)], None, random.Random(1))


def test_a_short_noise_is_repeated_with_cross_fades():
    noise = np.random.default_rng(0).normal(size=RATE * 2)
    out = librimix.extend_noise(noise, 5 * RATE)
    cut = len(noise) - librimix.CROSSFADE
    assert len(out) == 5 * RATE
    np.testing.assert_array_equal(out[:cut], noise[:cut])
    # after the first cross-fade the noise starts over at its CROSSFADE-th sample
    np.testing.assert_array_equal(
        out[len(noise) : len(noise) + 1000], noise[librimix.CROSSFADE : librimix.CROSSFADE + 1000]
    )
    fade = out[cut : len(noise)]
    window = np.hanning(2 * librimix.CROSSFADE - 1)
    np.testing.assert_allclose(
        fade,
        noise[cut:] * window[librimix.CROSSFADE - 1 :] + noise[: librimix.CROSSFADE] * window[: librimix.CROSSFADE],
    )


def test_metadata_follows_librimix_rules(trees, tmp_path):
    librispeech, wham = trees
    md = tmp_path / "metadata"
    run(CREATE, ["metadata", "--librispeech", librispeech, "--wham", wham, "--num-spk", "2", "--metadata", str(md)])
    for subset, noise_subset in (("train-clean-100", "tr"), ("dev-clean", "cv"), ("test-clean", "tt")):
        rows = read_csv(md / f"libri2mix_{subset}.csv")
        assert list(rows[0]) == [
            "mixture_ID",
            "source_1_path",
            "source_1_gain",
            "source_2_path",
            "source_2_gain",
            "noise_path",
            "noise_gain",
        ]
        used = [r[f"source_{i}_path"] for r in rows for i in (1, 2)]
        if subset.startswith("train"):
            assert len(rows) == 4 and sorted(used) == sorted(set(used)) and len(used) == 8  # each once
        else:
            assert len(rows) == 4  # the 4 distinct pairs of 2 x 2 utterances of 2 speakers
            assert len({frozenset((r["source_1_path"], r["source_2_path"])) for r in rows}) == 4
        assert not any(p.endswith("-0002.flac") for p in used)  # the 2 s utterance
        noises = [r["noise_path"] for r in rows]
        assert len(set(noises)) == len(noises) and all(n.startswith(noise_subset + "/") for n in noises)
        for r in rows:
            ids = [os.path.basename(r[f"source_{i}_path"])[: -len(".flac")] for i in (1, 2)]
            assert r["mixture_ID"] == "_".join(ids) and ids[0].split("-")[0] != ids[1].split("-")[0]
            assert r["source_1_path"].startswith(subset + "/")
            sources = [soundfile.read(os.path.join(librispeech, r[f"source_{i}_path"]))[0] for i in (1, 2)]
            length = max(len(s) for s in sources)
            noise = soundfile.read(os.path.join(wham, r["noise_path"]))[0][:, 0]
            assert len(noise) >= length  # a noise as long as the longest source
            for x, gain, (low, high) in (
                (sources[0], r["source_1_gain"], librimix.SPEECH_LUFS),
                (sources[1], r["source_2_gain"], librimix.SPEECH_LUFS),
                (noise, r["noise_gain"], librimix.NOISE_LUFS),
            ):
                assert low - 0.5 <= librimix.loudness(float(gain) * librimix.fit(x, length)) <= high + 0.5
    # a second run keeps what is there
    before = (md / "libri2mix_dev-clean.csv").read_text()
    result = run(
        CREATE, ["metadata", "--librispeech", librispeech, "--wham", wham, "--num-spk", "2", "--metadata", str(md)]
    )
    assert "exists: kept" in result.stdout and (md / "libri2mix_dev-clean.csv").read_text() == before


def official_csv(md, librispeech, wham):
    """A metadata CSV as LibriMix publishes them, with gains chosen here."""
    rows = [
        ["mixture_ID", "source_1_path", "source_1_gain", "source_2_path", "source_2_gain", "noise_path", "noise_gain"],
        [
            "1272-100-0000_1462-101-0001",
            "dev-clean/1272/100/1272-100-0000.flac",
            "0.5",
            "dev-clean/1462/101/1462-101-0001.flac",
            "1.5",
            "cv/01cv00_0.5_200c00_-0.5.wav",
            "0.25",
        ],
    ]
    os.makedirs(md, exist_ok=True)
    with open(os.path.join(md, "libri2mix_dev-clean.csv"), "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return rows[1]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_mixtures_use_the_csv_gains(trees, tmp_path, mode):
    librispeech, wham = trees
    row = official_csv(tmp_path / "md", librispeech, wham)
    out = tmp_path / "Libri2Mix"
    common = ["--num-spk", "2", "--metadata", str(tmp_path / "md"), "--subsets", "dev-clean", "--modes", mode]
    run(CREATE, ["mixtures", "--librispeech", librispeech, "--wham", wham, "--out", str(out)] + common)
    run(CREATE, ["index", "--out", str(out)] + common)
    folder = out / "wav8k" / mode / "dev"
    name = row[0] + ".wav"
    got = {
        k: datafiles.read_wav(folder / k / name, dtype="float64")[0]
        for k in ("s1", "s2", "noise", "mix_clean", "mix_both")
    }
    s1 = soundfile.read(os.path.join(librispeech, row[1]))[0]
    s2 = soundfile.read(os.path.join(librispeech, row[3]))[0]
    noise = soundfile.read(os.path.join(wham, row[5]))[0][:, 0]
    want = [dsp.resample(g * x, RATE, 8000) for g, x in ((0.5, s1), (1.5, s2))]
    want.append(
        dsp.resample(0.25 * librimix.extend_noise(noise[: max(len(s1), len(s2))], max(len(s1), len(s2))), RATE, 8000)
    )
    length = (min if mode == "min" else max)(len(w) for w in want)
    want = [librimix.fit(w, length) for w in want]
    lsb = 1 / 32768
    for kind, w in zip(("s1", "s2", "noise"), want):
        assert len(got[kind]) == length
        np.testing.assert_allclose(got[kind], w, atol=lsb)
    np.testing.assert_allclose(got["mix_clean"], want[0] + want[1], atol=lsb)
    np.testing.assert_allclose(got["mix_both"], want[0] + want[1] + want[2], atol=lsb)
    index = read_csv(out / "wav8k" / mode / "metadata" / "mixture_dev_mix_both.csv")
    assert index == [
        {
            "mixture_ID": row[0],
            "mixture_path": str(folder / "mix_both" / name),
            "source_1_path": str(folder / "s1" / name),
            "source_2_path": str(folder / "s2" / name),
            "noise_path": str(folder / "noise" / name),
            "length": str(length),
        }
    ]
    assert list(read_csv(out / "wav8k" / mode / "metadata" / "mixture_dev_mix_clean.csv")[0]) == [
        "mixture_ID",
        "mixture_path",
        "source_1_path",
        "source_2_path",
        "length",
    ]


@pytest.mark.fault
def test_creation_refuses_what_it_cannot_do(trees, tmp_path):
    librispeech, wham = trees
    official_csv(tmp_path / "md", librispeech, wham)
    common = [
        "--num-spk",
        "2",
        "--metadata",
        str(tmp_path / "md"),
        "--subsets",
        "dev-clean",
        "--out",
        str(tmp_path / "o"),
    ]
    result = run(CREATE, ["mixtures", "--librispeech", librispeech] + common, ok=False)
    assert result.returncode == 1 and "mix_both needs the noise: give --wham" in result.stderr
    result = run(CREATE, ["metadata", "--librispeech", librispeech, "--dev-test-mixtures", "0"] + common, ok=False)
    assert result.returncode == 1 and "--dev-test-mixtures 0 --train-mixtures 0: need 1 or more" in result.stderr
    result = run(CREATE, ["index"] + common, ok=False)
    assert result.returncode == 1 and "the mixtures step has not finished" in result.stderr
    result = run(CREATE, ["mixtures", "--librispeech", str(tmp_path)] + common, ok=False)
    assert result.returncode == 1 and f"--librispeech {tmp_path}: no dev-clean/" in result.stderr
    (tmp_path / "md" / "libri2mix_dev-clean.csv").write_text(
        "mixture_ID,source_1_path,source_1_gain,source_2_path,source_2_gain\n"
        "a_b,dev-clean/1272/100/nothere.flac,1,dev-clean/1462/101/1462-101-0001.flac,1\n"
    )
    result = run(CREATE, ["mixtures", "--librispeech", librispeech, "--types", "mix_clean"] + common, ok=False)
    assert result.returncode == 1
    assert "libri2mix_dev-clean.csv:2:" in result.stderr and "nothere.flac" in result.stderr


def test_data_dirs_from_the_mixture_lists(trees, tmp_path):
    librispeech, wham = trees
    row = official_csv(tmp_path / "md", librispeech, wham)
    out = tmp_path / "Libri2Mix"
    common = ["--num-spk", "2", "--metadata", str(tmp_path / "md"), "--subsets", "dev-clean", "--out", str(out)]
    run(CREATE, ["mixtures", "--librispeech", librispeech, "--wham", wham] + common)
    run(CREATE, ["index"] + common)
    moved = tmp_path / "moved"
    shutil.move(str(out), str(moved))  # the lists' absolute paths are stale now: the tree is used
    wav_dir = moved / "wav8k" / "min"
    run(PREP, ["--sets", "dev:cv", str(wav_dir), str(tmp_path / "data")])
    data = tmp_path / "data" / "cv"
    utt = "1272_1462_" + row[0]
    assert datafiles.read_table(data / "utt2spk") == {utt: "1272_1462"}
    assert datafiles.read_table(data / "wav.scp") == {utt: str(wav_dir / "dev" / "mix_both" / (row[0] + ".wav"))}
    assert datafiles.read_table(data / "spk2.scp") == {utt: str(wav_dir / "dev" / "s2" / (row[0] + ".wav"))}
    assert datafiles.read_table(data / "noise1.scp") == {utt: str(wav_dir / "dev" / "noise" / (row[0] + ".wav"))}
    length = datafiles.wav_info(wav_dir / "dev" / "mix_both" / (row[0] + ".wav")).num_samples
    assert datafiles.read_table(data / "utt2num_samples") == {utt: str(length)}
    run(PREP, ["--sets", "dev:cv", "--mix-type", "mix_clean", str(wav_dir), str(tmp_path / "data")])
    assert datafiles.read_table(data / "wav.scp") == {utt: str(wav_dir / "dev" / "mix_clean" / (row[0] + ".wav"))}
    assert not (data / "noise1.scp").exists()


@pytest.mark.fault
def test_data_prep_names_a_bad_line(tmp_path):
    md = tmp_path / "wav8k" / "min" / "metadata"
    md.mkdir(parents=True)
    (md / "mixture_dev_mix_clean.csv").write_text(
        "mixture_ID,mixture_path,length\n1272-1-2_3-4-5,x,100\nodd name,y,100\n"
    )
    result = run(
        PREP,
        ["--sets", "dev:cv", "--mix-type", "mix_clean", str(tmp_path / "wav8k" / "min"), str(tmp_path / "d")],
        ok=False,
    )
    assert result.returncode == 1
    assert "mixture_dev_mix_clean.csv:3: mixture_ID 'odd name' is not 2 LibriSpeech utterance ids" in result.stderr
    assert not (tmp_path / "d" / "cv").exists()


def test_librimix_recipe_runs_stages_0_to_5(trees, tmp_path):
    """egs/librimix/run.sh as a user runs it, on the tiny trees: metadata drawn by the rules with the
    set sizes of run.sh (--train-mixtures, --dev-test-mixtures), noisy mixtures (mix_both), data dirs
    with noise1.scp, a small chimera++ (and its MISI, with the noise as a source of its own) and the
    oracle IRM, scored against the clean sources (the mixture's own SDR is that of speech + noise)."""
    from test_recipe_e2e import tiny_configs

    librispeech, wham = trees
    work = tmp_path / "librimix"
    work.mkdir()
    recipe = os.path.join(ROOT, "egs", "librimix")
    shutil.copy(os.path.join(recipe, "run.sh"), work)
    shutil.copy(os.path.join(recipe, "cmd.sh"), work)
    shutil.copytree(os.path.join(recipe, "conf"), work / "conf")
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(os.path.join(ROOT, name), work / name)
    tiny_configs(os.path.join(recipe, "conf", "tuning"), str(work / "tiny"))
    args = ["--librispeech", os.path.dirname(librispeech), "--wham", wham, "--nj", "1", "--ngpu", "0"]
    args += ["--tuning", "tiny", "--systems", "oracle_irm chimerapp", "--rti-systems", "", "--phase-systems", ""]
    sizes = ["--train-mixtures", "3", "--dev-test-mixtures", "3"]  # of 4 possible in each set
    result = subprocess.run(
        ["./run.sh", *args, *sizes, "--phase-systems", "chimerapp", "--test-sets", "tt"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    print("\n".join(line for line in result.stdout.splitlines() if "finished in" in line))
    wav_dir = work / "Libri2Mix" / "wav8k" / "min"
    for subset, name, count in (("train-100", "tr", 3), ("dev", "cv", 3), ("test", "tt", 3)):
        assert len(read_csv(wav_dir / "metadata" / f"mixture_{subset}_mix_both.csv")) == count
        tables = {
            t: datafiles.read_table(work / "data" / name / t) for t in ("wav.scp", "spk1.scp", "spk2.scp", "noise1.scp")
        }
        assert all(len(t) == count for t in tables.values())
        assert all(p.startswith(str(wav_dir.resolve() / subset / "mix_both")) for p in tables["wav.scp"].values())
    results = (work / "RESULTS.md").read_text()
    assert (
        "| chimerapp | tt |" in results and "| oracle_irm | tt |" in results and "| chimerapp +misi | tt |" in results
    )
    assert "num_utts 3" in (work / "exp" / "chimerapp" / "score_tt" / "result.txt").read_text()
    # data/tt has noise1.scp: MISI reconstructs the noise as a source of its own; Griffin-Lim is as it was
    separated = {
        v: (work / "exp" / "chimerapp" / f"separate_tt_{v}" / "log" / "separate.1.log").read_text()
        for v in ("misi", "gl")
    }
    assert "--noise-source true" in separated["misi"] and "misi phase (+ a noise source)" in separated["misi"]
    assert "griffin-lim phase ->" in separated["gl"]
    mixture = dict(
        line.split() for line in (work / "exp" / "mixture" / "score_tt" / "result.txt").read_text().splitlines()
    )
    assert mixture["num_utts"] == "3" and float(mixture["SDRi"]) == 0.0
    # a second run finds the corpus complete and keeps it
    again = subprocess.run(["./run.sh", *args, "--stop-stage", "0"], cwd=work, capture_output=True, text=True)
    assert again.returncode == 0 and "is complete" in again.stdout, again.stdout + again.stderr


@pytest.mark.fault
def test_a_rerun_removes_what_a_killed_run_left(trees, tmp_path):
    """A killed mixtures job leaves datafiles.atomic_write's temporaries and some of a mixture's files: the
    rerun removes the temporaries and writes the missing files."""
    librispeech, wham = trees
    row = official_csv(tmp_path / "md", librispeech, wham)
    out = tmp_path / "Libri2Mix"
    common = ["--num-spk", "2", "--metadata", str(tmp_path / "md"), "--subsets", "dev-clean", "--out", str(out)]
    folder = out / "wav8k" / "min" / "dev"
    (folder / "s1").mkdir(parents=True)
    stale = folder / "s1" / f".tmp.k1ll3d.{row[0]}.wav"
    stale.write_bytes(b"RIFF")
    other = folder / "s1" / ".tmp.k1ll3d.someone-else.wav"  # not this job's: kept
    other.write_bytes(b"RIFF")
    run(CREATE, ["mixtures", "--librispeech", librispeech, "--wham", wham] + common)
    assert not stale.exists() and other.exists()
    assert all((folder / k / f"{row[0]}.wav").is_file() for k in ("s1", "s2", "noise", "mix_clean", "mix_both"))
