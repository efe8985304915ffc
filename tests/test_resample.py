"""nnet/dsp.py resample: the one resampler of cocktail (wsj0-2mix creation, separate_wav.py, PESQ)."""

import hashlib
import math

import numpy as np
import pytest

from nnet import metrics
from nnet.dsp import resample


def matlab_resample(x, p, q):
    """MATLAB's resample(x, p, q) written out (N = 10, Kaiser beta 5): a windowed-sinc lowpass at
    1/max(p, q) of Nyquist, L = 2*N*max(p, q) + 1 taps, h = p*h/sum(h); x upsampled by p, filtered,
    the (L-1)/2 samples of filter delay dropped, decimated by q, ceil(len(x)*p/q) samples kept."""
    pq = max(p, q)
    half = 10 * pq
    n = np.arange(-half, half + 1)
    h = np.sinc(n / pq) * np.kaiser(2 * half + 1, 5.0)
    h = p * h / h.sum()
    up = np.zeros(len(x) * p)
    up[::p] = x
    y = np.convolve(up, h)[half::q]
    length = math.ceil(len(x) * p / q)
    return np.pad(y, (0, max(0, length - len(y))))[:length]


@pytest.mark.parametrize("from_rate, to_rate", [(16000, 8000), (22050, 16000), (8000, 16000), (11025, 8000)])
def test_resample_is_matlab_resample(from_rate, to_rate):
    x = np.random.default_rng(1).standard_normal(from_rate // 20)
    g = math.gcd(from_rate, to_rate)
    y = resample(x, from_rate, to_rate)
    assert y.dtype == np.float64 and len(y) == math.ceil(len(x) * to_rate / from_rate)
    np.testing.assert_allclose(y, matlab_resample(x, to_rate // g, from_rate // g), rtol=0, atol=1e-12)


# sha256 of the output bytes of nnet/corpus.py's resample before it moved to nnet/dsp.py (scipy 1.17.1,
# pinned): the wsj0-2mix and mini corpora are made with it and must stay the same, bit for bit.
CORPUS_RESAMPLE_SHA256 = {
    (16000, 8000): "5656259e7fce19999bf96a13467e26677b882c9a21790a226c8471a25c56968a",
    (22050, 16000): "39c323f3fb2d328e578cbb7db211b9d590fb9fcaf012b74c59bdcef525fc2f8c",
    (8000, 16000): "b03b90e8800fd46e3c1f867025c7ab12161ffad35248f25b49a695fde6287d73",
}


def test_resample_gives_the_corpus_output_of_before_bit_for_bit():
    rng = np.random.default_rng(0)
    for (from_rate, to_rate), digest in CORPUS_RESAMPLE_SHA256.items():
        x = rng.standard_normal(from_rate // 10)
        assert hashlib.sha256(resample(x, from_rate, to_rate).tobytes()).hexdigest() == digest


def test_resample_works_along_the_last_axis_and_in_float64():
    x = np.random.default_rng(2).standard_normal((2, 1600)).astype(np.float32)
    y = resample(x, 16000, 8000)
    assert y.shape == (2, 800) and y.dtype == np.float64
    for row in range(2):
        np.testing.assert_array_equal(y[row], resample(x[row].astype(np.float64), 16000, 8000))
    same = resample(x, 8000, 8000)
    assert same.dtype == np.float64
    np.testing.assert_array_equal(same, x)


def test_pesq_at_another_rate_scores_the_resampled_signals():
    rate = 11025  # PESQ is narrowband at 8 kHz: 11025 Hz is resampled there
    t = np.arange(int(1.5 * rate)) / rate
    ref = np.sin(2 * np.pi * 220 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    est = ref + 0.3 * np.sin(2 * np.pi * 330 * t)
    assert metrics.pesq_score(ref, est, rate) == metrics.pesq_score(
        resample(ref, rate, 8000), resample(est, rate, 8000), 8000
    )
