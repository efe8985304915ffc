import os
import subprocess

import kaldiio
import numpy as np
import pytest
import torch

from nnet import datafiles, dsp, features
from synth import make_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("rate,window", [(8000, "sqrt_hann"), (16000, "sqrt_hann"), (8000, "hann")])
def test_istft_of_stft_reconstructs_perfectly(rate, window):
    config = dsp.StftConfig(sample_rate=rate, window=window)
    x = torch.randn(2, rate + 37, dtype=torch.float64)
    y = dsp.istft(dsp.stft(x, config), config, x.shape[-1])
    assert y.shape == x.shape
    assert torch.max(torch.abs(y - x)).item() < 1e-12


def test_default_stft_matches_the_seed_papers():
    config = dsp.StftConfig()
    assert (config.win_length, config.hop_length, config.n_fft, config.num_bins) == (256, 64, 256, 129)
    spec = dsp.stft(torch.zeros(8000), config)
    assert spec.shape == (dsp.num_frames(8000, config), 129) == (126, 129)


def test_padded_segment_gives_the_frames_of_the_whole_signal():
    config = dsp.StftConfig()
    x = np.random.default_rng(1).standard_normal((3, 5000))
    whole = dsp.stft(torch.from_numpy(x), config)
    for first, count in [(0, 10), (7, 30), (70, 9)]:
        seg = dsp.stft(torch.from_numpy(dsp.padded_segment(x, first, count, config)), config, center=False)
        assert torch.allclose(seg, whole[:, first : first + count])


def test_stft_conf_file(tmp_path):
    conf = tmp_path / "stft.conf"
    conf.write_text("# comment\n--frame-length-ms=64\n--frame-shift-ms=16\n")
    config = dsp.read_stft_conf(conf, 8000)
    assert (config.n_fft, config.hop_length) == (512, 128)
    conf.write_text("--frame-lenght-ms=64\n")
    with pytest.raises(ValueError, match=r"stft.conf:1: unknown option --frame-lenght-ms"):
        dsp.read_stft_conf(conf, 8000)


def make_feats(data, featdir, nj):
    return subprocess.run(
        [
            "bash",
            os.path.join(ROOT, "steps/make_feats.sh"),
            "--nj",
            str(nj),
            "--stft-conf",
            os.path.join(ROOT, "egs/mini_2mix/conf/stft.conf"),
            data,
            str(featdir) + "/log",
            str(featdir),
        ],
        capture_output=True,
        text=True,
    )


def test_archives_equal_direct_computation_and_do_not_depend_on_nj(tmp_path):
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=5)
    run1 = make_feats(data, tmp_path / "f1", 1)
    assert run1.returncode == 0, run1.stderr
    feats1 = dict(kaldiio.load_scp(os.path.join(data, "feats.scp")))
    cmvn1 = features.read_cmvn(os.path.join(data, "cmvn"))
    run3 = make_feats(data, tmp_path / "f3", 3)
    assert run3.returncode == 0, run3.stderr
    feats3 = dict(kaldiio.load_scp(os.path.join(data, "feats.scp")))
    cmvn3 = features.read_cmvn(os.path.join(data, "cmvn"))
    assert sorted(feats1) == sorted(feats3) == sorted(datafiles.read_table(os.path.join(data, "wav.scp")))
    all_frames = []
    config = dsp.StftConfig(sample_rate=8000)
    for utt, path in datafiles.read_table(os.path.join(data, "wav.scp")).items():
        samples, _ = datafiles.read_wav(path)
        direct = dsp.log_magnitude(dsp.stft(torch.from_numpy(samples), config)).numpy()
        np.testing.assert_array_equal(feats1[utt], direct)
        np.testing.assert_array_equal(feats3[utt], direct)
        all_frames.append(direct.astype(np.float64))
    frames = np.concatenate(all_frames)
    assert cmvn1.shape == (2, 130)
    assert cmvn1[0, -1] == frames.shape[0]
    np.testing.assert_allclose(cmvn1[0, :-1], frames.sum(0), rtol=1e-10)
    np.testing.assert_allclose(cmvn1[1, :-1], (frames**2).sum(0), rtol=1e-10)
    np.testing.assert_allclose(cmvn3, cmvn1, rtol=1e-10)
    mean, std = features.cmvn_mean_std(cmvn1)
    np.testing.assert_allclose(mean, frames.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, frames.std(0), rtol=1e-4)
    # every job log ends with Kaldi's footer
    logs = sorted((tmp_path / "f3" / "log").glob("make_feats_data_*.*.log"))  # data_<path hash>
    assert len(logs) == 3
    assert all("with status 0" in log.read_text().splitlines()[-1] for log in logs)


def test_unreadable_wav_names_the_utterance(tmp_path):
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    first = sorted(datafiles.read_table(os.path.join(data, "wav.scp")).items())[0]
    with open(first[1], "wb") as f:
        f.write(b"not a wav")
    run = make_feats(data, tmp_path / "f", 1)
    assert run.returncode != 0
    assert f"{first[1]}: not a readable audio file" in run.stderr and f"utterance '{first[0]}'" in run.stderr
    assert not os.path.exists(os.path.join(data, "feats.scp"))


@pytest.mark.fault
def test_a_feature_dir_with_white_space_is_refused_by_name(tmp_path):
    """feats.scp cannot hold '<ark path with a space>:<offset>': the dir is refused before any job
    (it used to end in a kaldiio traceback on the path's first word), and no feats.scp is left."""
    data = make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    featdir = tmp_path / "my feats"
    run = make_feats(data, featdir, 1)
    assert run.returncode == 1, run.stderr
    assert f"feature dir {featdir} contains white space, which feats.scp cannot hold" in run.stderr
    assert "Traceback" not in run.stderr
    assert not os.path.exists(os.path.join(data, "feats.scp"))
    assert not list(featdir.glob("*.ark"))
