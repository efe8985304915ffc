"""Network input features and global CMVN statistics in Kaldi's layout.

Kaldi's cmvn stats are a 2 x (D+1) double matrix: row 0 holds the per-dimension sums and, in the
last column, the frame count; row 1 holds the sums of squares and a 0.
"""

import os

import kaldiio
import numpy as np
import torch

from nnet import datafiles, dsp
from nnet.training_data import DataError

VARIANCE_FLOOR = 1e-10


def log_magnitude_features(samples, stft_config):
    """(samples,) float array -> (frames, bins) float32 log-magnitude STFT."""
    spec = dsp.stft(torch.as_tensor(samples, dtype=torch.float32), stft_config)
    return dsp.log_magnitude(spec).numpy()


def accumulate_cmvn(stats, feats):
    """Add the frames of `feats` (T, D) to `stats` (2, D+1), allocating it when None."""
    feats = np.asarray(feats, dtype=np.float64)
    if stats is None:
        stats = np.zeros((2, feats.shape[1] + 1))
    if stats.shape[1] != feats.shape[1] + 1:
        raise ValueError(f"feature dimension {feats.shape[1]} does not match cmvn stats {stats.shape[1] - 1}")
    stats[0, :-1] += feats.sum(axis=0)
    stats[1, :-1] += np.square(feats).sum(axis=0)
    stats[0, -1] += feats.shape[0]
    return stats


def cmvn_mean_std(stats):
    """Mean and standard deviation (float32 arrays of D) from Kaldi cmvn stats."""
    stats = np.asarray(stats, dtype=np.float64)
    count = stats[0, -1]
    if count < 1:
        raise ValueError("cmvn stats hold no frames")
    mean = stats[0, :-1] / count
    var = np.maximum(stats[1, :-1] / count - np.square(mean), VARIANCE_FLOOR)
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def read_cmvn(path):
    return kaldiio.load_mat(str(path))


def write_cmvn(path, stats):
    with datafiles.atomic_write(path, "wb") as f:
        kaldiio.save_mat(f, np.asarray(stats, dtype=np.float64))


def first_sample_rate(data_dir):
    """The sample rate of a data dir's first mixture (its wav.scp's first line), from the header."""
    utt, path = next(iter(datafiles.read_table(os.path.join(data_dir, "wav.scp")).items()))
    try:
        return datafiles.wav_info(path)[1]
    except datafiles.AudioError as err:
        raise DataError(f"{data_dir}/wav.scp: utterance '{utt}': {err}") from None


def data_stft(data_dir):
    """The STFT of a data dir's features: its stft.conf (written by steps/make_feats.sh; without one,
    the built-in defaults) at the sample rate of its mixtures."""
    conf = os.path.join(data_dir, "stft.conf")
    return dsp.read_stft_conf(conf if os.path.isfile(conf) else None, first_sample_rate(data_dir))
