"""nnet.metrics against mir_eval (the reference BSS Eval) and hand-computed values; edge cases."""

import warnings

import numpy as np
import pytest
import scipy.signal

from nnet import metrics

RATE = 8000

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mir_eval.separation


def mir_eval_bss(refs, ests):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mir_eval.separation is deprecated
        return mir_eval.separation.bss_eval_sources(refs, ests)


def speech_like(rng, length, rate=RATE):
    """Band-passed noise under a syllable-like envelope."""
    sos = scipy.signal.butter(
        4, [rng.uniform(80, 300), rng.uniform(0.3, 0.45) * rate], btype="bandpass", fs=rate, output="sos"
    )
    t = np.arange(length) / rate
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6)), 0, None) + 0.05
    x = scipy.signal.sosfilt(sos, rng.standard_normal(length)) * envelope
    return 0.3 * x / np.abs(x).max()


def random_case(seed, num_sources, seconds=1.0):
    """References and estimates (mixes of the references plus noise, in a shuffled order)."""
    rng = np.random.default_rng(seed)
    length = int(seconds * RATE)
    refs = np.stack([speech_like(rng, length) for _ in range(num_sources)])
    ests = (rng.uniform(0, 0.4, (num_sources, num_sources)) + np.eye(num_sources)) @ refs
    ests += rng.uniform(0.005, 0.05) * rng.standard_normal(ests.shape)
    order = rng.permutation(num_sources)
    return refs, ests[order], order


def assert_agrees(ours, theirs, tol=0.01):
    for name, a, b in zip(("SDR", "SIR", "SAR"), ours[:3], theirs[:3]):
        np.testing.assert_allclose(a, b, atol=tol, rtol=0, err_msg=name)
    np.testing.assert_array_equal(ours[3], theirs[3])


@pytest.mark.parametrize("num_sources,seed,seconds", [(2, 0, 1.5), (2, 1, 2.0), (2, 2, 1.0), (3, 3, 1.0), (3, 4, 1.2)])
def test_bss_eval_agrees_with_mir_eval(num_sources, seed, seconds):
    refs, ests, _ = random_case(seed, num_sources, seconds)
    assert_agrees(metrics.bss_eval_sources(refs, ests), mir_eval_bss(refs, ests))


def test_fast_and_dense_solvers_agree():
    refs, ests, _ = random_case(17, 2, 1.5)
    noisy_mix = refs.sum(0, keepdims=True) + 0.01 * np.random.default_rng(0).standard_normal((1, refs.shape[1]))
    fast = np.array(metrics.bss_eval_pairs(refs, np.concatenate([ests, noisy_mix])))
    dense = metrics.bss_eval_pairs(refs, np.concatenate([ests, noisy_mix]), method="dense")
    np.testing.assert_allclose(fast, dense, atol=1e-4, rtol=0)
    assert np.all(np.isfinite(fast)) and fast.shape == (3, 3, 2)


def test_bss_eval_agrees_on_correlated_references_through_the_dense_fallback(monkeypatch):
    rng = np.random.default_rng(5)
    s = speech_like(rng, 8000)
    refs = np.stack([s, np.convolve(s, [0.5, 0.3], "same") + 1e-3 * speech_like(rng, 8000)])
    ests = np.stack([refs[0] + 0.5 * refs[1], refs[1]]) + 0.01 * rng.standard_normal((2, 8000))
    dense_calls = []
    solve = metrics._dense_solve
    monkeypatch.setattr(metrics, "_dense_solve", lambda *a: dense_calls.append(1) or solve(*a))
    ours = metrics.bss_eval_sources(refs, ests)
    assert dense_calls, "the coupled system should have needed the dense solver"
    assert_agrees(ours, mir_eval_bss(refs, ests))


def test_permutation_is_recovered():
    rng = np.random.default_rng(6)
    refs = np.stack([speech_like(rng, 16000) for _ in range(3)])
    ests = refs[[2, 0, 1]] + 0.01 * rng.standard_normal((3, 16000))
    sdr, sir, sar, perm = metrics.bss_eval_sources(refs, ests)
    assert tuple(perm) == (1, 2, 0)  # estimate perm[j] is reference j
    assert np.all(sdr > 10)
    result = metrics.score_utterance(refs, ests, refs.sum(0), RATE, "u", pesq_stoi=False)
    assert result["perm"] == (1, 2, 0)
    np.testing.assert_allclose(result["SDR"], sdr.mean())


def test_si_snr_matches_the_hand_formula_and_ignores_offset_and_scale():
    rng = np.random.default_rng(7)
    s = rng.standard_normal(4000)
    s -= s.mean()
    n = rng.standard_normal(4000)
    n -= n.mean()
    n -= (n @ s) / (s @ s) * s  # orthogonal to s: the target part of 3 s + n is exactly 3 s
    n *= np.sqrt(9 * (s @ s) / (n @ n)) / 10  # |3 s|^2 / |n|^2 = 100, i.e. 20 dB
    assert metrics.si_snr(s, 3 * s + n) == pytest.approx(20.0, abs=1e-9)
    assert metrics.si_snr(s + 0.7, 3 * s + n - 2.0) == pytest.approx(20.0, abs=1e-9)  # zero-mean
    assert metrics.si_snr(s, -0.01 * (3 * s + n)) == pytest.approx(20.0, abs=1e-9)  # scale
    stacked = metrics.si_snr(np.stack([s, s]), np.stack([3 * s + n, 3 * s + 2 * n]))
    np.testing.assert_allclose(stacked, [20.0, 20.0 - 20 * np.log10(2)], atol=1e-9)


