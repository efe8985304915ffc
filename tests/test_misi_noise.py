"""Issue 26, item 3: MISI on mixtures that hold noise besides the speakers (LibriMix's mix_both).
MISI makes its estimates sum to the mixture; with noise in it, the speakers then carry the noise,
and MISI fell below the mixture phase (chimera++ on LibriMix's cv: 7.41 dB SDRi against 9.05). With
the residual as one more source (inference.misi(noise_source=True)), it is not below it."""

import numpy as np
import pytest
import torch

from nnet import dsp, inference, metrics
from synth import voice

CFG = dsp.StftConfig()
RATE = CFG.sample_rate


def noisy_utterance(seed, noise_db=-5.0, seconds=1.5):
    """Two synthetic voices and a low-passed noise `noise_db` below their mean power, as LibriMix
    draws WHAM! noise about 5 LU below each speaker; returns (sources (2, T), mixture (T))."""
    rng = np.random.default_rng(seed)
    sources = np.stack(
        [voice(rng, seconds, RATE, rng.uniform(100, 140)), voice(rng, seconds, RATE, rng.uniform(190, 260))]
    )
    noise = np.convolve(rng.standard_normal(sources.shape[1]), np.ones(4) / 4, mode="same")
    noise *= np.sqrt(np.mean(sources**2) / np.mean(noise**2) * 10 ** (noise_db / 10))
    return torch.tensor(sources, dtype=torch.float32), torch.tensor(sources.sum(0) + noise, dtype=torch.float32)


def masks_of(sources, mixture, seed):
    """Ratio masks of the speakers against speakers and noise, blurred by noise as a network's are."""
    speakers = dsp.stft(sources, CFG).abs()
    noise = dsp.stft(mixture - sources.sum(0), CFG).abs()
    masks = speakers / (speakers.sum(0) + noise + 1e-8)
    blur = torch.rand(masks.shape, generator=torch.Generator().manual_seed(seed))
    return (masks + 0.1 * blur).clamp(0, 1)


def sdr(sources, estimates):
    return float(metrics.bss_eval_sources(sources.double().numpy(), estimates.double().numpy())[0].mean())


@pytest.fixture(scope="module")
def tiny_noisy_set():
    """Per utterance: SDR with the mixture phase, with MISI as it was, with MISI and a noise source."""
    rows = []
    for seed in range(3):
        sources, mixture = noisy_utterance(seed)
        length = mixture.shape[-1]
        mix_spec = dsp.stft(mixture, CFG)
        masks = masks_of(sources, mixture, seed)
        mixture_phase = dsp.istft(masks * mix_spec, CFG, length)
        speakers_only = inference.misi(mix_spec, masks * mix_spec.abs(), CFG, length)
        with_noise = inference.misi(mix_spec, masks * mix_spec.abs(), CFG, length, noise_source=True)
        assert with_noise.shape == speakers_only.shape == (2, length)
        rows.append((sdr(sources, mixture_phase), sdr(sources, speakers_only), sdr(sources, with_noise)))
    return np.array(rows)


def test_misi_with_a_noise_source_is_not_below_the_mixture_phase_on_noisy_mixtures(tiny_noisy_set):
    mixture_phase, _, with_noise = tiny_noisy_set.mean(0)
    assert with_noise >= mixture_phase, tiny_noisy_set


def test_misi_without_it_spreads_the_noise_into_the_speakers(tiny_noisy_set):
    """The case of the issue, kept as the reason for the option: the speakers made to sum to the noisy
    mixture lose to the mixture phase."""
    mixture_phase, speakers_only, with_noise = tiny_noisy_set.mean(0)
    assert speakers_only < mixture_phase - 0.5, tiny_noisy_set
    assert with_noise > speakers_only + 1.0, tiny_noisy_set


def test_the_noise_source_takes_its_share_and_the_rest_still_sums_to_the_mixture():
    """noise_source=True: the speakers plus the reconstructed residual are the mixture; the residual
    is |X| minus the speakers' magnitudes (the masks' complement), never negative."""
    sources, mixture = noisy_utterance(5)
    length = mixture.shape[-1]
    mix_spec = dsp.stft(mixture, CFG)
    magnitudes = masks_of(sources, mixture, 5) * mix_spec.abs()
    speakers = inference.misi(mix_spec, magnitudes, CFG, length, iters=0, noise_source=True)
    residual = (mix_spec.abs() - magnitudes.sum(0)).clamp_min(0)
    # iters=0: every source with the mixture phase, then the error split in three
    parts = dsp.istft(torch.cat([magnitudes, residual[None]]) * torch.exp(1j * mix_spec.angle()), CFG, length)
    want = parts + (dsp.istft(mix_spec, CFG, length) - parts.sum(0)) / 3
    assert torch.allclose(speakers, want[:2], atol=1e-6)
    # clean mixtures keep MISI as it was: noise_source defaults to False, and the speakers sum to the mixture
    assert torch.equal(
        inference.misi(mix_spec, magnitudes, CFG, length), inference.misi(mix_spec, magnitudes, CFG, length, 5, False)
    )
    assert torch.allclose(inference.misi(mix_spec, magnitudes, CFG, length).sum(0), mixture, atol=1e-5)
