"""The training objectives against direct dense computations from their definitions."""

import itertools
import math

import pytest
import torch

from nnet import config, losses

F64 = torch.float64  # the dense references and gradcheck want double precision

DC_CONFIG = {"dc_objective": "classic", "dc_weights": "none"}
MI_CONFIG = {"mi_target": "tpsa", "mi_norm": "l1"}
CONFIGS = {
    "dc": {"type": "dc", **DC_CONFIG},
    "mi": {"type": "mi", **MI_CONFIG},
    "chimera": {"type": "chimera", **DC_CONFIG, **MI_CONFIG, "alpha": 0.3},
    "joint": {"type": "joint", **DC_CONFIG, **MI_CONFIG, "lambda": 0.4},
    "dl": {"type": "dl", **MI_CONFIG, "gamma": 0.1},
    "dl+dc": {"type": "dl", **DC_CONFIG, **MI_CONFIG, "gamma": 0.1, "lambda": 0.2},
}


def make_batch(lengths, frames=None, bins=5, num_spk=2, emb_dim=3, seed=0):
    """Random spectra, unit embeddings and masks; padded frames hold garbage the losses must ignore."""
    gen = torch.Generator().manual_seed(seed)
    batch_size, frames = len(lengths), frames or max(lengths)
    src = torch.randn(batch_size, num_spk, frames, bins, 2, generator=gen, dtype=F64)
    src = torch.view_as_complex(src * torch.rand(batch_size, num_spk, frames, bins, 1, generator=gen, dtype=F64) * 3)
    mix = src.sum(1)
    emb = torch.randn(batch_size, frames, bins, emb_dim, generator=gen, dtype=F64)
    emb = torch.nn.functional.normalize(emb, dim=-1)
    masks = torch.rand(batch_size, num_spk, frames, bins, generator=gen, dtype=F64) * 1.2
    lengths = torch.tensor(lengths)
    valid = torch.arange(frames)[None, :] < lengths[:, None]
    batch = {"mix_spec": mix, "src_spec": src, "lengths": lengths, "valid": valid}
    return {"emb": emb, "masks": masks}, batch


def cut(outputs, batch, b):
    """Utterance b of a batch, without its padding, as a batch of one."""
    n = int(batch["lengths"][b])
    out = {"emb": outputs["emb"][b : b + 1, :n], "masks": outputs["masks"][b : b + 1, :, :n]}
    one = {
        "mix_spec": batch["mix_spec"][b : b + 1, :n],
        "src_spec": batch["src_spec"][b : b + 1, :, :n],
        "lengths": batch["lengths"][b : b + 1],
        "valid": batch["valid"][b : b + 1, :n],
    }
    return out, one


# ---------------------------------------------------------------------------------------------
# dense N x N definitions, one utterance: V (N, D), Y (N, C) one-hot or relaxed (rows summing to 1),
# w (N,). The guards' constants are written here, not read from nnet.losses, so that a change of
# one there shows as a failure here.

DEGREE_FLOOR = 0.01  # dc_laplacian: each degree >= 0.01 sum(w)
ROW_FLOOR = 0.1  # dc_doubly_stochastic: |row sum| >= 0.1
COLUMN_FLOOR = 0.01  # dc_doubly_stochastic: column mass >= 0.01 sum(w) / D
SINKHORN_STEPS = 10  # dc_doubly_stochastic_shifted's scaling iterations


def dense_weights(mix, src, kind):
    """Wang et al. 2018 Sec. 3, one utterance: mix (T, F), src (C, T, F)."""
    mag = mix.abs().flatten()
    if kind == "none":
        return torch.ones_like(mag)
    if kind == "va":  # w_i = max_k [10 log10(|s_k,i|^2 / max_j |s_k,j|^2) > beta], beta = -40
        power = src.abs().flatten(1) ** 2
        db = 10 * torch.log10(power / power.max(1, keepdim=True).values)
        return (db > -40).any(0).to(mag.dtype)
    return mag / mag.sum()  # w_i = |x_i| / sum_j |x_j|


def dense_assignment(src):
    mag = src.abs().flatten(1)  # (C, N)
    return (mag == mag.max(0, keepdim=True).values).T.to(mag.dtype)


def shifted_affinity(V):
    return (1 + V @ V.T) / 2


def degree_normalized(T, w):
    """D^-1/2 T D^-1/2 with D = diag(T W 1), eq. (2)'s normalization of the target affinity T = Y Y^T."""
    d = T @ w
    return T / torch.sqrt(torch.outer(d, d))


def stochastic_target(Y, w):
    """Y_s Y_s^T of eq. (3) applied to Y: Y_bar = diag(Y 1)^-1 Y, Y_s = Y_bar diag(1^T W Y_bar)^-1/2."""
    Y_bar = torch.diag(1 / Y.sum(1)) @ Y
    return Y_bar @ torch.diag(1 / (w @ Y_bar)) @ Y_bar.T


def pair_weighted_sq(E, w):
    return (torch.outer(w, w) * E**2).sum()


def projection_residual(V, Y, w):
    """||W^1/2 (V - Y (Y^T W Y)^-1 Y^T W V)||_F^2: eq. (5)'s numerator with W^1/2 on V and Y (pinv for
    an empty cluster's zero row and column of Y^T W Y)."""
    W = torch.diag(w)
    residual = V - Y @ torch.linalg.pinv(Y.T @ W @ Y) @ Y.T @ W @ V
    return (w[:, None] * residual**2).sum()


