"""The pretrained packs: what README's one-command separation promises. The real-speech pack
egs/speechocean762/pretrained/speechocean762_dc_classic_mr.zip on new mixtures of recordings of speakers it
never heard (tests/data/speechocean762/); the demo pack egs/mini_2mix/pretrained/mini_chimerapp.zip on
two-voice espeak-ng mixtures made here (none is a mixture of its training set)."""

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from nnet import corpus, datafiles, dsp, metrics, pack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK = os.path.join(ROOT, "egs/mini_2mix/pretrained/mini_chimerapp.zip")
SPEECH_PACK = os.path.join(ROOT, "egs/speechocean762/pretrained/speechocean762_dc_classic_mr.zip")
RECORDINGS = os.path.join(ROOT, "tests/data/speechocean762")
# New mixtures of those recordings: two female (0024, 0157) and two male (0461, 0765) adult speakers of
# speechocean762's test list, one mixture per pairing of genders and more of the mixed ones.
SPEECH_PAIRS = (
    ("000240031", "004610037"),
    ("001570061", "007650061"),
    ("000240071", "001570030"),
    ("004610065", "007650036"),
    ("001570030", "004610065"),
    ("007650036", "000240071"),
)
# New mixtures: speakers drawn as the mini corpus draws them (local/make_mini_2mix.py's voices,
# variants, pitch and rate ranges, SNRs), saying sentences of our own (the corpus's are random words).
SENTENCES = (
    "the old sailor carried seven heavy boxes across the quiet harbour before dawn",
    "bright lanterns were hanging above every window when the evening train arrived",
    "a young farmer counted the sheep twice because the gate had been left open",
    "nobody expected the small orchestra to play so loudly in the empty hall",
)
NUM_MIXTURES = 8


