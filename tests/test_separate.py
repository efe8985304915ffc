"""Separation with trained systems: steps/separate.sh (nj independence, heads, phases) and
separate_wav.py on a recording of another sample rate."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from nnet import io, signal
from nnet.separator import Separator
from synth import make_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny chimera++ trained for two epochs on synthetic data, and a test data dir."""
    root = tmp_path_factory.mktemp("sep")
    dirs = {}
    for name, count, seed in (("tr", 4, 0), ("cv", 2, 1), ("tt", 3, 2)):
        dirs[name] = make_data_dir(str(root / name), num_utts=count, seed=seed, seconds=(0.8, 1.1))
        run = subprocess.run(
            [
                "bash",
                os.path.join(ROOT, "steps/make_feats.sh"),
                "--nj",
                "1",
                dirs[name],
                str(root / name / "log"),
                str(root / name / "feats"),
            ],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
    config = {
        "model": {
            "type": "chimera",
            "num_bins": 129,
            "num_spk": 2,
            "layers": 1,
            "units": 16,
            "emb_dim": 8,
            "mask_activation": "sigmoid",
        },
        "loss": {
            "type": "chimera",
            "dc_objective": "classic",
            "dc_weights": "mr",
            "mi_target": "tpsa",
            "mi_norm": "l1",
            "alpha": 0.5,
        },
        "training": {"segment_frames": 50, "batch_size": 4, "epochs": 2, "num_workers": 0, "num_threads": 1},
    }
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            PYTHON,
            os.path.join(ROOT, "nnet/bin/train.py"),
            str(root / "c.yaml"),
            dirs["tr"],
            dirs["cv"],
            str(root / "exp"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return root / "exp", dirs["tt"]


def separate_dir(exp, data, out, *options):
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), *options, str(exp), data, str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return {c: {utt: io.read_wav(path)[0] for utt, path in io.read_table(out / f"spk{c}.scp").items()} for c in (1, 2)}


@pytest.mark.parametrize("options", [(), ("--head", "dc", "--matched-inference", "true"), ("--phase", "misi")])
def test_nj_does_not_change_the_wavs(tmp_path, trained, options):
    exp, data = trained
    one = separate_dir(exp, data, tmp_path / "nj1", "--nj", "1", *options)
    two = separate_dir(exp, data, tmp_path / "nj2", "--nj", "2", *options)
    utts = list(io.read_table(os.path.join(data, "wav.scp")))
    for c in (1, 2):
        assert list(one[c]) == list(two[c]) == utts
        for utt in utts:
            mix = io.read_wav(io.read_table(os.path.join(data, "wav.scp"))[utt])[0]
            assert one[c][utt].shape == mix.shape
            np.testing.assert_array_equal(one[c][utt], two[c][utt])


def test_misi_estimates_sum_to_the_mixture(trained):
    exp, data = trained
    separator = Separator(str(exp), phase="misi", iters=3)
    utt, path = next(iter(io.read_table(os.path.join(data, "wav.scp")).items()))
    mix, _ = io.read_wav(path)
    estimates = separator.separate(mix)
    assert estimates.shape == (2, len(mix))
    np.testing.assert_allclose(estimates.sum(0), mix, atol=1e-5)


def test_mi_masks_and_dc_head_masks_are_valid(trained):
    exp, data = trained
    mix, _ = io.read_wav(next(iter(io.read_table(os.path.join(data, "wav.scp")).values())))
    for head in ("mi", "dc"):
        separator = Separator(str(exp), head=head)
        masks = separator.masks(signal.stft(torch.from_numpy(mix), separator.stft))
        assert masks.shape[0] == 2 and masks.min() >= 0
        if head == "dc":  # hard k-means assignment: one source per bin
            assert torch.equal(masks.sum(0), torch.ones_like(masks[0]))


def test_wrong_head_and_missing_model_are_errors(tmp_path, trained):
    exp, data = trained
    with pytest.raises(FileNotFoundError, match="best.pt not found: train the system first"):
        Separator(str(tmp_path))
    with pytest.raises(ValueError, match="matched run-time inference refines k-means on the DC head"):
        Separator(str(exp), head="mi", matched_inference=True)
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), str(tmp_path / "none"), data, str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "best.pt not found" in run.stderr
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), "--variant", "rtii", str(exp), data, str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "--variant 'rtii': use rti, gl or misi" in run.stderr
    assert not (tmp_path / "out").exists()


def test_separate_wav_resamples_another_rate(tmp_path, trained):
    """A 16 kHz recording through an 8 kHz model: signal.resample there and back, the input's length."""
    exp, data = trained
    mix8k, rate = io.read_wav(next(iter(io.read_table(os.path.join(data, "wav.scp")).values())))
    io.write_wav(tmp_path / "talk.wav", signal.resample(mix8k, 8000, 16000), 16000)
    mix16k, _ = io.read_wav(tmp_path / "talk.wav")
    run = subprocess.run(
        [
            PYTHON,
            os.path.join(ROOT, "nnet/bin/separate_wav.py"),
            "--model",
            str(exp),
            str(tmp_path / "talk.wav"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    estimates = Separator(str(exp)).separate(signal.resample(mix16k, 16000, 8000))
    expected = signal.resample(estimates, 8000, 16000)[:, : len(mix16k)]
    for c in (1, 2):
        est, est_rate = io.read_wav(tmp_path / "out" / f"talk_s{c}.wav")
        assert est_rate == 16000 and len(est) == len(mix16k)
        assert np.abs(est).max() > 0
        np.testing.assert_allclose(est, expected[c - 1], rtol=0, atol=1.01 / 32768)  # within one 16-bit step


@pytest.mark.fault
def test_truncated_mixture_is_named_with_its_utterance(tmp_path, trained):
    """A mixture wav cut short: separate.sh fails naming wav.scp, utterance and file; no spk1.scp."""
    exp, data = trained
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    entries = dict(line.split() for line in open(broken / "wav.scp"))
    utt = sorted(entries)[0]
    cut = tmp_path / "cut.wav"
    shutil.copy(entries[utt], cut)  # the module's files are shared: cut a copy
    os.truncate(cut, 44 + 2 * 50)
    entries[utt] = str(cut)
    (broken / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(entries.items())))
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), "--nj", "1", str(exp), str(broken), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    logs = "".join(p.read_text() for p in (tmp_path / "out" / "log").glob("*.log"))
    assert f"wav.scp: utterance '{utt}': {cut}: truncated" in logs  # the job's split of {broken}/wav.scp
    assert not (tmp_path / "out" / "spk1.scp").exists()


@pytest.mark.fault
@pytest.mark.skipif(torch.cuda.is_available(), reason="the error of a machine whose torch sees no GPU")
@pytest.mark.parametrize("program", ["separate.py", "separate_wav.py"])
def test_use_gpu_without_a_gpu_is_an_error_in_both_programs(tmp_path, trained, program):
    """--use-gpu true where torch sees no GPU: exit 1 with the same message, nothing written (no silent CPU run)."""
    exp, data = trained
    wav = io.read_table(os.path.join(data, "wav.scp"))
    if program == "separate.py":
        args = ["--use-gpu", "true", str(exp), data, str(tmp_path / "out")]
    else:
        args = ["--model", str(exp), "--use-gpu", "true", next(iter(wav.values())), str(tmp_path / "out")]
    run = subprocess.run([PYTHON, os.path.join(ROOT, "nnet/bin", program), *args], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"{program}: --use-gpu true but torch sees no GPU: install a CUDA build or use --use-gpu false"
    )
    assert not (tmp_path / "out").exists()