def dense_dc(objective, V, Y, w):
    if objective == "classic":
        return pair_weighted_sq(V @ V.T - Y @ Y.T, w) / w.sum() ** 2
    if objective == "laplacian":  # eq. (2) on A = V V^T, degrees with the bins' masses w
        A = V @ V.T
        d = torch.clamp(A @ w, min=DEGREE_FLOOR * w.sum())
        return pair_weighted_sq(A / torch.sqrt(torch.outer(d, d)) - degree_normalized(Y @ Y.T, w), w)
    if objective == "doubly_stochastic":  # eq. (3): V_bar = diag(V 1)^-1 V, V_s = V_bar diag(1^T W V_bar)^-1/2
        rows = V.sum(1)
        rows = torch.where(rows < 0, -1.0, 1.0) * rows.abs().clamp(min=ROW_FLOOR)
        V_bar = torch.diag(1 / rows) @ V
        cols = torch.clamp(w @ V_bar, min=COLUMN_FLOOR * w.sum() / V.shape[1])
        S_v = V_bar @ torch.diag(1 / cols) @ V_bar.T
        return pair_weighted_sq(S_v - stochastic_target(Y, w), w)
    if objective == "laplacian_shifted":
        A = shifted_affinity(V)
        d = A @ w
        lap_v = torch.eye(len(w), dtype=F64) - A / torch.sqrt(torch.outer(d, d))
        lap_y = torch.eye(len(w), dtype=F64) - degree_normalized(Y @ Y.T, w)
        return pair_weighted_sq(lap_v - lap_y, w)
    if objective == "doubly_stochastic_shifted":
        A = shifted_affinity(V)
        s = torch.ones_like(w)
        for _ in range(SINKHORN_STEPS):
            s = torch.sqrt(s / (A @ (w * s)))
        return pair_weighted_sq(s[:, None] * A * s[None, :] - stochastic_target(Y, w), w)
    if objective == "lda":  # eq. (5)'s first line, W^1/2 on V, Y and 1
        return projection_residual(V, Y, w) / projection_residual(V, torch.ones_like(w)[:, None], w)
    if objective == "wkm":
        root = torch.sqrt(w)[:, None]
        proj_v = (root * V) @ torch.linalg.pinv(root * V)
        proj_y = (root * Y) @ torch.linalg.pinv(root * Y)
        return V.shape[1] - (proj_v * proj_y).sum()
    raise AssertionError(objective)


@pytest.mark.parametrize("num_spk", [2, 3])
@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_dc_low_rank_equals_dense_affinity_form(objective, weights, num_spk):
    outputs, batch = make_batch([6, 4], bins=5, num_spk=num_spk, emb_dim=4, seed=num_spk)
    # a quiet corner below -40 dB so that va weights are not all ones
    batch["mix_spec"][:, :2, :2] *= 1e-3
    batch["src_spec"][:, :, :2, :2] *= 1e-3
    got = losses.dc_loss(outputs["emb"], batch["mix_spec"], batch["src_spec"], batch["valid"], objective, weights)
    for b, n in enumerate(batch["lengths"].tolist()):
        V = outputs["emb"][b, :n].reshape(-1, 4)
        Y = dense_assignment(batch["src_spec"][b, :, :n])
        w = dense_weights(batch["mix_spec"][b, :n], batch["src_spec"][b, :, :n], weights)
        if weights == "va":
            assert 0 < w.sum() < len(w)
        want = dense_dc(objective, V, Y, w)
        assert torch.isclose(got[b], want, rtol=1e-5, atol=1e-9), (b, got[b].item(), want.item())


def test_whitened_kmeans_is_the_papers_projection_residual():
    outputs, batch = make_batch([5], bins=6, num_spk=3, emb_dim=4)
    V = outputs["emb"][0].reshape(-1, 4)
    Y = dense_assignment(batch["src_spec"][0])
    evals, evecs = torch.linalg.eigh(V.T @ V)
    whitened = V @ evecs @ torch.diag(evals.rsqrt()) @ evecs.T  # V (V^T V)^-1/2
    residual = whitened - Y @ torch.linalg.inv(Y.T @ Y) @ Y.T @ whitened
    got = losses.dc_wkm(V[None], Y[None], torch.ones(1, len(V), dtype=F64))
    assert torch.isclose(got[0], (residual**2).sum(), rtol=1e-5)


def test_whitened_kmeans_gradient_of_the_embeddings():
    """dc_wkm's own backward (_WhitenedKMeans): the embeddings' gradient checked by finite
    differences in float64 on the one-hot Y of training, one utterance with an empty cluster (its
    clamped mass); the assignment and the weights are refused (a relaxed Y takes
    continuous_dc_loss, differentiated by autograd)."""
    torch.manual_seed(3)
    V = torch.nn.functional.normalize(torch.randn(2, 12, 3, dtype=F64), dim=-1).requires_grad_()
    Y = torch.nn.functional.one_hot(torch.tensor([[0, 1, 2] * 4, [0, 1] * 6]), 3).to(F64)  # 2nd: no cluster 2
    w = torch.rand(2, 12, dtype=F64) + 0.1
    assert torch.autograd.gradcheck(lambda v: losses.dc_wkm(v, Y, w), (V,))
    with pytest.raises(ValueError, match="does not differentiate the bin weights"):
        losses.dc_wkm(V, Y, w.clone().requires_grad_())
    with pytest.raises(ValueError, match=r"for a relaxed assignment use losses.continuous_dc_loss\('wkm'"):
        losses.dc_wkm(V, Y.clone().requires_grad_(), w)
    with torch.no_grad():  # no gradient asked for: the same value
        assert torch.allclose(losses.dc_wkm(V, Y, w), losses.dc_wkm(V.detach(), Y, w))
    mixed = losses.dc_wkm(V.float(), Y, w)  # float64 targets with float32 embeddings
    mixed.sum().backward()
    assert mixed.dtype == torch.float32 and V.grad.dtype == torch.float64 and V.grad.abs().sum() > 0