def mini_corpus_rules():
    spec = importlib.util.spec_from_file_location("make_mini_2mix", os.path.join(ROOT, "local/make_mini_2mix.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def espeak(tmp_path, voice, pitch, wpm, text):
    """8 kHz samples of one espeak-ng sentence."""
    path = tmp_path / f"{voice}.wav"
    run = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(wpm), "-w", str(path), text],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    samples, rate = datafiles.read_wav(path, dtype="float64")
    return dsp.resample(samples, rate, 8000)


def test_the_pack_says_what_it_is():
    meta = pack.read(PACK)[1]
    assert meta["format"] == 1 and meta["system"] == "chimerapp"  # MI head, no matched inference: format 1 says it
    assert (meta["sample_rate"], meta["num_spk"], meta["model_type"], meta["head"]) == (8000, 2, "chimera", "mi")
    assert "espeak-ng" in meta["training_corpus"] and "demo" in meta["training_corpus"]
    for key in ("license", "commit", "torch", "python", "created", "phase"):
        assert meta[key], key


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="setup.sh installs espeak-ng")
def test_separate_wav_with_the_pack_separates_new_espeak_mixtures(tmp_path):
    """README's command, `separate_wav.py --model <pack> mix.wav out/`, on 8 two-voice mixtures made
    here: mean SDRi >= 3 dB (the pack's tt mean is in RESULTS.md; single pairs vary from about -3 to 13)."""
    rules = mini_corpus_rules()
    rng = np.random.default_rng(0)
    sdris = []
    for i in range(NUM_MIXTURES):
        genders = list(rng.permutation(["m", "f"])) if rng.random() < 0.5 else [rng.choice(["m", "f"])] * 2
        talkers = [
            (
                f"{rng.choice(rules.VOICES)}+{rng.choice(rules.VARIANTS[g])}",
                int(rng.integers(*rules.PITCH_RANGE)),
                int(rng.integers(*rules.RATE_RANGE)),
            )
            for g in genders
        ]
        sources = [espeak(tmp_path, *t, SENTENCES[(2 * i + k) % len(SENTENCES)]) for k, t in enumerate(talkers)]
        snr = rng.uniform(0, 2.5)  # wsj0-2mix: +x and -x dB, x uniform in [0, 2.5]
        s1, s2 = (src * corpus.source_gain(src, x) for src, x in zip(sources, (snr, -snr)))
        mix, (s1, s2) = corpus.mix_sources([s1, s2], "min")
        datafiles.write_wav(tmp_path / f"talk{i}.wav", mix, 8000)
        mix = datafiles.read_wav(tmp_path / f"talk{i}.wav", dtype="float64")[0]  # as the program reads it: 16-bit
        run = subprocess.run(
            [
                sys.executable,
                os.path.join(ROOT, "nnet/bin/separate_wav.py"),
                "--model",
                PACK,
                str(tmp_path / f"talk{i}.wav"),
                str(tmp_path / "out"),
            ],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        outs = [tmp_path / "out" / f"talk{i}_s{c}.wav" for c in (1, 2)]
        assert run.stdout.split() == [str(p) for p in outs]
        estimates = np.stack([datafiles.read_wav(p, dtype="float64")[0] for p in outs])
        references = np.stack([s1, s2])
        sdr = metrics.bss_eval_sources(references, estimates)[0]
        sdr_mix = metrics.bss_eval_sources(references, np.stack([mix, mix]))[0]
        sdris.append(float(np.mean(sdr - sdr_mix)))
        print(f"{talkers}: SDRi {sdris[-1]:.2f} dB")
    print(f"mean SDRi {np.mean(sdris):.2f} dB over {NUM_MIXTURES} mixtures")
    assert np.mean(sdris) >= 3.0


def separate_with(pack, wav, out):
    """README's command: python -m nnet.bin.separate_wav --model <pack> <wav> <out>/ -> the estimates."""
    run = subprocess.run(
        [sys.executable, "-m", "nnet.bin.separate_wav", "--model", pack, str(wav), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    paths = run.stdout.split()
    assert len(paths) == 2
    return np.stack([datafiles.read_wav(p, dtype="float64")[0] for p in paths])


def test_the_speech_pack_says_what_it_is():
    """DC classic W_MR trained to convergence, separating with k-means refined by 100 steps of matched
    run-time inference: the count chosen on cv (0, 25, 50, 100, 200 steps: docs/results_speechocean762.md),
    with which its tt figure was measured."""
    meta = pack.read(SPEECH_PACK)[1]
    assert (meta["system"], meta["sample_rate"], meta["num_spk"], meta["head"]) == ("dc_classic_mr_long", 8000, 2, "dc")
    assert meta["format"] == 2 and meta["matched_inference"] is True and meta["matched_steps"] == 100
    assert "speechocean762" in meta["training_corpus"]
    assert "commercial" in meta["license"] and "Zhang" in meta["citation"] and "Interspeech 2021" in meta["citation"]


def test_the_speech_pack_separates_new_mixtures_of_unseen_recorded_speakers(tmp_path):
    """README's command on 6 two-speaker mixtures of recordings of 4 speakers of speechocean762's test
    list (never in its training): the corpus's rule (+x / -x dB, x in [0, 2.5], min length, 0.9 peak),
    mean SDRi >= 8 dB. The pack (dc_classic_mr_long + 100 steps of matched run-time inference) gets
    7.56 dB on the recipe's 1200 tt mixtures and 8.6 on these 6 (docs/results_speechocean762.md);
    without its matched inference (k-means alone) 7.6 on these 6, so a pack whose default lost it fails
    here; the chimerapp_long pack it replaced got 8.2, the espeak-ng demo pack 2.4."""
    rng = np.random.default_rng(22)
    sdris = []
    for i, pair in enumerate(SPEECH_PAIRS):
        sources = [datafiles.read_wav(os.path.join(RECORDINGS, f"{u}.flac"), dtype="float64")[0] for u in pair]
        x = rng.uniform(0, 2.5)
        scaled = [src * corpus.source_gain(src, snr) for src, snr in zip(sources, (x, -x))]
        mix, references = corpus.mix_sources(scaled, "min")
        datafiles.write_wav(tmp_path / f"pair{i}.wav", mix, 8000)
        mix = datafiles.read_wav(tmp_path / f"pair{i}.wav", dtype="float64")[0]  # 16-bit, as the program reads it
        estimates = separate_with(SPEECH_PACK, tmp_path / f"pair{i}.wav", tmp_path / "out")
        sdr = metrics.bss_eval_sources(np.stack(references), estimates)[0]
        sdr_mix = metrics.bss_eval_sources(np.stack(references), np.stack([mix, mix]))[0]
        sdris.append(float(np.mean(sdr - sdr_mix)))
        print(f"{pair}: SDRi {sdris[-1]:.2f} dB")
    print(f"mean SDRi {np.mean(sdris):.2f} dB over {len(SPEECH_PAIRS)} mixtures")
    assert np.mean(sdris) >= 8.0
