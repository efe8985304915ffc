"""Issue 9, the data side: an incomplete corpus (case 4), non-finite audio or features (case 6), truncated,
empty and odd-rate wavs (case 7), a failed feature job's temporaries (case 8) and their neighbours."""

import importlib.util
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from nnet import datafiles
from synth import make_data_dir

ROOT = Path(__file__).resolve().parent.parent
MAKE_FEATS = ROOT / "steps" / "make_feats.sh"
DATA_PREP = ROOT / "local" / "data_prep.sh"
STFT_CONF = ROOT / "egs" / "mini_2mix" / "conf" / "stft.conf"


def sh(*args, **kwargs):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, **kwargs)


def make_feats(data, featdir):
    return sh("bash", MAKE_FEATS, "--nj", "1", "--stft-conf", STFT_CONF, data, featdir / "log", featdir)


def feats_log(featdir):
    return "".join(p.read_text() for p in sorted((featdir / "log").glob("*.log")))


def wav_scp(data):
    return datafiles.read_table(os.path.join(data, "wav.scp"))


def truncate(path, num_samples):
    """Cut a 16-bit mono wav written by datafiles.write_wav after num_samples, keeping its header."""
    header = 44
    with open(path, "r+b") as f:
        f.truncate(header + 2 * num_samples)


def leftovers(featdir):
    return sorted(p.name for p in featdir.iterdir() if p.is_file())


# ---------------------------------------------------------------- case 7: truncated, empty, odd-rate wavs


@pytest.mark.fault
def test_read_wav_refuses_a_truncated_file(tmp_path):
    """A wav whose header promises more samples than it holds: read_wav names the file and both counts."""
    path = tmp_path / "cut.wav"
    datafiles.write_wav(path, 0.1 * np.ones(1000), 8000)
    truncate(path, 300)
    with pytest.raises(
        datafiles.AudioError,
        match=rf"^{path}: truncated: its header promises 1000 samples, "
        r"the file holds 300",
    ):
        datafiles.read_wav(path)


@pytest.mark.fault
def test_read_wav_refuses_an_empty_file_and_non_finite_samples(tmp_path):
    """0 samples, NaN/inf samples or a missing file: read_wav raises AudioError naming the file."""
    empty = tmp_path / "empty.wav"
    datafiles.write_wav(empty, np.zeros(0), 8000)
    with pytest.raises(datafiles.AudioError, match=rf"^{empty}: holds no samples"):
        datafiles.read_wav(empty)
    bad = tmp_path / "nan.wav"
    soundfile.write(bad, np.array([0.1, np.nan, 0.2, np.inf]), 8000, subtype="FLOAT")
    with pytest.raises(
        datafiles.AudioError, match=rf"^{bad}: 2 non-finite samples \(NaN or inf\), the first at sample 1"
    ):
        datafiles.read_wav(bad)
    with pytest.raises(datafiles.AudioError, match=rf"^{tmp_path / 'gone.wav'}: no such file"):
        datafiles.read_wav(tmp_path / "gone.wav")


@pytest.mark.fault
def test_make_feats_refuses_a_truncated_wav(tmp_path):
    """A truncated mixture: stage 2 exits 1 naming the utterance and the file; no feats.scp is left."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=3)
    utt, path = sorted(wav_scp(data).items())[1]
    truncate(path, 500)
    run = make_feats(data, tmp_path / "feats")
    assert run.returncode == 1
    assert f"utterance '{utt}'" in run.stderr + feats_log(tmp_path / "feats")
    assert f"{path}: truncated: its header promises" in run.stderr + feats_log(tmp_path / "feats")
    assert not os.path.exists(os.path.join(data, "feats.scp"))
    assert not [n for n in leftovers(tmp_path / "feats") if n.endswith((".ark", ".scp", ".tmp"))]


@pytest.mark.fault
def test_make_feats_refuses_an_empty_wav(tmp_path):
    """A mixture with 0 samples: a message naming the utterance and the file, not a reshape traceback."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    utt, path = sorted(wav_scp(data).items())[0]
    datafiles.write_wav(path, np.zeros(0), 8000)
    run = make_feats(data, tmp_path / "feats")
    out = run.stderr + feats_log(tmp_path / "feats")
    assert run.returncode == 1
    assert f"{path}: holds no samples" in out and f"utterance '{utt}'" in out
    assert "Traceback" not in out
    assert not os.path.exists(os.path.join(data, "feats.scp"))