def relaxed_case(num_spk, weights, seed):
    """One utterance of 6 frames x 5 bins (a quiet corner below -40 dB, so that va weights are not all
    ones): unit embeddings V (N, 4), a relaxed assignment Y (N, C), rows from nearly one-hot to
    nearly uniform, and the weights w (N,) of its spectra."""
    outputs, batch = make_batch([6], bins=5, num_spk=num_spk, emb_dim=4, seed=seed)
    batch["mix_spec"][:, :2, :2] *= 1e-3
    batch["src_spec"][:, :, :2, :2] *= 1e-3
    V = outputs["emb"][0].reshape(-1, 4)
    Y = torch.softmax(3 * torch.randn(len(V), num_spk, generator=torch.Generator().manual_seed(seed), dtype=F64), -1)
    w = dense_weights(batch["mix_spec"][0], batch["src_spec"][0], weights)
    return V, Y, w


@pytest.mark.parametrize("num_spk", [2, 3])
@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_continuous_objectives_are_the_dense_formulas_on_a_relaxed_assignment(objective, weights, num_spk):
    """Matched inference's objectives (continuous_dc_loss) against the dense N x N formulas with a
    relaxed Y: value, and gradient in Y along the simplex (rows of Y sum to 1: the dense eq. (3)
    divides by them, the low-rank form takes them as 1, so only the gradients' components within
    the rows' sum-preserving directions, which the logits of matched inference move along, agree)."""
    V, Y, w = relaxed_case(num_spk, weights, seed=30 + num_spk)
    if weights == "va":
        assert 0 < w.sum() < len(w)
    Y.requires_grad_()
    got = losses.continuous_dc_loss(objective, V[None], w[None])(Y[None])[0]
    want = dense_dc(objective, V, Y, w)
    assert torch.isclose(got, want, rtol=1e-5, atol=1e-9), (got.item(), want.item())
    (grad_got,) = torch.autograd.grad(got, Y)
    (grad_want,) = torch.autograd.grad(want, Y)
    grad_got, grad_want = (g - g.mean(1, keepdim=True) for g in (grad_got, grad_want))
    assert grad_want.abs().max() > 0
    assert torch.allclose(grad_got, grad_want, rtol=1e-4, atol=1e-5 * grad_want.abs().max())


@pytest.mark.parametrize("objective", ["lda", "wkm"])
def test_one_hot_forms_of_lda_and_wkm_are_not_the_papers_formula_on_a_relaxed_assignment(objective):
    """Why matched inference does not use DC_LOSSES: dc_lda and dc_wkm take Y^T W Y = diag(1^T W Y),
    which a relaxed Y breaks."""
    V, Y, w = relaxed_case(2, "mr", seed=40)
    one_hot_form = losses.DC_LOSSES[objective](V[None], Y[None], w[None])[0]
    assert not torch.isclose(one_hot_form, dense_dc(objective, V, Y, w), rtol=1e-3)


@pytest.mark.parametrize("num_spk", [2, 3])
@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_training_forms_equal_the_continuous_ones_on_a_one_hot_assignment(objective, weights, num_spk):
    """Training keeps its forms (DC_LOSSES; lda and wkm use one-hot identities) only because they
    equal the paper's formula wherever training evaluates them: on a one-hot Y, also with a cluster
    left empty (as k-means may leave one at run time) and with padded bins."""
    outputs, batch = make_batch([6, 4], bins=5, num_spk=num_spk, emb_dim=4, seed=50 + num_spk)
    batch["mix_spec"][:, :2, :2] *= 1e-3
    batch["src_spec"][:, :, :2, :2] *= 1e-3
    V = outputs["emb"].flatten(1, 2)
    Y = losses.ideal_binary_assignment(batch["src_spec"]).flatten(1, 2)
    w = losses.dc_weights(batch["mix_spec"], batch["src_spec"], batch["valid"], weights).flatten(1)
    emptied = Y.clone()
    emptied[..., 0] += emptied[..., -1]
    emptied[..., -1] = 0
    for one_hot in (Y, emptied):
        training = losses.DC_LOSSES[objective](V, one_hot, w)
        literal = losses.continuous_dc_loss(objective, V, w)(one_hot)
        assert torch.allclose(training, literal, rtol=1e-6, atol=0), (training, literal)


def test_lda_is_eq_5s_cluster_means_on_a_one_hot_assignment():
    """Eq. (5)'s second line (scatter about the cluster means) is its first line for a one-hot Y."""
    outputs, batch = make_batch([6], bins=5, num_spk=3, emb_dim=4, seed=6)
    V = outputs["emb"][0].reshape(-1, 4)
    Y = dense_assignment(batch["src_spec"][0])
    w = dense_weights(batch["mix_spec"][0], batch["src_spec"][0], "mr")
    labels = Y.argmax(1)
    means = torch.stack([(w[labels == c, None] * V[labels == c]).sum(0) / w[labels == c].sum() for c in range(3)])
    mean = (w[:, None] * V).sum(0) / w.sum()
    second_line = (w * (V - means[labels]).square().sum(1)).sum() / (w * (V - mean).square().sum(1)).sum()
    assert torch.isclose(dense_dc("lda", V, Y, w), second_line, rtol=1e-12)


