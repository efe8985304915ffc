"""Small synthetic two-speaker data dirs for the tests: harmonic 'voices' with syllable-like
envelopes, written as real wav files and Kaldi tables."""

import os
import subprocess

import numpy as np

from nnet import datadir, datafiles


def voice(rng, seconds, rate, f0):
    t = np.arange(int(seconds * rate)) / rate
    wobble = 1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t)
    phase = 2 * np.pi * np.cumsum(f0 * wobble) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 8) if k * f0 * 1.1 < rate / 2)
    syllables = np.clip(np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t + rng.uniform(0, 6)), 0, None)
    return 0.3 * harmonics * syllables


def make_data_dir(root, num_utts=3, rate=8000, seconds=(1.0, 1.6), seed=0):
    """Write <root>/wav/{mix,s1,s2}/*.wav and the data dir <root>/data; returns the data dir."""
    rng = np.random.default_rng(seed)
    data = os.path.join(root, "data")
    tables = {name: {} for name in ("wav.scp", "spk1.scp", "spk2.scp", "utt2spk", "utt2num_samples")}
    for i in range(num_utts):
        length = rng.uniform(*seconds)
        s1 = voice(rng, length, rate, rng.uniform(100, 140))
        s2 = voice(rng, length, rate, rng.uniform(190, 260))
        mix = s1 + s2
        utt = f"a{i:02d}_b{i:02d}_mix{i:03d}"
        for name, samples in (("mix", mix), ("s1", s1), ("s2", s2)):
            datafiles.write_wav(os.path.join(root, "wav", name, utt + ".wav"), samples, rate)
        tables["wav.scp"][utt] = os.path.join(root, "wav", "mix", utt + ".wav")
        tables["spk1.scp"][utt] = os.path.join(root, "wav", "s1", utt + ".wav")
        tables["spk2.scp"][utt] = os.path.join(root, "wav", "s2", utt + ".wav")
        tables["utt2spk"][utt] = f"a{i:02d}_b{i:02d}"
        tables["utt2num_samples"][utt] = str(len(mix))
    for name, table in tables.items():
        datafiles.write_table(os.path.join(data, name), table)
    datadir.write_spk2utt(os.path.join(data, "spk2utt"), tables["utt2spk"])
    return data


def make_featured_data_dir(root, num_utts=3, seed=0, seconds=(1.0, 1.6), rate=8000):
    """make_data_dir under root, with features by steps/make_feats.sh into root/feats."""
    data = make_data_dir(str(root), num_utts=num_utts, rate=rate, seed=seed, seconds=seconds)
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    make_feats = os.path.join(top, "steps", "make_feats.sh")
    run = subprocess.run(
        ["bash", make_feats, "--nj", "1", data, os.path.join(root, "log"), os.path.join(root, "feats")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return data
