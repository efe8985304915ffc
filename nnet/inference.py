"""Run-time inference of separation: k-means on deep clustering embeddings, matched run-time
inference (Wang, Le Roux, Hershey, ICASSP 2018), and phase reconstruction (Griffin-Lim, MISI).

Everything is torch and runs on the device of its inputs. Embeddings come flattened per utterance:
emb (B, N, D) with N = T * F bins; masks and assignments are (B, N, C).
"""

import torch

from nnet import dsp, losses

KMEANS_ITERATIONS = 100  # Lloyd iterations at most (they stop earlier once the centroids stay put)
KMEANS_RESTARTS = 5  # k-means++ initializations; the lowest weighted inertia wins
MATCHED_STEPS = 100  # Adam steps of matched run-time inference (not given in the paper)
MATCHED_LR = 0.1  # Adam step size on the logits Z (not given in the paper)
MATCHED_CONFIDENCE = 0.99  # k-means labels become 0.99 / 0.01 before the logit (Wang et al. 2018 Sec. 3)
MISI_ITERATIONS = 5  # Wang et al. 2018


def _check_embeddings(emb, weights):
    if emb.dim() != 3:
        raise ValueError(f"embeddings must be (utterances, bins, dim), got shape {tuple(emb.shape)}")
    if weights is not None and tuple(weights.shape) != tuple(emb.shape[:2]):
        raise ValueError(
            f"weights are {tuple(weights.shape)}, the embeddings {tuple(emb.shape)}: "
            "give one weight per bin, (utterances, bins)"
        )
    bad = (~torch.isfinite(emb)).flatten(1).any(1)
    if bad.any():
        raise ValueError(
            f"the embeddings of utterance(s) {bad.nonzero().flatten().tolist()} of the batch are not finite "
            "(NaN or inf): the model's output is broken, e.g. a training that diverged"
        )


def _float(x):
    """Half precision embeddings are clustered in float32 (distances cancel)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


# ---------------------------------------------------------------------------------------------
# k-means


def _squared_distances(V, centroids):
    """||v - c||^2 for V (B, N, D), centroids (B, K, D) -> (B, K, N)."""
    cross = torch.bmm(centroids, V.transpose(1, 2))
    return (centroids.square().sum(-1)[..., None] - 2 * cross + V.square().sum(-1)[:, None]).clamp_min(0)


def _nearest(dist):
    """(distance, index) of the nearest of C centroids, dist (B, R, C, N) -> two (B, R, N); a tie
    goes to the first, as argmin. A loop over the few clusters: on CPU, torch's argmin over so short
    an axis took most of k-means' time (k-means is 1.7x faster without it)."""
    closest, index = dist[:, :, 0], torch.zeros_like(dist[:, :, 0], dtype=torch.long)
    for c in range(1, dist.shape[2]):
        closer = dist[:, :, c] < closest
        closest = torch.minimum(closest, dist[:, :, c])
        index.masked_fill_(closer, c)
    return closest, index


def _kmeans_plus_plus(V, w, num_clusters, restarts, seed):
    """Weighted k-means++ seeding, (B, R, C, D): the first centre drawn with probability ∝ w_i, each
    next one ∝ w_i * (squared distance to the nearest centre so far). The uniform draws come from
    one CPU generator and are shared by all utterances, so an utterance gets the same centres
    alone or in a batch, on any device."""
    B, N, D = V.shape
    generator = torch.Generator().manual_seed(seed)
    draws = torch.rand(restarts, num_clusters, generator=generator, dtype=torch.float64).to(V.device)
    weight = w.to(torch.float64)[:, None, :].expand(B, restarts, N)
    centroids = V.new_zeros(B, restarts, num_clusters, D)
    nearest = None
    prob = weight
    for k in range(num_clusters):
        cdf = prob.cumsum(-1)
        total = cdf[..., -1:]
        # fewer distinct voting points than clusters: every voting bin is at distance 0, draw by weight
        cdf = torch.where(total > 0, cdf, weight.cumsum(-1))
        target = draws[:, k].expand(B, restarts)[..., None] * cdf[..., -1:]
        index = torch.searchsorted(cdf, target, right=True).clamp_max(N - 1)  # (B, R, 1)
        centre = torch.gather(V, 1, index.expand(B, restarts, D))  # (B, R, D)
        centroids[:, :, k] = centre
        dist = _squared_distances(V, centre).to(torch.float64)  # (B, R, N)
        nearest = dist if nearest is None else torch.minimum(nearest, dist)
        prob = weight * nearest
    return centroids