def test_continuous_objective_names_are_checked():
    V = torch.nn.functional.normalize(torch.randn(1, 8, 3, dtype=F64), dim=-1)
    assert tuple(losses.CONTINUOUS_DC_LOSSES) == losses.DC_OBJECTIVES
    with pytest.raises(ValueError, match="unknown DC objective 'kmeans': use one of classic, laplacian"):
        losses.continuous_dc_loss("kmeans", V, torch.ones(1, 8, dtype=F64))


def test_doubly_stochastic_shifted_scaling_converges():
    outputs, batch = make_batch([8], bins=6, num_spk=2, emb_dim=4)
    V = outputs["emb"][0].reshape(-1, 4)
    w = dense_weights(batch["mix_spec"][0], batch["src_spec"][0], "mr")
    A = shifted_affinity(V)
    s = torch.ones_like(w)
    for _ in range(losses.SINKHORN_ITERATIONS):
        s = torch.sqrt(s / (A @ (w * s)))
    rows = (s[:, None] * A * s[None, :]) @ w
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-4)


@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
def test_graph_objectives_are_the_papers_formulas_on_nonnegative_embeddings(weights):
    """Where eqs. (2)-(4) are defined (V >= 0), no guard binds: the loss is the paper's formula
    with no floor, and the closed form of eq. (3) is doubly stochastic."""
    outputs, batch = make_batch([7], bins=5, num_spk=2, emb_dim=3, seed=4)
    V = torch.nn.functional.normalize(outputs["emb"][0].reshape(-1, 3).abs() + 0.05, dim=-1)
    Y = dense_assignment(batch["src_spec"][0])
    w = dense_weights(batch["mix_spec"][0], batch["src_spec"][0], weights)
    ww = torch.outer(w, w)
    D_v, D_y = torch.diag((V @ V.T) @ w), torch.diag((Y @ Y.T) @ w)
    L_v = torch.linalg.inv(D_v).sqrt() @ V @ V.T @ torch.linalg.inv(D_v).sqrt()
    L_y = torch.linalg.inv(D_y).sqrt() @ Y @ Y.T @ torch.linalg.inv(D_y).sqrt()
    want_l = (ww * (L_v - L_y) ** 2).sum()
    V_bar = torch.linalg.inv(torch.diag(V @ torch.ones(3, dtype=F64))) @ V
    V_s = V_bar @ torch.linalg.inv(torch.diag(w @ V_bar)).sqrt()
    assert torch.allclose(V_s @ V_s.T @ w, torch.ones_like(w))  # doubly stochastic (w.r.t. W)
    Y_s = Y @ torch.linalg.inv(torch.diag(w @ Y)).sqrt()
    want_s = (ww * (V_s @ V_s.T - Y_s @ Y_s.T) ** 2).sum()
    got_l = losses.dc_laplacian(V[None], Y[None], w[None])[0]
    got_s = losses.dc_doubly_stochastic(V[None], Y[None], w[None])[0]
    assert torch.isclose(got_l, want_l, rtol=1e-9) and torch.isclose(got_s, want_s, rtol=1e-9)


@pytest.mark.parametrize("objective", ["laplacian", "doubly_stochastic"])
def test_graph_objectives_stay_finite_where_the_paper_is_undefined(objective):
    """tanh embeddings: degrees V V^T 1 and row sums V 1 of zero or below, where eqs. (2)-(3) divide
    by zero or take the root of a negative number; the guards keep loss and gradient finite."""
    V = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.6, -0.6], [-0.6, 0.6]], dtype=F64)[None]
    V = torch.nn.functional.normalize(V, dim=-1).requires_grad_()
    Y = torch.nn.functional.one_hot(torch.tensor([[0, 1, 0, 1, 0, 1]]), 2).to(F64)
    w = torch.ones(1, 6, dtype=F64)
    assert (V @ V.transpose(1, 2) @ w[..., None]).abs().max() < 1e-12  # every degree is 0
    assert V.sum(-1)[0, 4:].abs().max() < 1e-12  # two row sums are 0
    fn = losses.DC_LOSSES[objective]
    loss = fn(V, Y, w)
    loss.sum().backward()
    assert torch.isfinite(loss).all() and loss.item() > 0.1
    assert torch.isfinite(V.grad).all() and V.grad.abs().sum() > 0
    # a bin without weight (padding, W_VA) among bins of positive degree: sqrt(w / d) at w = 0
    positive = torch.nn.functional.normalize(V.detach().abs() + 0.1, dim=-1).requires_grad_()
    w[0, 5] = 0.0
    fn(positive, Y, w).sum().backward()
    assert torch.isfinite(positive.grad).all() and positive.grad.abs().sum() > 0


def test_dc_objectives_at_the_ideal_embedding():
    # two clusters; embeddings are their one-hot labels (the paper's objectives), antipodal (shifted ones)
    labels = torch.tensor([0, 1, 1, 0, 1, 0, 0, 1, 1])
    Y = torch.nn.functional.one_hot(labels, 2).to(torch.float64)[None]
    w = torch.rand(1, 9, dtype=F64) + 0.1
    assert losses.dc_classic(Y, Y, w).item() == pytest.approx(0, abs=1e-12)
    assert losses.dc_lda(Y, Y, w).item() == pytest.approx(0, abs=1e-12)
    assert losses.dc_wkm(Y, Y, w).item() == pytest.approx(0, abs=1e-5)  # D - C with D = C = 2
    antipodal = (2 * labels - 1).to(torch.float64)[None, :, None]
    assert losses.dc_laplacian(Y, Y, w).item() == pytest.approx(0, abs=1e-9)
    assert losses.dc_doubly_stochastic(Y, Y, w).item() == pytest.approx(0, abs=1e-9)
    assert losses.dc_laplacian_shifted(antipodal, Y, w).item() == pytest.approx(0, abs=1e-9)
    assert losses.dc_doubly_stochastic_shifted(antipodal, Y, w).item() == pytest.approx(0, abs=1e-9)
    # and a wrong embedding is penalized by all of them
    wrong = torch.nn.functional.one_hot(torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0]), 2).to(torch.float64)[None]
    for fn in losses.DC_LOSSES.values():
        assert (
            fn(
                wrong * 2 - 1 if fn in (losses.dc_laplacian_shifted, losses.dc_doubly_stochastic_shifted) else wrong,
                Y,
                w,
            ).item()
            > 0.05
        )