@pytest.mark.fault
def test_make_feats_names_the_odd_sample_rate_not_the_first_utterance(tmp_path):
    """One 16 kHz mixture among 8 kHz ones, sorted first: the 16 kHz file is named, not another one."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=3)
    wavs = sorted(wav_scp(data).items())
    odd_utt, odd_path = wavs[0]
    samples, _ = datafiles.read_wav(odd_path)
    datafiles.write_wav(odd_path, samples, 16000)
    run = make_feats(data, tmp_path / "feats")
    out = run.stderr + feats_log(tmp_path / "feats")
    assert run.returncode == 1
    assert f"{odd_path}: 16000 Hz" in out and f"utterance '{odd_utt}'" in out
    assert "8000 Hz" in out
    for _, other in wavs[1:]:
        assert other not in out
    assert not os.path.exists(os.path.join(data, "feats.scp"))


# ---------------------------------------------------------------- case 6: non-finite audio / features


@pytest.mark.fault
def test_make_feats_refuses_nan_audio(tmp_path):
    """A float wav with NaN samples: stage 2 exits 1 naming the utterance and the wav, no feats.scp or ark left."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=3)
    utt, path = sorted(wav_scp(data).items())[2]
    samples, _ = datafiles.read_wav(path)
    samples[100:110] = np.nan
    soundfile.write(path, samples, 8000, subtype="FLOAT")
    run = make_feats(data, tmp_path / "feats")
    out = run.stderr + feats_log(tmp_path / "feats")
    assert run.returncode == 1
    assert f"utterance '{utt}'" in out and f"{path}: 10 non-finite samples" in out
    assert not os.path.exists(os.path.join(data, "feats.scp"))
    assert not [n for n in leftovers(tmp_path / "feats") if n.endswith((".ark", ".scp", ".tmp"))]


@pytest.mark.fault
def test_make_feats_py_refuses_non_finite_features(tmp_path):
    """Finite but huge float samples give inf features: make_feats.py exits 1 naming utterance and wav."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    utt, path = sorted(wav_scp(data).items())[1]
    samples, _ = datafiles.read_wav(path)
    soundfile.write(path, samples * 1e38, 8000, subtype="FLOAT")
    ark, scp, cmvn = (tmp_path / f"raw.{x}" for x in ("ark", "scp", "cmvn"))
    run = sh(
        sys.executable,
        ROOT / "nnet/bin/make_feats.py",
        "--stft-conf",
        STFT_CONF,
        os.path.join(data, "wav.scp"),
        ark,
        scp,
        cmvn,
    )
    assert run.returncode == 1
    assert f"utterance '{utt}' ({path}): non-finite features" in run.stderr
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- case 8: a write failure mid-archive


@pytest.mark.fault
def test_make_feats_py_write_failure_cleans_temporaries_and_names_the_file(tmp_path):
    """The ark cannot be written (file size limit, as a full disk): exit 1 naming the ark and the cause,
    no raw_*.ark.tmp / .scp.tmp left behind."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=4)
    out = tmp_path / "feats"
    out.mkdir()
    ark, scp, cmvn = (out / f"raw_tr.1.{x}" for x in ("ark", "scp", "cmvn"))

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))

    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "nnet/bin/make_feats.py"),
            "--stft-conf",
            str(STFT_CONF),
            os.path.join(data, "wav.scp"),
            str(ark),
            str(scp),
            str(cmvn),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert run.returncode == 1
    assert f"cannot write {ark}.tmp" in run.stderr and "File too large" in run.stderr
    assert "Traceback" not in run.stderr
    assert leftovers(out) == []


