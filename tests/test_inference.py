"""Run-time inference: k-means, matched inference, Griffin-Lim, MISI."""

import itertools

import numpy as np
import pytest
import torch

from nnet import dsp, inference, losses, metrics
from synth import voice

CFG = dsp.StftConfig()


def planted(batch, bins, dim, clusters, noise, seed, anisotropic=False):
    """Unit embeddings around `clusters` random unit centres per utterance, and the true labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(batch, clusters, dim, generator=g), dim=-1)
    truth = torch.randint(0, clusters, (batch, bins), generator=g)
    spread = torch.randn(batch, bins, dim, generator=g)
    if anisotropic:  # unequal spread per dimension: raw k-means and whitened k-means then disagree
        spread = spread * torch.linspace(0.2, 2.0, dim)
    emb = centres.gather(1, truth[..., None].expand(batch, bins, dim)) + noise * spread
    return torch.nn.functional.normalize(emb, dim=-1), truth


def same_partition(a, b, clusters):
    return any(torch.equal(a, torch.tensor(p)[b]) for p in itertools.permutations(range(clusters)))


# ---------------------------------------------------------------------------------------------
# k-means


def test_kmeans_recovers_planted_clusters():
    emb, truth = planted(3, 600, 8, 3, 0.1, seed=0)
    labels, centroids = inference.kmeans(emb, 3)
    assert labels.shape == (3, 600) and labels.dtype == torch.long
    assert centroids.shape == (3, 3, 8)
    for b in range(3):
        assert same_partition(labels[b], truth[b], 3)
        # the centroids are the clusters' means
        for c in range(3):
            assert torch.allclose(centroids[b, c], emb[b][labels[b] == c].mean(0), atol=1e-5)


def test_kmeans_zero_weight_bins_do_not_vote_but_get_labels():
    emb, truth = planted(1, 400, 6, 2, 0.1, seed=1)
    # 200 silent bins, all far on one side: voting, they would pull a centroid (or take one)
    g = torch.Generator().manual_seed(5)
    far = torch.randn(1, 1, 6, generator=g) + 0.01 * torch.randn(1, 200, 6, generator=g)
    far = torch.nn.functional.normalize(far, dim=-1)
    allbins = torch.cat([emb, far], 1)
    weights = torch.cat([torch.ones(1, 400), torch.zeros(1, 200)], 1)
    labels, centroids = inference.kmeans(allbins, 2, weights=weights)
    alone_labels, alone_centroids = inference.kmeans(emb, 2)
    assert same_partition(labels[0, :400], truth[0], 2)
    assert torch.equal(labels[0, :400], alone_labels[0])
    assert torch.allclose(centroids, alone_centroids, atol=1e-6)
    # silent bins take their nearest centroid
    nearest = torch.cdist(far[0], centroids[0]).argmin(-1)
    assert torch.equal(labels[0, 400:], nearest)
    # voting bins' weights are masses: doubling all of them changes nothing
    twice, _ = inference.kmeans(allbins, 2, weights=2 * weights)
    assert torch.equal(twice, labels)


def test_kmeans_deterministic_and_batch_independent():
    emb, _ = planted(4, 300, 5, 2, 0.6, seed=2)  # overlapping clusters: the seeding matters
    weights = (torch.rand(4, 300, generator=torch.Generator().manual_seed(3)) > 0.3).float()
    labels, centroids = inference.kmeans(emb, 2, weights=weights, seed=7)
    again, again_centroids = inference.kmeans(emb, 2, weights=weights, seed=7)
    assert torch.equal(labels, again) and torch.equal(centroids, again_centroids)
    for b in range(4):
        one, one_centroids = inference.kmeans(emb[b : b + 1], 2, weights=weights[b : b + 1], seed=7)
        assert torch.equal(one[0], labels[b])
        assert torch.allclose(one_centroids[0], centroids[b], atol=1e-6)


def test_kmeans_restarts_keep_lowest_inertia():
    emb, _ = planted(2, 300, 4, 4, 0.5, seed=4)

    def inertia(labels, centroids):
        return (emb - centroids.gather(1, labels[..., None].expand_as(emb))).square().sum((1, 2))

    single = inertia(*inference.kmeans(emb, 4, restarts=1, seed=0))
    best = inertia(*inference.kmeans(emb, 4, restarts=6, seed=0))
    # restart 0 of 6 draws the same seeding as the single run: the best of 6 is never worse
    assert torch.all(best <= single + 1e-5)


def test_kmeans_without_voting_bins_and_bad_input():
    emb, _ = planted(2, 50, 3, 2, 0.1, seed=5)
    weights = torch.zeros(2, 50)
    weights[1] = 1.0
    labels, centroids = inference.kmeans(emb, 2, weights=weights)
    assert labels.shape == (2, 50) and torch.isfinite(centroids).all()
    assert torch.equal(labels[0], inference.kmeans(emb[:1], 2)[0][0])  # a silent utterance: all bins vote
    with pytest.raises(ValueError, match="one weight per bin"):
        inference.kmeans(emb, 2, weights=torch.ones(2, 49))
    with pytest.raises(ValueError, match="utterances, bins, dim"):
        inference.kmeans(emb[0], 2)
    with pytest.raises(ValueError, match=">= 0"):
        inference.kmeans(emb, 2, weights=-weights)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_embeddings_that_are_not_finite_are_refused(bad):
    emb, _ = planted(3, 100, 6, 2, 0.3, seed=2)
    emb[1, 40, 3] = bad
    labels = torch.zeros(3, 100, dtype=torch.long)
    for run in (
        lambda: inference.kmeans(emb, 2),
        lambda: inference.matched_inference(emb, labels, torch.ones(3, 100), "wkm"),
    ):
        with pytest.raises(ValueError, match=r"utterance\(s\) \[1\] of the batch are not finite"):
            run()


def test_matched_inference_in_float64():
    emb, _ = planted(1, 200, 6, 2, 0.3, seed=4)
    emb = emb.double()
    labels, _ = inference.kmeans(emb, 2)
    masks = inference.matched_inference(emb, labels, torch.ones(1, 200, dtype=torch.float64), "classic", steps=5)
    assert masks.dtype == torch.float64 and masks.shape == (1, 200, 2)
    assert torch.allclose(masks.sum(-1), torch.ones(1, 200, dtype=torch.float64))


def test_kmeans_tie_goes_to_the_first_cluster():
    """Bins exactly as far from both centroids take label 0, argmin's rule (they weigh 0, so the
    centroids stay at (1, 0) and (-1, 0)); a last-of-the-ties rule gives them label 1."""
    emb = torch.tensor([[1.0, 0.0]] * 20 + [[-1.0, 0.0]] * 20 + [[0.0, 1.0]] * 5)[None]
    weights = torch.tensor([1.0] * 40 + [0.0] * 5)[None]
    labels, centroids = inference.kmeans(emb, 2, weights=weights)
    assert labels[0, :20].unique().numel() == 1 and labels[0, 20:40].unique().numel() == 1
    assert labels[0, 0] != labels[0, 20]
    assert labels[0, 40:].tolist() == [0] * 5
    assert sorted(centroids[0, :, 0].tolist()) == [-1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# matched run-time inference


def hard(labels, clusters):
    return torch.nn.functional.one_hot(labels, clusters).float()


def papers_objective(objective, emb, weights):
    """The objective as the paper writes it for a relaxed Y (losses.continuous_dc_loss), the one
    matched inference minimizes; tests/test_losses.py checks it against the dense formulas."""
    return losses.continuous_dc_loss(objective, emb, weights)


@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matched_inference_never_increases_objective(objective, seed):
    emb, _ = planted(2, 500, 10, 2, 0.5, seed=seed, anisotropic=True)
    weights = torch.rand(2, 500, generator=torch.Generator().manual_seed(seed)) * 2
    weights[:, :50] = 0  # silent / padded bins
    labels, _ = inference.kmeans(emb, 2, weights=weights > 0)
    masks = inference.matched_inference(emb, labels, weights, objective, steps=30)
    assert masks.shape == (2, 500, 2)
    assert masks.min() >= 0 and masks.max() <= 1
    assert torch.allclose(masks.sum(-1), torch.ones(2, 500), atol=1e-6)
    function = papers_objective(objective, emb, weights)
    assert torch.all(function(masks) <= function(hard(labels, 2)))


@pytest.mark.parametrize("objective", ["lda", "wkm", "classic"])
@pytest.mark.parametrize("seed", [0, 1])
def test_matched_inference_softens_the_masks(objective, seed):
    """Two clusters that overlap (N = 400, D = 8): the paper's objective of a relaxed Y is lowest
    with soft masks on the bins between the clusters, so matched inference must leave the binary
    k-means assignment for a lower objective. dc_lda's and dc_wkm's one-hot forms (Y^T W Y taken
    as diag(1^T W Y)) are concave in a relaxed Y: minimizing them keeps every mask binary, and the
    k-means start is returned."""
    emb, _ = planted(1, 400, 8, 2, 0.3, seed=seed)
    weights = torch.rand(1, 400, generator=torch.Generator().manual_seed(seed)) + 0.2
    labels, _ = inference.kmeans(emb, 2)
    masks = inference.matched_inference(emb, labels, weights, objective)
    soft = (masks.max(-1).values < 0.9).float().mean().item()
    assert soft > 0.3, soft
    function = papers_objective(objective, emb, weights)
    assert function(masks) < function(hard(labels, 2)) - 0.02


def test_matched_inference_of_a_silent_utterance():
    """All weights zero (a silent mixture: no bin votes, W_MR and W_VA are 0): every objective is
    finite and flat, and the k-means assignment comes back."""
    emb, _ = planted(1, 100, 6, 2, 0.3, seed=7)
    labels, _ = inference.kmeans(emb, 2)
    for objective in losses.DC_OBJECTIVES:
        masks = inference.matched_inference(emb, labels, torch.zeros(1, 100), objective, steps=5)
        assert torch.equal(masks, hard(labels, 2)), objective


def test_matched_inference_improves_whitened_kmeans():
    # wkm is k-means on whitened embeddings: on anisotropic clusters raw k-means is not its optimum
    emb, truth = planted(1, 2000, 20, 2, 0.5, seed=1, anisotropic=True)
    weights = torch.ones(1, 2000)
    labels, _ = inference.kmeans(emb, 2)
    masks = inference.matched_inference(emb, labels, weights, "wkm", steps=100)
    function = papers_objective("wkm", emb, weights)
    assert function(masks) < function(hard(labels, 2)) - 0.01

    def accuracy(assigned):
        agree = (assigned == truth[0]).float().mean().item()
        return max(agree, 1 - agree)

    assert accuracy(masks[0].argmax(-1)) > accuracy(labels[0]) + 0.02


@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_matched_inference_corrects_a_wrong_start(objective):
    """Embeddings of two clear clusters, the start assignment wrong on 15% of the bins (a poor
    k-means result): minimizing the training objective over Y must move the masks to the clusters.
    A do-nothing inference returns the start (85% right) and fails."""
    g = torch.Generator().manual_seed(5)
    truth = torch.randint(0, 2, (1, 400), generator=g)
    centres = torch.tensor([[1.0, 0.2, 0.0, 0.1], [0.2, 1.0, 0.1, 0.0]])  # nonnegative: every graph
    emb = torch.nn.functional.normalize(centres[truth] + 0.1 * torch.rand(1, 400, 4, generator=g), dim=-1)
    flipped = torch.rand(1, 400, generator=g) < 0.15
    start = torch.where(flipped, 1 - truth, truth)
    weights = torch.rand(1, 400, generator=g) + 0.5
    masks = inference.matched_inference(emb, start, weights, objective)
    function = papers_objective(objective, emb, weights)
    assert function(masks) < function(hard(start, 2)) * 0.9
    right = (masks[0].argmax(-1) == truth[0]).float().mean().item()
    assert right > 0.97, right
    assert (masks[0, :, 0] - hard(start, 2)[0, :, 0]).abs().max() > 0.5  # the masks moved


def test_matched_inference_is_the_papers_logistic_start():
    """Z = logit(0.99) on bins labelled source 1, logit(0.01) elsewhere: with zero steps and a
    start that scores better relaxed than hard, the masks are exactly 0.99 / 0.01."""
    emb, _ = planted(1, 200, 6, 2, 0.3, seed=6)
    labels = torch.randint(0, 2, (1, 200), generator=torch.Generator().manual_seed(6))  # a bad start
    masks = inference.matched_inference(emb, labels, torch.ones(1, 200), "classic", steps=0)
    want = torch.where(hard(labels, 2) > 0, 0.99, 0.01)
    assert torch.allclose(masks, want, atol=1e-6)


@pytest.mark.parametrize("clusters", [2, 3])
def test_relaxed_assignment_is_softmax_of_z_and_zero(clusters):
    """C = 2 takes the logistic form (Y_1 = logistic(Z), Y_2 = 1 - Y_1); it must equal
    softmax([Z, 0]) in value and in gradient, as C = 3 does by construction."""
    logits = (torch.randn(2, 50, clusters - 1, generator=torch.Generator().manual_seed(8)) * 4).requires_grad_()
    Y = inference._relaxed_assignment(logits)
    want = torch.softmax(torch.nn.functional.pad(logits, (0, 1)), -1)
    assert Y.shape == (2, 50, clusters)
    assert torch.allclose(Y, want, atol=1e-6)
    probe = torch.randn(2, 50, clusters, generator=torch.Generator().manual_seed(9))
    (grad,) = torch.autograd.grad((Y * probe).sum(), logits)
    (want_grad,) = torch.autograd.grad((want * probe).sum(), logits)
    assert torch.allclose(grad, want_grad, atol=1e-6)


def test_matched_inference_keeps_best_iterate_and_batches():
    emb, _ = planted(3, 300, 8, 3, 0.4, seed=3)
    weights = torch.ones(3, 300)
    labels, _ = inference.kmeans(emb, 3)
    # a huge step size diverges; the returned assignment is still never worse than k-means
    wild = inference.matched_inference(emb, labels, weights, "classic", steps=10, lr=50.0)
    assert torch.all(losses.dc_classic(emb, wild, weights) <= losses.dc_classic(emb, hard(labels, 3), weights))
    # zero steps: the better of the hard labels and their 0.99 / 0.01 relaxation
    start = inference.matched_inference(emb, labels, weights, "wkm", steps=0)
    soft = torch.where(hard(labels, 3) > 0, 0.99, 0.005)
    for b in range(3):
        assert torch.allclose(start[b], hard(labels, 3)[b]) or torch.allclose(start[b], soft[b])
    batched = inference.matched_inference(emb, labels, weights, "classic", steps=20)
    for b in range(3):
        one = inference.matched_inference(emb[b : b + 1], labels[b : b + 1], weights[b : b + 1], "classic", steps=20)
        assert torch.allclose(one[0], batched[b], atol=1e-5)


def test_matched_inference_under_no_grad_and_inference_mode():
    emb, _ = planted(1, 200, 6, 2, 0.3, seed=4)
    weights = torch.ones(1, 200)
    labels, _ = inference.kmeans(emb, 2)
    expected = inference.matched_inference(emb, labels, weights, "wkm", steps=5)
    with torch.no_grad():
        assert torch.allclose(inference.matched_inference(emb, labels, weights, "wkm", steps=5), expected)
    with torch.inference_mode():
        e, y, w = emb.clone(), labels.clone(), weights.clone()  # inference tensors
        assert torch.allclose(inference.matched_inference(e, y, w, "wkm", steps=5), expected)
    with pytest.raises(ValueError, match="unknown DC objective 'kmeans'"):
        inference.matched_inference(emb, labels, weights, "kmeans")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        inference.matched_inference(emb, labels + 1, weights, "wkm", num_clusters=2)


# ---------------------------------------------------------------------------------------------
# phase reconstruction


def two_voices(seed, seconds=1.0):
    rng = np.random.default_rng(seed)
    s1 = voice(rng, seconds, CFG.sample_rate, rng.uniform(100, 140))
    s2 = voice(rng, seconds, CFG.sample_rate, rng.uniform(190, 260))
    return torch.tensor(np.stack([s1, s2]), dtype=torch.float32)


def test_misi_sources_sum_to_mixture():
    sources = two_voices(0, 0.7)
    mix = sources.sum(0)
    length = mix.shape[-1]
    mix_spec = dsp.stft(mix, CFG)
    # any magnitudes, even poor ones: the estimates still add up to the mixture
    masks = torch.rand(2, *mix_spec.shape, generator=torch.Generator().manual_seed(0))
    for iters in (0, 1, 5):
        estimates = inference.misi(mix_spec, masks * mix_spec.abs(), CFG, length, iters)
        assert estimates.shape == (2, length)
        assert torch.allclose(estimates.sum(0), mix, atol=1e-5)
    # batched: (B, C, T, F) with a (B, T, F) mixture
    batch = inference.misi(torch.stack([mix_spec, mix_spec]), torch.stack([masks, masks]) * mix_spec.abs(), CFG, length)
    assert batch.shape == (2, 2, length)
    assert torch.allclose(batch[1], inference.misi(mix_spec, masks * mix_spec.abs(), CFG, length), atol=1e-6)


def test_misi_spreads_the_mixture_error_inside_every_iteration():
    """MISI (Gunawan & Sen; Wang et al. 2018 Sec. 5.2): "the sum of the reconstructed time-domain
    signals after each iteration is constrained to be equal to the mixture signal", so the phase
    of iteration k + 1 comes from the corrected signals of iteration k. Written here step by step;
    per-source Griffin-Lim with one final spread of the error gives other signals."""
    sources = two_voices(3, 0.6).double()
    mix = sources.sum(0)
    length = mix.shape[-1]
    mix_spec = dsp.stft(mix, CFG)
    mags = (
        torch.rand(2, *mix_spec.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * mix_spec.abs()
    )
    phase = torch.exp(1j * mix_spec.angle())
    for _ in range(3):
        estimate = dsp.istft(mags * phase, CFG, length)
        estimate = estimate + (mix - estimate.sum(0)) / 2
        phase = torch.exp(1j * dsp.stft(estimate, CFG).angle())
    estimate = dsp.istft(mags * phase, CFG, length)
    want = estimate + (mix - estimate.sum(0)) / 2
    got = inference.misi(mix_spec, mags, CFG, length, iters=3)
    assert torch.allclose(got, want, atol=1e-9)
    griffin_lim = inference.griffin_lim(mags, CFG, length, 3, init_spec=mix_spec)
    spread_once = griffin_lim + (mix - griffin_lim.sum(0)) / 2
    assert (got - spread_once).abs().max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_misi_beats_mixture_phase_with_oracle_magnitudes(seed):
    sources = two_voices(seed)
    mix = sources.sum(0)
    length = mix.shape[-1]
    mix_spec = dsp.stft(mix, CFG)
    oracle = dsp.stft(sources, CFG).abs()
    mixture_phase = dsp.istft(oracle * torch.polar(torch.ones_like(oracle), mix_spec.angle()), CFG, length)
    estimates = inference.misi(mix_spec, oracle, CFG, length, iters=5)
    refs = sources.numpy()
    sdr_base = metrics.bss_eval_sources(refs, mixture_phase.numpy())[0].mean()
    sdr_misi = metrics.bss_eval_sources(refs, estimates.numpy())[0].mean()
    assert sdr_misi >= sdr_base + 0.3
    assert metrics.si_snr(refs, estimates.numpy()).mean() >= metrics.si_snr(refs, mixture_phase.numpy()).mean()


def spectral_convergence(magnitude, waveform):
    return ((dsp.stft(waveform, CFG).abs() - magnitude).norm() / magnitude.norm()).item()


def test_griffin_lim_converges():
    sources = two_voices(2, 0.6)
    length = sources.shape[-1]
    spec = dsp.stft(sources, CFG)
    magnitude = spec.abs()
    errors = [
        spectral_convergence(magnitude, inference.griffin_lim(magnitude, CFG, length, iters))
        for iters in (0, 2, 10, 30)
    ]
    assert all(later <= earlier + 1e-6 for earlier, later in zip(errors, errors[1:]))
    assert errors[-1] < 0.5 * errors[0]
    # from the true phase it stays (nearly) exact; from the mixture phase it starts far better than zero
    exact = inference.griffin_lim(magnitude, CFG, length, 3, init_spec=spec)
    assert torch.allclose(exact, sources, atol=1e-4)
    from_mix = inference.griffin_lim(magnitude, CFG, length, 0, init_spec=spec.sum(0))
    assert spectral_convergence(magnitude, from_mix) < errors[0]
    with pytest.raises(ValueError, match="STFT bins"):
        inference.griffin_lim(magnitude, CFG, length + CFG.hop_length, 1)