@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_dc_objectives_ignore_a_global_scale_of_the_weights(objective):
    outputs, batch = make_batch([6], bins=5, num_spk=2, emb_dim=4, seed=8)
    V = outputs["emb"].flatten(1, 2)
    Y = losses.ideal_binary_assignment(batch["src_spec"]).flatten(1, 2)
    w = losses.dc_weights(batch["mix_spec"], batch["src_spec"], batch["valid"], "mr").flatten(1)
    fn = losses.DC_LOSSES[objective]
    assert torch.isclose(fn(V, Y, 7.0 * w), fn(V, Y, w), rtol=1e-6)
    assert not torch.isclose(fn(V, Y, w.sqrt()), fn(V, Y, w), rtol=1e-6)


def test_dc_weights_from_their_definitions():
    # two sources, 3 frames x 3 bins, the last frame padding; W_VA thresholds each source at 40 dB
    # below its own loudest bin, so a bin quiet in the mixture can be active (source 2 is quiet)
    s1 = torch.tensor([[1.0, 0.02, 0.005], [0.5, 0.011, 0.009], [9.0, 9.0, 9.0]], dtype=F64)
    s2 = torch.tensor([[1e-5, 1e-5, 2e-3], [1e-7, 1e-5, 1e-5], [9.0, 9.0, 9.0]], dtype=F64)
    src = torch.polar(torch.stack([s1, s2]), torch.zeros(2, 3, 3, dtype=F64))[None]
    mix = src.sum(1)
    valid = torch.tensor([[True, True, False]])
    va = losses.dc_weights(mix, src, valid, "va")[0]
    # s1: 0.02 is -34 dB of 1.0 (active), 0.011 -39.2 dB (active), 0.009 / 0.005 below -40;
    # s2: its peak 2e-3 at (0, 2) and 1e-5 at -46 dB: only (0, 2) is active for s2
    assert va.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    mr = losses.dc_weights(mix, src, valid, "mr")[0]
    mag = mix.abs()[0]
    assert torch.allclose(mr[:2], mag[:2] / mag[:2].sum()) and mr[2].abs().sum() == 0
    assert torch.isclose(mr.sum(), torch.tensor(1.0, dtype=F64))
    assert losses.dc_weights(mix, src, valid, "none")[0].tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    # the run-time stand-in looks at the mixture: (0, 2) is 2.7e-3 of 1.0, -51 dB: not active
    assert losses.mixture_activity(mix, valid)[0].tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="clean sources"):
        losses.dc_weights(mix, None, valid, "va")


def dc_loss_and_gradient(outputs, batch, objective, weights, path):
    """dc_loss on one path: the (B,) losses and the gradient of sum_b b * loss_b (a distinct weight
    per utterance, so that a gradient routed to the wrong utterance shows)."""
    emb = outputs["emb"].clone().requires_grad_()
    loss = losses.dc_loss(emb, batch["mix_spec"], batch["src_spec"], batch["valid"], objective, weights, path=path)
    (loss * torch.arange(1, len(loss) + 1, dtype=loss.dtype)).sum().backward()
    return loss.detach(), emb.grad


@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_batched_and_chunked_paths_equal_the_dense_form(monkeypatch, objective, weights):
    """dc_loss's two paths (losses.dc_path): the same losses and gradients as each other and as the
    dense N x N form of each utterance alone, differentiated by autograd; the chunked path with one
    utterance per chunk, so that its chunks are exercised."""
    outputs, batch = make_batch([6, 5, 4], bins=5, num_spk=2, emb_dim=4, seed=11)
    batch["mix_spec"][:, :2, :2] *= 1e-3  # a quiet corner, so that va weights are not all ones
    batch["src_spec"][:, :, :2, :2] *= 1e-3
    monkeypatch.setattr(losses, "CHUNK_ELEMENTS", outputs["emb"][0].numel())
    batched, grad_batched = dc_loss_and_gradient(outputs, batch, objective, weights, "batched")
    chunked, grad_chunked = dc_loss_and_gradient(outputs, batch, objective, weights, "chunked")
    assert torch.allclose(batched, chunked, rtol=1e-10, atol=1e-12)
    assert torch.allclose(grad_batched, grad_chunked, rtol=1e-8, atol=1e-12)
    for b, n in enumerate(batch["lengths"].tolist()):
        V = outputs["emb"][b, :n].reshape(-1, 4).clone().requires_grad_()
        Y = dense_assignment(batch["src_spec"][b, :, :n])
        w = dense_weights(batch["mix_spec"][b, :n], batch["src_spec"][b, :, :n], weights)
        want = dense_dc(objective, V, Y, w)
        ((b + 1) * want).backward()
        assert torch.isclose(batched[b], want, rtol=1e-5, atol=1e-9), (b, batched[b].item(), want.item())
        assert grad_batched[b, :n].abs().sum() > 0
        scale = V.grad.abs().max()  # wkm's ridge (1e-6 of V^T W V) moves small entries by ~1e-6 of the largest
        assert torch.allclose(grad_batched[b, :n].reshape(-1, 4), V.grad, rtol=1e-5, atol=1e-5 * scale), b
        assert grad_batched[b, n:].abs().sum() == 0  # padding gets no gradient


