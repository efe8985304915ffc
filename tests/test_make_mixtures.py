"""local/make_mixtures.sh (make_mixtures.py + create_from_mixlists.sh): a wsj0-2mix-style corpus from
single-speaker recordings, on tiny speaker-labelled trees made here (a folder per speaker, and a
Kaldi wav.scp + utt2spk laid out as speechocean762: lists naming .WAV files, an 8 kHz .flac copy)."""

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

from nnet import corpus, datafiles
from synth import voice

ROOT = Path(__file__).resolve().parent.parent
MAKE = ROOT / "local" / "make_mixtures.sh"
TRAIN_SPEAKERS = ("alice", "bob", "carol", "dave")
TEST_SPEAKERS = ("erin", "frank", "grace")
LINE_RE = re.compile(r"(\S+) ([0-9.]+) (\S+) (-[0-9.]+)$")


def write_speaker_tree(root, speakers, per_speaker, rate=16000, seed=0, ext=".wav"):
    """<root>/<speaker>/<speaker>-NN<ext>: harmonic 'voices', one pitch per speaker."""
    rng = np.random.default_rng(seed)
    for k, speaker in enumerate(speakers):
        f0 = 100 + 37 * k
        for n in range(per_speaker):
            samples = voice(rng, rng.uniform(0.8, 1.4), rate, f0) * rng.uniform(0.2, 1.0)
            path = root / speaker / f"{speaker}-{n:02d}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, samples, rate, subtype="PCM_16")
    return root


def make(out, *options, cwd=None):
    return subprocess.run(
        ["bash", str(MAKE), "--nj", "2", *map(str, options), str(out)], capture_output=True, text=True, cwd=cwd
    )


def read_list(path):
    lines = [LINE_RE.match(line) for line in Path(path).read_text().splitlines()]
    assert all(lines), Path(path).read_text()
    return [m.groups() for m in lines]


def speaker_of(path):
    return Path(path).stem.split("-")[0]


@pytest.fixture(scope="module")
def folder_corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixtures")
    write_speaker_tree(tmp / "train", TRAIN_SPEAKERS, 5)
    write_speaker_tree(tmp / "test", TEST_SPEAKERS, 3, seed=1)
    out = tmp / "corpus"
    opts = ("--train", tmp / "train", "--test", tmp / "test", "--source-root", tmp, "--mode", "max")
    run = make(out, *opts, "--num-tr", 12, "--num-cv", 5, "--num-tt", 6, "--seed", 3)
    assert run.returncode == 0, run.stderr
    return tmp, out, opts


def test_lists_follow_wsj0_2mix_rules(folder_corpus):
    tmp, out, _ = folder_corpus
    sets = {s: read_list(out / "mixlists" / f"mix_2_spk_{s}.txt") for s in ("tr", "cv", "tt")}
    assert {s: len(lines) for s, lines in sets.items()} == {"tr": 12, "cv": 5, "tt": 6}
    used = {}
    for subset, lines in sets.items():
        used[subset] = set()
        for p1, x, p2, minus_x in lines:
            assert minus_x == "-" + x and 0 <= float(x) <= 2.5  # +x / -x, x in [0, 2.5]
            assert speaker_of(p1) != speaker_of(p2)  # distinct speakers in a mixture
            assert not os.path.isabs(p1) and (tmp / p1).is_file()  # under --source-root, relative
            used[subset] |= {p1, p2}
    spk = {s: {speaker_of(p) for p in paths} for s, paths in used.items()}
    assert spk["tt"] <= set(TEST_SPEAKERS) and spk["tr"] | spk["cv"] <= set(TRAIN_SPEAKERS)
    assert not used["tr"] & used["cv"]  # cv: other recordings of the training speakers
    # every training speaker has recordings in both pools (sources/tr, sources/cv), a fifth in cv
    pools = {s: datafiles.read_table(out / "sources" / s / "utt2spk") for s in ("tr", "cv", "tt")}
    for speaker in TRAIN_SPEAKERS:
        assert sum(v == speaker for v in pools["tr"].values()) == 4
        assert sum(v == speaker for v in pools["cv"].values()) == 1
    assert set(pools["tt"].values()) == set(TEST_SPEAKERS) and len(pools["tt"]) == 9


def test_mixtures_are_named_summed_and_levelled_by_the_rule(folder_corpus):
    tmp, out, _ = folder_corpus
    speakers = datafiles.read_table(out / "speakers.txt")
    for subset in ("tr", "tt"):
        for p1, x, p2, minus_x in read_list(out / "mixlists" / f"mix_2_spk_{subset}.txt"):
            name = f"{Path(p1).stem}_{x}_{Path(p2).stem}_{minus_x}"
            assert speakers[name] == f"{speaker_of(p1)}_{speaker_of(p2)}"
            wav = {
                k: datafiles.read_wav(out / "wav8k/max" / subset / k / f"{name}.wav", "float64")
                for k in ("mix", "s1", "s2")
            }
            assert {rate for _, rate in wav.values()} == {8000}
            mix, s1, s2 = (wav[k][0] for k in ("mix", "s1", "s2"))
            assert np.abs(mix - s1 - s2).max() <= 2 / 32768  # the sum, up to 16-bit rounding
            assert np.isclose(max(np.abs(v).max() for v in (mix, s1, s2)), 0.9, atol=1 / 32768)
            # the sources' active levels stand 2x dB apart (max mode: whole sources, zero-padded)
            ratio_db = 10 * np.log10(corpus.activlev(s1, 8000)[0] / corpus.activlev(s2, 8000)[0])
            assert ratio_db == pytest.approx(2 * float(x), abs=0.05)