def test_bss_eval_is_scale_invariant():
    refs, ests, _ = random_case(8, 2)
    base = metrics.bss_eval_sources(refs, ests)
    scaled = metrics.bss_eval_sources(refs * [[0.1], [5.0]], ests * [[-3.0], [0.02]])
    for a, b in zip(base, scaled):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_the_mixture_scores_zero_improvement():
    refs, _, _ = random_case(9, 2)
    mix = refs.sum(0)
    result = metrics.score_utterance(refs, np.stack([mix, mix]), mix, RATE, "u", pesq_stoi=False)
    assert result["SDRi"] == pytest.approx(0.0, abs=1e-9)
    assert result["SI-SNRi"] == pytest.approx(0.0, abs=1e-9)
    assert -5 < result["SDR"] < 5  # two sources at similar levels


def test_sdri_and_si_snri_are_differences_from_the_mixture():
    refs, ests, _ = random_case(10, 2)
    mix = refs.sum(0)
    result = metrics.score_utterance(refs, ests, mix, RATE, "u", pesq_stoi=False)
    matched = ests[list(result["perm"])]
    mix_sdr = metrics.bss_eval_pairs(refs, np.stack([mix, mix]))[0][0]
    assert result["SDRi"] == pytest.approx(result["SDR"] - mix_sdr.mean(), abs=1e-9)
    si_snr = metrics.si_snr(refs, matched)
    assert result["SI-SNR"] == pytest.approx(si_snr.mean(), abs=1e-9)
    assert result["SI-SNRi"] == pytest.approx((si_snr - metrics.si_snr(refs, np.stack([mix, mix]))).mean(), abs=1e-9)


@pytest.mark.parametrize("rate", [8000, 16000, 11025])
def test_pesq_and_stoi_are_in_range_and_higher_for_cleaner_estimates(rate):
    rng = np.random.default_rng(11)
    refs = np.stack([speech_like(rng, int(1.5 * rate), rate) for _ in range(2)])
    mix = refs.sum(0)
    clean = metrics.score_utterance(refs, refs + 0.03 * refs[::-1], mix, rate, "clean")
    noisy = metrics.score_utterance(refs, refs + 0.6 * refs[::-1], mix, rate, "noisy")
    for result in (clean, noisy):
        assert -0.5 <= result["PESQ"] <= 4.65
        assert 0.0 <= result["STOI"] <= 1.0
    assert clean["PESQ"] > noisy["PESQ"] + 0.3
    assert clean["STOI"] > noisy["STOI"]
    assert clean["SDR"] > noisy["SDR"] + 10


def test_silent_reference_is_an_error_as_in_mir_eval():
    refs, ests, _ = random_case(12, 2)
    refs[1] = 0.0
    with pytest.raises(metrics.ScoreError, match="reference 2 is silent") as err:
        metrics.bss_eval_sources(refs, ests)
    assert err.value.signal == "reference 2"
    with pytest.raises(ValueError, match="reference sources is all 0s"):
        mir_eval_bss(refs, ests)


def test_pesq_failure_scores_the_floor_with_a_warning_and_keeps_the_other_metrics(monkeypatch):
    import pesq

    # PESQ fails below 0.25 s, which score_utterance refuses anyway (BSS Eval needs 4096 samples with
    # two references): the failure of a longer utterance stands in for it
    refs, ests, _ = random_case(14, 2, seconds=0.6)

    def too_short(*args):
        raise pesq.BufferTooShortError(b"Buffer needs to be at least 1/4 of a second long")

    warnings.filterwarnings("ignore", "Not enough STFT frames", RuntimeWarning)  # pystoi on 0.6 s
    with monkeypatch.context() as patched:
        patched.setattr(pesq, "pesq", too_short)
        with pytest.warns(metrics.MetricWarning, match="'utt_short': PESQ failed.*scored at its floor, 1.0"):
            result = metrics.score_utterance(refs, ests, refs.sum(0), RATE, "utt_short")
    assert result["PESQ"] == 1.0 and result["floored"] == ("PESQ",)
    assert np.isfinite(result["SDR"]) and np.isfinite(result["STOI"])
    with pytest.warns(metrics.MetricWarning, match="'u0': PESQ failed.*NoUtterances"):
        assert metrics.pesq_score(np.zeros(8000), refs[0, :1] + np.ones(8000), RATE, "u0") == 1.0


def test_missing_estimate_and_bad_samples_are_errors_naming_the_utterance():
    refs, ests, _ = random_case(16, 3)
    with pytest.raises(metrics.ScoreError, match="utterance 'utt_x': 2 estimates for 3 references"):
        metrics.score_utterance(refs, ests[:2], refs.sum(0), RATE, "utt_x")
    with pytest.raises(metrics.ScoreError, match="utterance 'utt_m': mixture has 7990 samples, the references 8000"):
        metrics.score_utterance(refs, ests, refs.sum(0)[:-10], RATE, "utt_m")
    ests[1, 10] = np.nan
    with pytest.raises(metrics.ScoreError, match="utterance 'utt_y': estimate 2 has NaN or infinite samples") as err:
        metrics.score_utterance(refs, ests, refs.sum(0), RATE, "utt_y")
    assert err.value.signal == "estimate 2"