def test_the_path_rule_at_the_mini_recipe_and_wsj0_batches():
    """Batched where its autograd temporaries fit in BATCHED_MAX_BYTES: the mini recipe's batch
    (16 x 200 frames x 129 bins, D = 10: 66 MB by the estimate); chunked at wsj0-2mix's
    (32 x 400 x 129, D = 40: 1.06 GB)."""
    assert losses.dc_path(16, 200 * 129, 10) == "batched"
    assert losses.dc_path(32, 400 * 129, 40) == "chunked"
    # the bound itself: 4 values x 4 bytes x 16 x 200 x 129 x 40 is 264 MB, under 2**28 = 268 MB
    assert losses.dc_path(16, 200 * 129, 40) == "batched" and losses.dc_path(17, 200 * 129, 40) == "chunked"


def test_dc_loss_takes_the_path_of_the_rule(monkeypatch):
    outputs, batch = make_batch([6, 5], bins=5, num_spk=2, emb_dim=4, seed=1)
    emb = outputs["emb"].clone().requires_grad_()

    def taken():
        loss = losses.dc_loss(emb, batch["mix_spec"], batch["src_spec"], batch["valid"], "classic", "mr")
        return "chunked" if "ChunkedRecompute" in type(loss.grad_fn).__name__ else "batched"

    bytes_needed = losses.SAVED_PER_EMBEDDING * emb.numel() * 4
    monkeypatch.setattr(losses, "BATCHED_MAX_BYTES", bytes_needed)
    assert taken() == "batched"
    monkeypatch.setattr(losses, "BATCHED_MAX_BYTES", bytes_needed - 1)
    assert taken() == "chunked"
    with pytest.raises(ValueError, match="unknown DC loss path 'dense'"):
        losses.dc_loss(emb, batch["mix_spec"], batch["src_spec"], batch["valid"], "classic", "mr", path="dense")


def test_ideal_binary_assignment_picks_the_loudest_source():
    src = torch.tensor([[[3.0, 0.1]], [[1.0, 2.0]], [[0.5, 0.2]]]) * 1j  # (C=3, T=1, F=2)
    assert losses.ideal_binary_assignment(src).tolist() == [[[1, 0, 0], [0, 1, 0]]]
    tie = torch.tensor([[[1.0, 2.0]], [[3.0, 2.0]], [[3.0, 2.0]]]) * 1j  # the first loudest source wins
    assert losses.ideal_binary_assignment(tie).tolist() == [[[0, 1, 0], [1, 0, 0]]]


# ---------------------------------------------------------------------------------------------
# mask inference and permutation invariance


def dense_target(mix, src, kind, truncation=1.0):
    if kind == "msa":
        return src.abs()
    psa = src.abs() * torch.cos(torch.angle(src) - torch.angle(mix))
    if kind == "psa":
        return psa
    return torch.minimum(torch.where(psa > 0, psa, 0.0), truncation * mix.abs())


def dense_permutation_losses(masks, mix, src, kind, norm, truncation=1.0):
    """Per permutation phi: sum_c mean_tf |M_c |X| - T_phi(c)|^p for one utterance (C, T, F)."""
    result = []
    for perm in itertools.permutations(range(src.shape[0])):
        total = 0.0
        for c, ref in enumerate(perm):
            err = masks[c] * mix.abs() - dense_target(mix, src[ref], kind, truncation)
            total = total + (err.abs() if norm == "l1" else err**2).mean()
        result.append(total)
    return torch.stack(result)


@pytest.mark.parametrize("num_spk", [2, 3])
@pytest.mark.parametrize("norm", config.MI_NORMS)
@pytest.mark.parametrize("target", config.MI_TARGETS)
def test_mi_loss_is_the_best_permutation(target, norm, num_spk):
    outputs, batch = make_batch([5, 3], num_spk=num_spk, seed=7)
    objective = losses.build_objective({"type": "mi", "mi_target": target, "mi_norm": norm, "psa_truncation": 0.7})
    loss, stats = objective(outputs, batch)
    per_utt = []
    for b, n in enumerate(batch["lengths"].tolist()):
        perms = dense_permutation_losses(
            outputs["masks"][b, :, :n], batch["mix_spec"][b, :n], batch["src_spec"][b, :, :n], target, norm, 0.7
        )
        per_utt.append(perms.min())
    assert torch.isclose(loss, torch.stack(per_utt).mean())
    assert stats["loss"] == pytest.approx(loss.item()) and stats["mi"] == pytest.approx(loss.item())


def test_tpsa_truncation_bounds():
    _, batch = make_batch([4], num_spk=2)
    target = losses.mi_targets(batch["mix_spec"], batch["src_spec"], "tpsa", 0.5)
    bound = 0.5 * batch["mix_spec"].abs().unsqueeze(1)
    assert (target >= 0).all() and (target <= bound + 1e-12).all()
    assert (target == bound).any() and (target == 0).any()