@pytest.mark.fault
def test_failed_make_feats_rerun_leaves_no_stale_feats_scp(tmp_path):
    """A re-run of stage 2 that fails does not leave the previous run's feats.scp/cmvn (stale offsets)."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=3)
    assert make_feats(data, tmp_path / "feats").returncode == 0
    assert os.path.isfile(os.path.join(data, "feats.scp"))
    utt, path = sorted(wav_scp(data).items())[0]
    truncate(path, 100)
    run = make_feats(data, tmp_path / "feats")
    assert run.returncode == 1
    assert not os.path.exists(os.path.join(data, "feats.scp")) and not os.path.exists(os.path.join(data, "cmvn"))
    assert not list((tmp_path / "feats").glob("raw_*"))


# ---------------------------------------------------------------- neighbours: missing wav, truncated ark, lengths


@pytest.mark.fault
def test_make_feats_names_a_missing_wav(tmp_path):
    """wav.scp naming a missing file: stage 2 exits 1 naming the utterance and the path."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    utt, path = sorted(wav_scp(data).items())[1]
    os.unlink(path)
    run = make_feats(data, tmp_path / "feats")
    out = run.stderr + feats_log(tmp_path / "feats")
    assert run.returncode == 1
    assert f"{path}" in out and f"utterance '{utt}'" in out and "does not exist" in out
    assert not os.path.exists(os.path.join(data, "feats.scp"))


@pytest.mark.fault
def test_validate_names_the_utterance_of_a_truncated_ark(tmp_path):
    """feats.scp pointing into a truncated ark: validate_data_dir.py exits 1 naming the utterance and the ark."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=3)
    assert make_feats(data, tmp_path / "feats").returncode == 0
    scp = datafiles.read_table(os.path.join(data, "feats.scp"))
    last = sorted(scp)[-1]
    ark = scp[last].rsplit(":", 1)[0]
    os.truncate(ark, os.path.getsize(ark) - 100)
    run = sh(sys.executable, ROOT / "utils/validate_data_dir.py", data)
    assert run.returncode == 1
    assert f"utterance '{last}'" in run.stderr and f"ark file '{ark}' is truncated" in run.stderr
    assert sum("truncated" in line for line in run.stderr.splitlines()) == 1  # the others are whole


@pytest.mark.fault
def test_validate_check_audio_names_bad_files(tmp_path):
    """--check-audio: a truncated reference, an s1 shorter than its mixture, an odd rate: each file named."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=4)
    u = sorted(wav_scp(data))
    spk1 = datafiles.read_table(os.path.join(data, "spk1.scp"))
    spk2 = datafiles.read_table(os.path.join(data, "spk2.scp"))
    mixes = wav_scp(data)
    truncate(spk2[u[0]], 50)
    s1, _ = datafiles.read_wav(spk1[u[1]])
    datafiles.write_wav(spk1[u[1]], s1[:-80], 8000)
    mix, _ = datafiles.read_wav(mixes[u[2]])
    datafiles.write_wav(mixes[u[2]], mix, 16000)
    run = sh(sys.executable, ROOT / "utils/validate_data_dir.py", "--check-audio", data)
    assert run.returncode == 1
    err = run.stderr
    assert f"{spk2[u[0]]}: truncated: its header promises" in err and f"utterance '{u[0]}'" in err
    n = len(s1)
    assert (f"{spk1[u[1]]}: {n - 80} samples, its mixture {mixes[u[1]]} has {n} (utterance '{u[1]}')") in err
    assert f"{mixes[u[2]]}: 16000 Hz, the other audio files are 8000 Hz (utterance '{u[2]}', line 3 of wav.scp)" in err
    assert mixes[u[3]] not in err
    assert sh(sys.executable, ROOT / "utils/validate_data_dir.py", data).returncode == 0  # headers not read


# ---------------------------------------------------------------- case 4 and 7 at stage 1