def kmeans(emb, num_clusters, weights=None, iters=KMEANS_ITERATIONS, restarts=KMEANS_RESTARTS, seed=0):
    """Weighted k-means of each utterance's embeddings.

    emb (B, N, D); weights (B, N) >= 0 or None (all 1): only bins with weight > 0 vote, i.e. move the
    centroids (weighted means) and count in the inertia; e.g. losses.mixture_activity keeps the
    bins within 40 dB of the loudest one. An utterance with no voting bin lets all its bins vote.
    k-means++ seeding, `restarts` runs per utterance, all run at once, deterministic given `seed`;
    an emptied cluster keeps its previous centroid. Returns labels (B, N) long for every bin (silent
    ones too: nearest centroid) and centroids (B, C, D) of the run with the lowest weighted inertia.
    """
    _check_embeddings(emb, weights)
    if num_clusters < 1 or restarts < 1:
        raise ValueError(f"k-means needs num_clusters >= 1 and restarts >= 1, got {num_clusters}, {restarts}")
    B, N, D = emb.shape
    if N == 0:
        raise ValueError("k-means of an utterance without bins")
    V = _float(emb).detach()
    if weights is None:
        w = torch.ones(B, N, dtype=V.dtype, device=V.device)
    else:
        w = weights.detach().to(V.dtype)
        if (w < 0).any() or not torch.isfinite(w).all():
            raise ValueError("k-means weights must be finite and >= 0")
        w = torch.where((w.sum(-1) > 0)[:, None], w, torch.ones_like(w))
    C, R = num_clusters, restarts
    centroids = _kmeans_plus_plus(V, w, C, R, seed).reshape(B, R * C, D)
    clusters = torch.arange(C, device=V.device)[:, None]  # (C, 1)
    for _ in range(iters):
        _, nearest = _nearest(_squared_distances(V, centroids).view(B, R, C, N))  # (B, R, N)
        members = (nearest[:, :, None] == clusters).to(V.dtype) * w[:, None, None]  # (B, R, C, N)
        members = members.view(B, R * C, N)
        mass = members.sum(-1, keepdim=True)  # (B, R*C, 1)
        means = torch.bmm(members, V) / mass.clamp_min(torch.finfo(V.dtype).tiny)
        updated = torch.where(mass > 0, means, centroids)
        if torch.equal(updated, centroids):
            break
        centroids = updated
    closest, labels = _nearest(_squared_distances(V, centroids).view(B, R, C, N))  # (B, R, N)
    inertia = (closest * w[:, None]).sum(-1)  # (B, R)
    best = inertia.argmin(-1)  # (B,)
    labels = torch.gather(labels, 1, best.view(B, 1, 1).expand(B, 1, N)).squeeze(1)
    centroids = centroids.view(B, R, C, D)[torch.arange(B, device=V.device), best]
    return labels, centroids


# ---------------------------------------------------------------------------------------------
# matched run-time inference


def _objective_function(objective):
    """prepare(V, w) -> (Y -> (B,) losses): the objective of a relaxed assignment, named (the
    paper's formula for any Y, losses.continuous_dc_loss) or a function f(V, Y, w)."""
    if callable(objective):
        return lambda V, w: lambda Y: objective(V, Y, w)
    if objective not in losses.CONTINUOUS_DC_LOSSES:
        raise ValueError(f"unknown DC objective '{objective}': use one of {', '.join(losses.DC_OBJECTIVES)}")
    return losses.CONTINUOUS_DC_LOSSES[objective]


def _relaxed_assignment(logits):
    """Y (B, N, C) from the logits Z (B, N, C - 1): softmax([Z, 0]), which at C = 2 is the paper's
    Y_1 = logistic(Z), Y_2 = 1 - Y_1, computed so (a softmax over a last axis of 2 is 7x slower)."""
    if logits.shape[-1] == 1:
        first = torch.sigmoid(logits)
        return torch.cat([first, 1 - first], -1)
    return torch.softmax(torch.nn.functional.pad(logits, (0, 1)), -1)