def test_pit_by_hand():
    pair = torch.tensor([[[1.0, 5.0], [4.0, 2.0]], [[5.0, 1.0], [2.0, 4.0]]])
    best, perm, perm_loss = losses.pit(pair)
    assert best.tolist() == [3.0, 3.0]
    assert perm.tolist() == [[0, 1], [1, 0]]
    assert perm_loss.tolist() == [[3.0, 9.0], [9.0, 3.0]]
    pair3 = torch.rand(4, 3, 3, dtype=F64)
    best3, perm3, perm_loss3 = losses.pit(pair3)
    for b in range(4):
        brute = {p: sum(float(pair3[b, i, p[i]]) for i in range(3)) for p in itertools.permutations(range(3))}
        assert perm_loss3[b].tolist() == pytest.approx([brute[p] for p in itertools.permutations(range(3))])
        assert tuple(perm3[b].tolist()) == min(brute, key=brute.get)
        assert best3[b] == pytest.approx(min(brute.values()))


@pytest.mark.parametrize("num_spk", [2, 3])
def test_discriminative_loss_is_best_minus_gamma_others(num_spk):
    outputs, batch = make_batch([4, 6], num_spk=num_spk, seed=3)
    cfg = {"type": "dl", "mi_target": "psa", "mi_norm": "l2", "gamma": 0.25}
    loss, stats = losses.build_objective(cfg)(outputs, batch)
    per_utt = []
    for b, n in enumerate(batch["lengths"].tolist()):
        perms = dense_permutation_losses(
            outputs["masks"][b, :, :n], batch["mix_spec"][b, :n], batch["src_spec"][b, :, :n], "psa", "l2"
        )
        best = perms.min()
        per_utt.append(best - 0.25 * (perms.sum() - best))
    assert torch.isclose(loss, torch.stack(per_utt).mean())
    assert stats["dl"] == pytest.approx(loss.item()) and stats["mi_others"] > stats["mi"]


@pytest.mark.parametrize("name", ["dl", "dl+dc"])
def test_discriminative_learning_selects_on_the_best_permutation(name):
    """Model selection reads stats[selects_on] ("mi", the uPIT term; Trainer.validate) for dl, not
    the dl objective, best - gamma x others: here a model whose masks overshoot (1.5 x the ideal
    ones) has the lower dl loss only because its wrong permutation is far worse; its best
    permutation is worse than a blurred model's, and that is what selection must see."""
    outputs, batch = make_batch([5, 4], num_spk=2, seed=12)
    cfg = dict(CONFIGS[name], mi_target="psa", mi_norm="l2")
    objective = losses.build_objective(cfg)
    assert objective.selects_on == "mi" and "mi" in objective.terms
    mix, src = batch["mix_spec"], batch["src_spec"]
    ideal = (losses.mi_targets(mix, src, "psa") / mix.abs().unsqueeze(1)).clamp(0, 1)
    overshoot = dict(outputs, masks=1.5 * ideal)
    blurred = dict(outputs, masks=0.8 * ideal + 0.2 * ideal.flip(1))
    loss_over, stats_over = objective(overshoot, batch)
    loss_blur, stats_blur = objective(blurred, batch)
    assert loss_over < loss_blur  # the dl objective prefers the overshoot
    assert stats_blur[objective.selects_on] < stats_over[objective.selects_on]  # selection does not
    best = [
        dense_permutation_losses(blurred["masks"][b, :, :n], mix[b, :n], src[b, :, :n], "psa", "l2").min()
        for b, n in enumerate(batch["lengths"].tolist())
    ]
    assert stats_blur[objective.selects_on] == pytest.approx(torch.stack(best).mean().item())


def test_selection_figures_of_the_other_objectives():
    """chimera++ on the MI loss alone (Sec. 5.1); dc, mi and DEF joint training on the whole objective."""
    assert losses.build_objective(CONFIGS["chimera"]).selects_on == "mi"
    for name in ("dc", "mi", "joint"):
        assert losses.build_objective(CONFIGS[name]).selects_on == "loss"


def test_weighted_sums_of_parts():
    outputs, batch = make_batch([5, 4], num_spk=2, seed=11)
    dc, _ = losses.build_objective(CONFIGS["dc"])(outputs, batch)
    mi, _ = losses.build_objective(CONFIGS["mi"])(outputs, batch)
    dl, _ = losses.build_objective(CONFIGS["dl"])(outputs, batch)
    chimera, stats = losses.build_objective(CONFIGS["chimera"])(outputs, batch)
    assert torch.isclose(chimera, 0.3 * dc + 0.7 * mi)
    assert stats["dc"] == pytest.approx(dc.item()) and stats["mi"] == pytest.approx(mi.item())
    joint, _ = losses.build_objective(CONFIGS["joint"])(outputs, batch)
    assert torch.isclose(joint, 0.4 * dc + 0.6 * mi)
    dl_dc, _ = losses.build_objective(CONFIGS["dl+dc"])(outputs, batch)
    assert torch.isclose(dl_dc, 0.2 * dc + 0.8 * dl)


@pytest.mark.parametrize("name", CONFIGS)
def test_permuting_the_sources_changes_nothing(name):
    outputs, batch = make_batch([5, 4], num_spk=3, seed=5)
    objective = losses.build_objective(CONFIGS[name])
    loss, _ = objective(outputs, batch)
    for perm in ([2, 0, 1], [1, 0, 2]):
        permuted = dict(batch, src_spec=batch["src_spec"][:, perm])
        assert torch.isclose(objective(outputs, permuted)[0], loss, rtol=1e-10)
    # the masks do matter: flipping them along frequency changes every loss but the pure DC one
    shuffled = dict(outputs, masks=outputs["masks"].flip(-1))
    if name != "dc":
        assert not torch.isclose(objective(shuffled, batch)[0], loss)