def test_same_seed_same_corpus_and_other_options_refused(folder_corpus):
    tmp, out, opts = folder_corpus
    again = make(out, *opts, "--num-tr", 12, "--num-cv", 5, "--num-tt", 6, "--seed", 3)
    assert again.returncode == 0 and "complete already" in again.stdout
    other = make(tmp / "other", *opts, "--num-tr", 12, "--num-cv", 5, "--num-tt", 6, "--seed", 4)
    assert other.returncode == 0, other.stderr
    assert (out / "mixlists/mix_2_spk_tr.txt").read_text() != (tmp / "other/mixlists/mix_2_spk_tr.txt").read_text()
    refused = make(out, *opts, "--num-tr", 12, "--num-cv", 5, "--num-tt", 6, "--seed", 4)
    assert refused.returncode == 1 and "made with other options" in refused.stderr


def test_a_kaldi_source_laid_out_as_speechocean762(tmp_path):
    """wav.scp names WAVE/SPEAKERnnnn/<utt>.WAV relative to the corpus root; the copy holds .flac at
    8 kHz: found, and --sample-rate 16k refused naming the rate."""
    so = tmp_path / "so"
    write_speaker_tree(so / "WAVE", ("SPEAKER0001", "SPEAKER0002", "SPEAKER0003"), 3, rate=8000, ext=".flac")
    write_speaker_tree(so / "WAVE", ("SPEAKER0004", "SPEAKER0005"), 2, rate=8000, seed=2, ext=".flac")
    for subset, speakers in (("train", ("0001", "0002", "0003")), ("test", ("0004", "0005"))):
        wavs, utt2spk = {}, {}
        for spk in speakers:
            for flac in sorted((so / "WAVE" / f"SPEAKER{spk}").iterdir()):
                utt = flac.stem.replace("SPEAKER", "").replace("-", "")
                flac.rename(flac.with_name(utt + ".flac"))
                wavs[utt], utt2spk[utt] = f"WAVE/SPEAKER{spk}/{utt}.WAV", spk
        datafiles.write_table(so / subset / "wav.scp", wavs)
        datafiles.write_table(so / subset / "utt2spk", utt2spk)
    opts = ("--train", so / "train", "--test", so / "test", "--source-root", so, "--num-tr", 4, "--num-cv", 2)
    run = make(tmp_path / "c", *opts, "--num-tt", 2)
    assert run.returncode == 0, run.stderr
    first = read_list(tmp_path / "c/mixlists/mix_2_spk_tr.txt")[0][0]
    assert re.fullmatch(r"WAVE/SPEAKER000[123]/000[123]0[0-2]\.WAV", first)  # the list keeps the listed name
    assert len(list((tmp_path / "c/wav8k/min/tt/mix").glob("*.wav"))) == 2
    found = datafiles.read_table(tmp_path / "c/sources/tr/wav.scp")  # the files read: the .flac copies
    assert len(found) == 6 and all(re.search(r"/WAVE/SPEAKER000[123]/\d+\.flac$", p) for p in found.values())
    run = make(tmp_path / "c16", *opts, "--num-tt", 2, "--sample-rate", "16k")
    assert run.returncode == 1 and "8000 Hz, below --min-rate 16000" in run.stderr


@pytest.mark.fault
def test_bad_collections_are_refused_with_the_reason(tmp_path):
    write_speaker_tree(tmp_path / "train", TRAIN_SPEAKERS, 3)
    write_speaker_tree(tmp_path / "test", ("alice", "zoe"), 2, seed=5)
    run = make(tmp_path / "a", "--train", tmp_path / "train", "--test", tmp_path / "test")
    assert run.returncode == 1 and "alice are in both --train" in run.stderr
    # the same file name under two speakers would name two mixtures alike
    write_speaker_tree(tmp_path / "dup", ("x", "y"), 2)
    (tmp_path / "dup/y/y-00.wav").rename(tmp_path / "dup/y/x-00.wav")
    write_speaker_tree(tmp_path / "t2", ("u", "v"), 2, seed=6)
    run = make(tmp_path / "b", "--train", tmp_path / "dup", "--test", tmp_path / "t2")
    assert run.returncode == 1 and "share the file name 'x-00'" in run.stderr
    # without --test, tt needs held-out speakers
    run = make(tmp_path / "c", "--train", tmp_path / "train")
    assert run.returncode == 1 and "--num-tt-speakers 2 or more" in run.stderr
    # a training speaker with one recording cannot be in tr and cv
    write_speaker_tree(tmp_path / "one", ("p", "q", "r"), 1)
    run = make(tmp_path / "d", "--train", tmp_path / "one", "--test", tmp_path / "test")
    assert run.returncode == 1 and "training speaker 'p' has 1 recording" in run.stderr
    # an unreadable recording is named
    (tmp_path / "train/bob/bob-01.wav").write_bytes(b"not audio")
    run = make(tmp_path / "e", "--train", tmp_path / "train", "--num-tt-speakers", 2)
    assert run.returncode == 1 and "bob-01.wav: not a readable audio file" in run.stderr


def test_held_out_speakers_form_tt(tmp_path):
    write_speaker_tree(tmp_path / "all", TRAIN_SPEAKERS + TEST_SPEAKERS, 3)
    run = make(
        tmp_path / "c", "--train", tmp_path / "all", "--num-tt-speakers", 3, "--num-tr", 6, "--num-cv", 3, "--num-tt", 3
    )
    assert run.returncode == 0, run.stderr
    tt = set(datafiles.read_table(tmp_path / "c/sources/tt/utt2spk").values())
    tr = set(datafiles.read_table(tmp_path / "c/sources/tr/utt2spk").values())
    assert len(tt) == 3 and len(tr) == 4 and not tt & tr