def matched_inference(
    emb,
    labels,
    weights,
    objective,
    steps=MATCHED_STEPS,
    lr=MATCHED_LR,
    num_clusters=None,
    confidence=MATCHED_CONFIDENCE,
):
    """Matched run-time inference: refine the k-means assignment by minimizing the model's own DC
    training objective over a relaxed assignment, the embeddings fixed (Wang et al. 2018).

    emb (B, N, D); labels (B, N) from `kmeans`; weights (B, N) the training objective's bin weights
    (losses.dc_weights with the system's weighting, zero on padded bins); objective a name of
    losses.DC_LOSSES or a function f(V, Y, w) -> (B,). num_clusters C defaults to labels.max() + 1
    (at least 2): pass it when a cluster may be empty.

    A named objective is evaluated as the paper writes it for a continuous Y
    (losses.continuous_dc_loss), not with the training forms' one-hot identities: on a relaxed Y
    those of lda and wkm are concave in Y and would keep the masks binary.

    Relaxation, as the paper's "Y = logistic(Z)": for C = 2, Y_1 = logistic(Z) and Y_2 = 1 - Y_1,
    one unconstrained Z per bin; for C > 2 its extension Y = softmax([Z_1 .. Z_C-1, 0]) (C - 1
    logits per bin, the same thing at C = 2). "We initialize ... using the binary mask obtained from
    k-means clustering ... ones to 0.99 and zeros to 0.01, and then apply the logit": Z starts at
    logit(0.99) where the k-means label is source 1, logit(0.01) elsewhere (for C > 2: `confidence`
    on the label, the rest shared). Then `steps` Adam steps on Z ("a gradient descent-based
    algorithm such as Adam"), the embeddings fixed.

    Returns masks (B, N, C) in [0, 1] summing to 1 over C: per utterance the assignment of lowest
    objective among the hard k-means assignment itself, the relaxed start and every iterate, all
    scored by the same function, so the objective never ends above its k-means value (a diverged
    step is never kept).
    """
    _check_embeddings(emb, weights)
    if tuple(labels.shape) != tuple(emb.shape[:2]):
        raise ValueError(f"labels are {tuple(labels.shape)}, the embeddings {tuple(emb.shape)}")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), got {confidence}")
    prepare = _objective_function(objective)
    C = num_clusters if num_clusters is not None else max(int(labels.max()) + 1, 2)
    if int(labels.min()) < 0 or int(labels.max()) >= C:
        raise ValueError(f"labels must lie in [0, {C}), got [{int(labels.min())}, {int(labels.max())}]")
    # The caller may be in no_grad or inference mode (separation): the clones are ordinary tensors.
    with torch.inference_mode(False), torch.enable_grad():
        V = _float(emb).detach().clone()
        w = weights.detach().to(V.dtype).clone()
        hard = torch.nn.functional.one_hot(labels.detach().clone(), C).to(V.dtype)
        # what depends on the fixed embeddings alone is computed once: a step then costs O(N C (D + C))
        objective_of = prepare(V, w)
        best_Y = hard
        best_loss = objective_of(hard).detach()
        start = torch.where(hard > 0, confidence, (1 - confidence) / (C - 1)).to(V.dtype)
        logits = (start[..., :-1] / start[..., -1:]).log().requires_grad_()  # Z, (B, N, C - 1)
        optimizer = torch.optim.Adam([logits], lr=lr)
        for step in range(steps + 1):
            Y = _relaxed_assignment(logits)
            loss = objective_of(Y)
            better = loss.detach() < best_loss  # False on NaN: a diverged step is never kept
            best_loss = torch.where(better, loss.detach(), best_loss)
            best_Y = torch.where(better[:, None, None], Y.detach(), best_Y)
            if step == steps:
                break
            optimizer.zero_grad()
            loss.sum().backward()  # utterances are independent: their gradients do not mix
            optimizer.step()
    return best_Y