MIXTURES = {
    "tr": ["40na010x_1.9857_01xo030b_-1.9857", "01xo030b_0.31_22ga010f_-0.31"],
    "cv": ["40na010z_0.5_01xo030c_-0.5"],
    "tt": ["445c0201_1.2_053a0101_-1.2", "053a0101_0.7_445c0202_-0.7", "053a0102_0.1_445c0203_-0.1"],
}


def corpus_with_lists(root):
    """A wav8k/min style tree and the mix lists naming its mixtures (sources need not exist)."""
    rng = np.random.default_rng(0)
    src, lists = root / "wav8k" / "min", root / "mixlists"
    lists.mkdir(parents=True)
    for subset, names in MIXTURES.items():
        lines = []
        for name in names:
            u1, snr1, u2, snr2 = name.split("_")
            lines.append(f"wsj0/si_tr_s/{u1[:3]}/{u1}.wv1 {snr1} wsj0/si_tr_s/{u2[:3]}/{u2}.wv1 {snr2}\n")
            for kind in ("mix", "s1", "s2"):
                datafiles.write_wav(src / subset / kind / f"{name}.wav", 0.1 * rng.standard_normal(600), 8000)
        (lists / f"mix_2_spk_{subset}.txt").write_text("".join(lines))
    return src, lists


@pytest.mark.fault
def test_data_prep_refuses_an_incomplete_corpus(tmp_path):
    """A tt set with 2 of the 3 listed mixtures (stage 0 interrupted): stage 1 exits 1 naming the counts."""
    src, lists = corpus_with_lists(tmp_path)
    for kind in ("mix", "s1", "s2"):
        (src / "tt" / kind / f"{MIXTURES['tt'][1]}.wav").unlink()
    run = sh(DATA_PREP, "--mixlists", lists, src, tmp_path / "data")
    assert run.returncode == 1
    assert (
        f"{src.resolve()}/tt/mix holds 2 mixtures, {lists}/mix_2_spk_tt.txt lists 3: the corpus is incomplete"
    ) in run.stderr and "stage 0" in run.stderr
    assert not (tmp_path / "data" / "tt").exists()
    # without lists stage 1 cannot know the corpus is complete: it says what to pass
    run = sh(DATA_PREP, src, tmp_path / "data2")
    assert run.returncode == 1 and "--mixlists" in run.stderr
    assert not (tmp_path / "data2").exists()


@pytest.mark.fault
def test_data_prep_names_empty_and_mismatched_wavs_in_the_corpus(tmp_path):
    """A 0-sample mixture and an s1 longer than its mixture: stage 1 names the corpus files, not a temporary."""
    src, lists = corpus_with_lists(tmp_path)
    empty = src / "tt" / "mix" / f"{MIXTURES['tt'][0]}.wav"
    datafiles.write_wav(empty, np.zeros(0), 8000)
    long_s1 = src / "tt" / "s1" / f"{MIXTURES['tt'][2]}.wav"
    datafiles.write_wav(long_s1, 0.1 * np.ones(700), 8000)
    run = sh(DATA_PREP, "--mixlists", lists, "--sets", "tt", src, tmp_path / "data")
    assert run.returncode == 1
    assert f"{src.resolve()}/tt/mix/{MIXTURES['tt'][0]}.wav: holds no samples" in run.stderr
    assert (
        f"{src.resolve()}/tt/s1/{MIXTURES['tt'][2]}.wav: 700 samples, its mixture "
        f"{src.resolve()}/tt/mix/{MIXTURES['tt'][2]}.wav has 600"
    ) in run.stderr
    assert ".tt.tmp" not in run.stderr
    assert not (tmp_path / "data" / "tt").exists()
    assert [p.name for p in (tmp_path / "data").iterdir()] == []