PADDING_CASES = [
    (name, objective)
    for name, cfg in CONFIGS.items()
    for objective in (losses.DC_OBJECTIVES if "dc_objective" in cfg else [None])
]


@pytest.mark.parametrize("name, objective", PADDING_CASES)
def test_padded_batch_equals_each_utterance_alone(name, objective):
    cfg = dict(CONFIGS[name])
    if objective:
        cfg.update(dc_objective=objective, dc_weights="va")
    outputs, batch = make_batch([3, 6, 4], frames=8, num_spk=2, seed=2)
    fn = losses.build_objective(cfg)
    loss, _ = fn(outputs, batch)
    alone = [fn(*cut(outputs, batch, b))[0] for b in range(3)]
    assert torch.isclose(loss, torch.stack(alone).mean(), rtol=1e-9)


@pytest.mark.parametrize("name", CONFIGS)
def test_gradcheck_objectives(name):
    outputs, batch = make_batch([3, 2], bins=3, num_spk=2, emb_dim=2, seed=4)
    objective = losses.build_objective(CONFIGS[name])
    emb = outputs["emb"].clone().requires_grad_()
    masks = outputs["masks"].clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda e, m: objective({"emb": e, "masks": m}, batch)[0], (emb, masks))


@pytest.mark.parametrize("path", ["batched", "chunked"])
@pytest.mark.parametrize("weights", losses.DC_WEIGHTS)
@pytest.mark.parametrize("objective", losses.DC_OBJECTIVES)
def test_gradcheck_dc_objectives(objective, weights, path):
    outputs, batch = make_batch([3, 2], bins=3, num_spk=2, emb_dim=2, seed=6)
    emb = outputs["emb"].clone().requires_grad_()

    def fn(e):
        return losses.dc_loss(e, batch["mix_spec"], batch["src_spec"], batch["valid"], objective, weights, path=path)

    assert torch.autograd.gradcheck(fn, (emb,))


def test_float32_batch_runs_and_matches_float64():
    outputs, batch = make_batch([6, 5], bins=8, num_spk=2, emb_dim=4, seed=9)
    for objective in losses.DC_OBJECTIVES:
        cfg = {
            "type": "chimera",
            "dc_objective": objective,
            "dc_weights": "mr",
            "mi_target": "tpsa",
            "mi_norm": "l1",
            "alpha": 0.5,
        }
        fn = losses.build_objective(cfg)
        want, _ = fn(outputs, batch)
        single = {k: v.float() for k, v in outputs.items()}
        single_batch = dict(
            batch, mix_spec=batch["mix_spec"].to(torch.complex64), src_spec=batch["src_spec"].to(torch.complex64)
        )
        got, _ = fn(single, single_batch)
        assert got.dtype == torch.float32 and math.isclose(got.item(), want.item(), rel_tol=1e-4)


# ---------------------------------------------------------------------------------------------
# configuration errors


@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"type": "chimera", **DC_CONFIG, **MI_CONFIG}, "loss.alpha is missing (needed by loss type 'chimera')"),
        ({"type": "dc", "dc_objective": "classic"}, "loss.dc_weights is missing (needed by loss type 'dc')"),
        (
            {"type": "dl", **MI_CONFIG, "gamma": 0.1, "lambda": 0.5},
            "loss.dc_objective is missing (needed by loss type 'dl' with lambda > 0)",
        ),
        ({"type": "mi", **MI_CONFIG, "alpha": 0.5}, "loss.alpha is not a key of loss type 'mi'; its keys: "),
        ({"type": "mi", **MI_CONFIG, "mi_targte": "psa"}, "loss.mi_targte is not a key of loss type 'mi'"),
        (
            {"type": "dc", "dc_objective": "kmeans", "dc_weights": "none"},
            "loss.dc_objective: 'kmeans' is not one of classic, laplacian, ",
        ),
        ({"type": "mi", "mi_target": "psa", "mi_norm": "l3"}, "loss.mi_norm: 'l3' is not one of l1, l2"),
        ({"type": "chimera", **DC_CONFIG, **MI_CONFIG, "alpha": 1.5}, "loss.alpha: 1.5 is not in [0, 1)"),
        ({"type": "dl", **MI_CONFIG, "gamma": -1}, "loss.gamma: -1.0 is not >= 0"),
        ({"type": "mi", **MI_CONFIG, "psa_truncation": 0}, "loss.psa_truncation: 0.0 is not > 0 (default: 1.0)"),
        ({"type": "pit"}, "loss.type: 'pit' is not one of dc, mi, chimera, joint, dl"),
        ({**DC_CONFIG}, "loss.type: None is not one of dc, mi, chimera, joint, dl"),
    ],
)
def test_bad_configs(cfg, message):
    with pytest.raises(ValueError) as err:
        losses.build_objective(cfg)
    assert message in str(err.value)


def test_missing_model_output_is_named():
    outputs, batch = make_batch([3], num_spk=2)
    with pytest.raises(ValueError, match="needs the model output 'emb'"):
        losses.build_objective(CONFIGS["chimera"])({"masks": outputs["masks"]}, batch)
    with pytest.raises(ValueError, match="model output 'masks' is"):
        losses.build_objective(CONFIGS["mi"])({"masks": outputs["masks"][:, :, 1:]}, batch)


def test_the_config_table_lists_the_objectives_the_code_has():
    """nnet/config.py's dc_objective choices are exactly the DC losses implemented here."""
    assert tuple(losses.DC_LOSSES) == config.DC_OBJECTIVES