# ---------------------------------------------------------------------------------------------
# phase reconstruction


def _check_spectrogram(name, spec, stft_config, length):
    frames = dsp.num_frames(length, stft_config)
    if spec.dim() < 2 or tuple(spec.shape[-2:]) != (frames, stft_config.num_bins):
        raise ValueError(
            f"{name} is {tuple(spec.shape)}, a {length}-sample signal has "
            f"(..., {frames}, {stft_config.num_bins}) STFT bins with this STFT config"
        )


def _unit_phase(spec):
    """e^{j angle(spec)}; angle 0 where spec is 0."""
    return torch.polar(torch.ones_like(spec.real), spec.angle())


def griffin_lim(magnitude, stft_config, length, iters, init_spec=None):
    """Griffin-Lim: a signal of `length` samples whose STFT magnitude approaches `magnitude`
    (..., T, F), each leading index (source) on its own. The phase starts from init_spec (e.g. the
    mixture STFT, broadcast over the sources) or zero; each iteration keeps the phase of the STFT of
    the iSTFT of the current estimate. Returns (..., length)."""
    _check_spectrogram("magnitude", magnitude, stft_config, length)
    phase = torch.ones_like(magnitude, dtype=torch.complex64 if magnitude.dtype != torch.float64 else torch.complex128)
    if init_spec is not None:
        _check_spectrogram("init_spec", init_spec, stft_config, length)
        phase = phase * _unit_phase(init_spec)
    for _ in range(iters):
        phase = _unit_phase(dsp.stft(dsp.istft(magnitude * phase, stft_config, length), stft_config))
    return dsp.istft(magnitude * phase, stft_config, length)


def misi(mix_spec, magnitudes, stft_config, length, iters=MISI_ITERATIONS, noise_source=False):
    """Multiple input spectrogram inversion (Gunawan & Sen 2010).

    mix_spec (..., T, F) the mixture STFT; magnitudes (..., C, T, F) the sources' estimated
    magnitudes. All sources start with the mixture phase. Each iteration: iSTFT every source,
    add (mixture - sum of sources) / C to each in the time domain, keep the phase of their STFTs.
    The returned signals (..., C, length) are the last iSTFTs with the error spread once more, so
    they always sum to the mixture iSTFT(mix_spec); iters=0 is the mixture-phase reconstruction
    with its error spread.

    noise_source=True is for a mixture that holds noise besides the C sources (LibriMix's mix_both):
    there, making the speakers sum to the mixture puts the noise into them, which can cost more than
    the phase gains. The residual max(|X| - sum of the magnitudes, 0), which for masked magnitudes
    is |X| times the masks' complement, is then one more source of the consistency step, with its
    own phase, and takes its share of the error; the C speakers are returned, and they sum to the
    mixture less that noise estimate. False: the algorithm above, unchanged.
    """
    _check_spectrogram("mix_spec", mix_spec, stft_config, length)
    _check_spectrogram("magnitudes", magnitudes, stft_config, length)
    if magnitudes.dim() < 3 or magnitudes.shape[:-3] != mix_spec.shape[:-2]:
        raise ValueError(
            f"magnitudes are {tuple(magnitudes.shape)}, the mixture {tuple(mix_spec.shape)}: "
            "give (..., sources, frames, bins) for a (..., frames, bins) mixture"
        )
    num_speakers = magnitudes.shape[-3]
    if noise_source:
        noise = (mix_spec.abs() - magnitudes.sum(-3)).clamp_min(0)
        magnitudes = torch.cat([magnitudes, noise.unsqueeze(-3).to(magnitudes.dtype)], dim=-3)
    num_sources = magnitudes.shape[-3]
    mixture = dsp.istft(mix_spec, stft_config, length).unsqueeze(-2)  # (..., 1, length)
    phase = _unit_phase(mix_spec).unsqueeze(-3)
    for step in range(iters + 1):
        sources = dsp.istft(magnitudes * phase, stft_config, length)
        sources = sources + (mixture - sources.sum(-2, keepdim=True)) / num_sources
        if step == iters:
            return sources[..., :num_speakers, :]
        phase = _unit_phase(dsp.stft(sources, stft_config))