def load_create():
    spec = importlib.util.spec_from_file_location("create_wsj0_2mix", ROOT / "local" / "create_wsj0_2mix.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.fault
def test_interrupted_creation_is_refused_then_finished_by_a_rerun(tmp_path):
    """Stage 0 killed part-way (a mixture without mix, a temporary left): stage 1 refuses the corpus, a
    re-run of stage 0 finishes it and removes the temporary, then stage 1 accepts it."""
    create = load_create()
    rng = np.random.default_rng(3)
    root, lists, out = tmp_path / "wsj0root", tmp_path / "lists", tmp_path / "out"
    lines = {
        "tr": [("01aa0101", "1.5", "02ba0102", "-1.5"), ("02ba0103", "0.25", "01aa0101", "-0.25")],
        "cv": [("01aa0104", "0.5", "02ba0105", "-0.5")],
        "tt": [("03ca0106", "2", "04da0107", "-2")],
    }
    lists.mkdir()
    for subset, entries in lines.items():
        text = ""
        for u1, s1, u2, s2 in entries:
            for u in (u1, u2):
                t = np.arange(int(1.2 * 16000)) / 16000
                samples = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 250) * t) * (np.sin(2 * np.pi * 3 * t) > 0)
                datafiles.write_wav(root / "wsj0" / "si_tr_s" / u[:3] / f"{u}.wav", samples, 16000)
            text += f"wsj0/si_tr_s/{u1[:3]}/{u1}.wv1 {s1} wsj0/si_tr_s/{u2[:3]}/{u2}.wv1 {s2}\n"
        (lists / f"mix_2_spk_{subset}.txt").write_text(text)
    argv = ["--wsj0", str(root), "--mixlists", str(lists), "--out", str(out), "--sample-rates", "8k", "--modes", "min"]
    assert create.main(argv) == 0
    # what a kill between writing s1/s2 and mix leaves: no mix, an unfinished temporary of it
    name = "02ba0103_0.25_01aa0101_-0.25"
    mixdir = out / "wav8k" / "min" / "tr" / "mix"
    (mixdir / f"{name}.wav").unlink()
    stale = mixdir / f".tmp.k1ll3d.{name}.wav"
    stale.write_bytes(b"RIFF")
    src = out / "wav8k" / "min"
    run = sh(DATA_PREP, "--mixlists", lists, src, tmp_path / "data")
    assert run.returncode == 1 and "tr/mix holds 1 mixtures" in run.stderr and "lists 2" in run.stderr
    assert create.main(argv) == 0
    assert (mixdir / f"{name}.wav").is_file() and not stale.exists()
    run = sh(DATA_PREP, "--mixlists", lists, src, tmp_path / "data")
    assert run.returncode == 0, run.stderr
    assert len(datafiles.read_table(tmp_path / "data" / "tr" / "wav.scp")) == 2


MINI = [
    "--num-speakers-tr",
    "4",
    "--num-speakers-tt",
    "2",
    "--utts-per-speaker",
    "3",
    "--num-tr",
    "3",
    "--num-cv",
    "2",
    "--num-tt",
    "2",
    "--min-seconds",
    "1",
    "--max-seconds",
    "1.2",
    "--nj",
    "1",
]


@pytest.mark.fault
def test_mini_corpus_with_done_marker_but_missing_files_is_finished_by_a_rerun(tmp_path):
    """The mini corpus's .done is there but a tt mixture is gone: stage 1 refuses it, a stage 0 re-run
    says so and makes the file again (not 'complete already'), then stage 1 accepts it."""
    out = tmp_path / "corpus"
    assert sh(ROOT / "local/make_mini_2mix.sh", *MINI, out).returncode == 0
    lost = sorted((out / "wav8k/min/tt/mix").glob("*.wav"))[0]
    lost.unlink()
    run = sh(DATA_PREP, "--mixlists", out / "mixlists", out / "wav8k/min", tmp_path / "data")
    assert run.returncode == 1 and "tt/mix holds 1 mixtures" in run.stderr and "lists 2" in run.stderr
    run = sh(ROOT / "local/make_mini_2mix.sh", *MINI, out)
    assert run.returncode == 0, run.stderr
    assert (
        f"{out}/.done is there but {out}/wav8k/min/tt/mix has 1 of 2 wav files: making the missing files" in run.stderr
    )
    assert lost.is_file() and (out / ".done").is_file()
    assert sh(DATA_PREP, "--mixlists", out / "mixlists", out / "wav8k/min", tmp_path / "data").returncode == 0
