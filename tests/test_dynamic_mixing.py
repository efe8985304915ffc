"""Dynamic mixing (training.dynamic_mixing, nnet/training_data.py DynamicMixingSet): new mixtures each
epoch from the training speakers' recordings, by the corpus's rules, with on-the-fly features."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import torch
import yaml

from nnet import corpus, datadir, datafiles, dsp, features, training_data
from synth import make_featured_data_dir, voice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STFT = dsp.StftConfig()  # 8 kHz, 32 ms sqrt-Hann, 8 ms hop
SPEAKERS = ("s01", "s02", "s03", "s04")


def write_sources(folder, rate=8000, per_speaker=3, seed=0):
    """A Kaldi dir of single-speaker recordings: 4 speakers x 3, one pitch each."""
    rng = np.random.default_rng(seed)
    wavs, utt2spk = {}, {}
    for k, spk in enumerate(SPEAKERS):
        for n in range(per_speaker):
            utt = f"{spk}u{n}"
            path = os.path.join(folder, "wav", utt + ".flac")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            soundfile.write(path, voice(rng, rng.uniform(0.6, 1.5), rate, 110 + 40 * k) * rng.uniform(0.1, 1), rate)
            wavs[utt], utt2spk[utt] = path, spk
    datafiles.write_table(os.path.join(folder, "wav.scp"), wavs)
    datafiles.write_table(os.path.join(folder, "utt2spk"), utt2spk)
    datadir.write_spk2utt(os.path.join(folder, "spk2utt"), utt2spk)
    return folder


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return write_sources(str(tmp_path_factory.mktemp("dm") / "sources"))


def test_each_epoch_draws_other_mixtures_the_same_for_the_same_epoch(sources):
    dm = training_data.DynamicMixingSet(sources, STFT, 40, 2, num_items=30, seed=5)
    assert len(dm) == 30 and len(dm.segments) == 30
    first = list(dm.mixtures)
    dm.set_epoch(2)
    assert dm.mixtures != first[: len(dm.mixtures)]
    dm.set_epoch(1)
    assert dm.mixtures == first  # a resumed epoch sees the same mixtures
    other = training_data.DynamicMixingSet(sources, STFT, 40, 2, num_items=30, seed=6)
    assert other.mixtures != first
    for utts, snrs in first:
        assert utts[0][:3] != utts[1][:3]  # two different speakers
        assert snrs[1] == -snrs[0] and 0 <= snrs[0] <= 2.5  # +x / -x, x in [0, 2.5]


def test_items_are_mixed_as_the_corpus_is(sources):
    """Sum, 0.9 peak, the levels 2x dB apart (max mode: whole sources), and features that are the
    log-magnitude STFT frames of the whole mixture (as make_feats computes them)."""
    dm = training_data.DynamicMixingSet(sources, STFT, 40, 2, num_items=25, seed=1, mode="max")
    for index, (utts, snrs) in enumerate(dm.mixtures[:6]):
        mix, (s1, s2) = dm.mixture(index)
        assert np.allclose(mix, s1 + s2, atol=1e-6)
        assert max(np.abs(x).max() for x in (mix, s1, s2)) == pytest.approx(0.9, abs=1e-6)
        ratio_db = 10 * np.log10(corpus.activlev(s1, 8000)[0] / corpus.activlev(s2, 8000)[0])
        assert ratio_db == pytest.approx(snrs[0] - snrs[1], abs=0.05)
        originals = [datafiles.read_wav(os.path.join(sources, "wav", u + ".flac"), "float64")[0] for u in utts]
        assert len(mix) == max(len(x) for x in originals)
    for i in range(len(dm)):
        name, start, length, index = dm.segments[i]
        feats, waves = dm[i]
        mix, sources_ = dm.mixture(index)
        full = features.log_magnitude_features(mix.astype(np.float32), STFT)
        assert feats.shape == (length, STFT.num_bins) and waves.shape[0] == 3
        assert torch.allclose(feats, torch.from_numpy(full[start : start + length]), atol=1e-4)
        assert torch.allclose(waves[0], waves[1] + waves[2], atol=1e-6)


@pytest.mark.fault
def test_a_missing_sources_dir_and_a_low_rate_are_named(tmp_path, sources):
    with pytest.raises(training_data.DataError, match="dynamic mixing .* <train-dir>/sources/"):
        training_data.DynamicMixingSet(str(tmp_path / "nowhere"), STFT, 40, 2, 10, 1)
    low = write_sources(str(tmp_path / "low"), rate=8000)
    with pytest.raises(training_data.DataError, match="8000 Hz, below the training mixtures' 16000 Hz"):
        training_data.DynamicMixingSet(low, dsp.StftConfig(sample_rate=16000), 40, 2, 10, 1)


def test_training_with_dynamic_mixing_has_the_static_step_count(tmp_path, sources):
    """train.py with dynamic_mixing: as many training frames per epoch as the static set's segments
    hold (the same number of steps), and new mixtures each epoch: the training losses differ from a
    static run's from the first epoch on."""
    data = {}
    for name, count, seed in (("tr", 6, 0), ("cv", 2, 1)):
        data[name] = make_featured_data_dir(tmp_path / name, num_utts=count, seed=seed, seconds=(0.8, 1.2))
    shutil.copytree(sources, os.path.join(data["tr"], "sources"))
    runs = {}
    for dm in (False, True):
        config = {
            "model": {
                "type": "mi",
                "num_bins": 129,
                "num_spk": 2,
                "layers": 1,
                "units": 8,
                "mask_activation": "sigmoid",
            },
            "loss": {"type": "mi", "mi_target": "tpsa", "mi_norm": "l1"},
            "training": {"segment_frames": 50, "batch_size": 2, "epochs": 2, "num_workers": 0, "dynamic_mixing": dm},
        }
        path = tmp_path / f"dm_{dm}.yaml"
        path.write_text(yaml.safe_dump(config))
        exp = tmp_path / f"exp_{dm}"
        run = subprocess.run(
            [sys.executable, "-m", "nnet.bin.train", str(path), data["tr"], data["cv"], str(exp)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert run.returncode == 0, run.stderr
        rows = [line.split("\t") for line in (exp / "history.tsv").read_text().splitlines()[1:]]
        segments = re.search(r"(\d+) training segments", run.stdout + run.stderr)
        runs[dm] = (int(segments.group(1)), [float(row[1]) for row in rows])
    static_segments = len(training_data.SeparationSet(data["tr"], STFT, 50))
    assert runs[False][0] == runs[True][0] == static_segments
    assert len(runs[False][1]) == len(runs[True][1]) == 2
    assert runs[True][1][0] != runs[False][1][0]  # other mixtures from the first epoch on
