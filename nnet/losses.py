"""Training objectives: deep clustering (five objectives, three weightings), utterance-level PIT
mask inference, chimera++, DEF joint training and discriminative learning.

Notation, per utterance: N = T * F valid TF bins, V (N, D) unit-length embeddings, Y (N, C) the
ideal binary assignment (1 for the source with the largest magnitude), W = diag(w) bin weights,
M_c = sum_i w_i Y_ic the weighted size of cluster c. Every DC objective is computed from D x D,
D x C and C x C products (O(N D) memory); the N x N affinity is never formed. Each is the formula
of Wang, Le Roux and Hershey (ICASSP 2018), cited by equation number in its docstring;
tests/test_losses.py writes the paper's dense N x N form independently and checks both agree.
Weights enter every objective as the paper says for the classic one, eq. (7): the squared
differences of the pairs are summed with w_i w_j (graph objectives: bins are nodes of mass w_i).
Training takes the one-hot Y; matched run-time inference relaxes it, and continuous_dc_loss gives
each objective's formula for a relaxed Y (dc_lda and dc_wkm use identities of a one-hot Y).

The batch loss is the mean over utterances of each utterance's loss, which only counts valid
frames, so a padded utterance has the same loss as alone.
"""

import itertools

import torch

from nnet import config
from nnet.config import DC_OBJECTIVES, DC_WEIGHTS, MI_TARGETS  # noqa: F401 (the names its functions take)

VA_THRESHOLD_DB = -40.0  # W_VA's beta: "Following [2], beta in W_VA is empirically set to -40" (Sec. 5.1)
LAPLACIAN_DEGREE_FLOOR = 1e-2  # dc_laplacian's guard for degrees <= 0 (not in the paper; see there)
STOCHASTIC_ROW_FLOOR = 1e-1  # dc_doubly_stochastic's guards (not in the paper; see there)
STOCHASTIC_COLUMN_FLOOR = 1e-2
SINKHORN_ITERATIONS = 10  # doubly_stochastic_shifted's scaling iterations (not the paper's)
WKM_RIDGE = 1e-6  # dc_wkm's ridge, this fraction of mean diag(V^T W V) (not in the paper; see there)
EPS = 1e-8


# ---------------------------------------------------------------------------------------------
# targets and weights


def ideal_binary_assignment(src_spec):
    """(..., C, T, F) complex references -> (..., T, F, C) one-hot of the dominant source (the
    first one on a tie)."""
    num_spk = src_spec.shape[-3]
    mag = src_spec.abs()
    # max(...).indices, not argmax: the same first-maximum indices, but argmax over a non-last
    # dimension takes 15x longer on CPU (75 vs 5 ms at the mini batch, 16 x 2 x 200 x 129)
    return torch.nn.functional.one_hot(mag.max(dim=-3).indices, num_spk).to(mag.dtype)


def dc_weights(mix_spec, src_spec, valid, kind):
    """(B, T, F) DC bin weights W = diag(w) of Wang et al. 2018 Sec. 3 ("Introducing weights"), zero
    on padded frames. mix_spec (B, T, F), src_spec (B, C, T, F) complex.

    none: 1 on every valid bin (equal weights).
    va:   W_VA, "w_i = max_k [10 log10(|s_k,i|^2 / max_j |s_k,j|^2) > beta]", beta = -40 dB: 1 where
          some clean source is within 40 dB of its own loudest bin in the utterance, else 0.
    mr:   W_MR, "w_i = |x_i| / sum_j |x_j|": the mixture magnitude over its sum over the utterance's
          valid bins (the weights sum to 1).
    The sources are needed for va only; at run time, where there are none, `mixture_activity` is
    the stand-in (the k-means voting mask).
    """
    mag = mix_spec.abs()
    frames = valid[..., None].to(mag.dtype).expand_as(mag)
    if kind == "none":
        return frames.clone()
    if kind == "va":
        if src_spec is None:
            raise ValueError("W_VA weights need the clean sources; at run time use mixture_activity")
        power = src_spec.abs().square() * frames[..., None, :, :]
        peak = power.amax(dim=(-2, -1), keepdim=True)  # max_j |s_k,j|^2, per source k
        active = power > peak * 10.0 ** (VA_THRESHOLD_DB / 10.0)  # strict: the Iverson bracket's '>'
        return (active.any(dim=-3) & (frames > 0)).to(mag.dtype)
    if kind == "mr":
        total = (mag * frames).sum(dim=(-2, -1), keepdim=True)
        return mag * frames / total.clamp_min(EPS)
    raise ValueError(f"unknown DC weights '{kind}': use one of {', '.join(DC_WEIGHTS)}")


def mixture_activity(mix_spec, valid, threshold_db=VA_THRESHOLD_DB):
    """(B, T, F) 0/1: bins whose mixture magnitude is within -threshold_db of the utterance's loudest
    mixture bin (valid frames only). Not W_VA, which needs the clean sources: this is its run-time
    stand-in, the bins that vote in k-means and weigh matched inference for a W_VA system."""
    mag = mix_spec.abs()
    frames = valid[..., None].expand_as(mag)
    peak = (mag * frames).amax(dim=(-2, -1), keepdim=True)
    return ((mag > peak * 10.0 ** (threshold_db / 20.0)) & frames).to(mag.dtype)


def mi_targets(mix_spec, src_spec, kind, truncation=1.0):
    """Mask-inference targets (..., C, T, F), to be approximated by mask * |X|.

    msa:  |S_c| (magnitude spectrum approximation).
    psa:  |S_c| cos(theta_S - theta_X) = Re(S_c conj(X)) / |X| (phase-sensitive approximation).
    tpsa: psa clamped to [0, truncation * |X|] (truncated PSA; Wang et al. use truncation 1).
    """
    if kind == "msa":
        return src_spec.abs()
    mix = mix_spec.unsqueeze(-3)
    mix_mag = mix.abs()
    psa = (src_spec * mix.conj()).real / mix_mag.clamp_min(EPS)
    if kind == "psa":
        return psa
    if kind == "tpsa":
        return torch.minimum(psa.clamp_min(0.0), truncation * mix_mag)
    raise ValueError(f"unknown MI target '{kind}': use one of {', '.join(MI_TARGETS)}")


# ---------------------------------------------------------------------------------------------
# permutation invariance


def permutation_table(num_spk, device=None):
    """(C!, C) long: every permutation of range(C), the identity first."""
    return torch.tensor(list(itertools.permutations(range(num_spk))), dtype=torch.long, device=device)


def pit(pair_loss):
    """Utterance-level permutation invariance from pairwise losses.

    pair_loss: (B, C, C), [b, i, j] = loss of estimate i against reference j for the whole utterance.
    Returns best (B,) the smallest permutation loss, perm (B, C) with estimate i assigned to
    reference perm[b, i] in that permutation, and perm_loss (B, C!) the loss of every permutation
    (rows of permutation_table(C)), a permutation's loss being the sum of its C pair losses.
    """
    num_spk = pair_loss.shape[-1]
    perms = permutation_table(num_spk, pair_loss.device)
    perm_loss = pair_loss[..., torch.arange(num_spk, device=pair_loss.device), perms].sum(-1)
    best, index = perm_loss.min(dim=-1)
    return best, perms[index], perm_loss


def mi_pair_loss(masks, mix_spec, src_spec, valid, target, norm, truncation=1.0):
    """(B, C, C): [b, i, j] = sum over valid TF bins of |mask_i |X| - target_j|^p / (valid frames * F),
    p = 1 (l1) or 2 (l2)."""
    mix_mag = mix_spec.abs().unsqueeze(1)
    estimate = masks * mix_mag
    reference = mi_targets(mix_spec, src_spec, target, truncation)
    diff = estimate.unsqueeze(2) - reference.unsqueeze(1)  # (B, C, C, T, F)
    err = diff.abs() if norm == "l1" else diff.square()
    frames = valid.to(err.dtype)
    bins = (frames.sum(-1) * mix_spec.shape[-1]).clamp_min(1)  # (B,)
    return (err * frames[:, None, None, :, None]).sum(dim=(-2, -1)) / bins[:, None, None]


# ---------------------------------------------------------------------------------------------
# deep clustering objectives: V (B, N, D), Y (B, N, C), w (B, N) -> (B,) losses


def _gram(a, b):
    """a^T b over the bins: (B, N, P), (B, N, Q) -> (B, P, Q). Computed as (b^T a)^T: with a
    narrow b (a vector, Y), CPU BLAS runs this orientation several times faster."""
    return torch.bmm(b.transpose(1, 2), a).transpose(1, 2)


def dc_classic(V, Y, w):
    """Classic DC, Wang et al. 2018 eqs. (1) and (7): ||W^1/2 (V V^T - Y Y^T) W^1/2||_F^2 / (sum w)^2
    = (||V^T W V||^2 - 2 ||V^T W Y||^2 + ||Y^T W Y||^2) / (sum w)^2. The paper's sums are divided
    by (sum w)^2, the weighted mean over the pairs, so that an utterance's loss does not grow with
    its length; with W_MR (sum w = 1) this is eq. (7) exactly."""
    wv = V * w[..., None]
    wy = Y * w[..., None]
    loss = _gram(V, wv).square().sum((1, 2)) - 2 * _gram(V, wy).square().sum((1, 2)) + _gram(Y, wy).square().sum((1, 2))
    return loss / w.sum(-1).square().clamp_min(EPS)


def _pair_distance(U, Q):
    """||U U^T - Q Q^T||_F^2 = ||U^T U||^2 - 2 ||U^T Q||^2 + ||Q^T Q||^2, the N x N matrices never
    formed: U (B, N, P) the conditioned embeddings, Q (B, N, C) the conditioned assignment, both
    carrying W^1/2, so that this is the graph objectives' distance summed with w_i w_j."""
    return _gram(U, U).square().sum((1, 2)) - 2 * _gram(U, Q).square().sum((1, 2)) + _gram(Q, Q).square().sum((1, 2))


def _stochastic_target(Y, w):
    """Q = W^1/2 Y_s, eq. (3) applied to Y: Y_bar = diag(Y 1)^-1 Y = Y (a row of an assignment, one-hot
    or relaxed, sums to 1) and Y_s = Y diag(1^T W Y)^-1/2, so that Q Q^T = W^1/2 Y_s Y_s^T W^1/2 is
    eq. (4)'s doubly stochastic target for any assignment."""
    mass = (Y * w[..., None]).sum(1)  # (B, C) = 1^T W Y
    return Y * w.sqrt()[..., None] * mass.clamp_min(EPS).rsqrt()[:, None, :]


def _laplacian_target(Y, w):
    """Q = W^1/2 D_Y^-1/2 Y with D_Y = diag(Y Y^T W 1), eq. (2)'s normalized target for any Y: bin i's
    degree is y_i . (Y^T W 1), its assignment dotted with the clusters' masses. For a one-hot Y that
    is its cluster's mass and Q is _stochastic_target's; for a relaxed Y it is not (and ||Q^T Q||^2,
    eq. (2)'s constant C for a one-hot Y, is then at most C)."""
    mass = (Y * w[..., None]).sum(1)  # (B, C)
    degree = (Y * mass[:, None, :]).sum(-1)  # Y Y^T W 1, (B, N)
    # sqrt(w) apart from the degree, so that a bin with w = 0 gets no NaN gradient through Y
    return Y * (w.sqrt() * degree.clamp_min(EPS).rsqrt())[..., None]


def _laplacian_embedding(V, w):
    """U = W^1/2 D_V^-1/2 V, D_V = diag(V V^T W 1), each degree floored as dc_laplacian says."""
    degree = torch.bmm(V, _gram(V, w[..., None])).squeeze(-1)  # V V^T W 1, (B, N)
    floor = LAPLACIAN_DEGREE_FLOOR * w.sum(-1, keepdim=True)
    # sqrt(w / d), written so that a bin with w = 0 gets no NaN gradient
    return V * (w.sqrt() * torch.maximum(degree, floor).clamp_min(EPS).rsqrt())[..., None]


def dc_laplacian(V, Y, w):
    """Graph Laplacian distance, Wang et al. 2018 eq. (2):
    ||D_V^-1/2 V V^T D_V^-1/2 - D_Y^-1/2 Y Y^T D_Y^-1/2||_F^2 with D_V = diag(V V^T 1), D_Y likewise,
    = ||V^T D_V^-1 V||^2 - 2 ||V^T D_V^-1/2 D_Y^-1/2 Y||^2 + ||Y^T D_Y^-1 Y||^2, computed in that
    low-rank form (the last term is eq. (2)'s C for a one-hot Y). D_Y is taken per bin, so this is
    eq. (2) for a relaxed Y too (matched inference).

    Weights: bins are graph nodes of mass w_i, as eq. (7) weights the classic loss: degrees
    D_V = diag(V V^T W 1), D_Y = diag(Y Y^T W 1) and the squared differences summed with w_i w_j.
    With binary W_VA this is eq. (2) on the active bins exactly; it is unchanged by a global scale of w.

    Guard: with tanh embeddings an affinity v_i.v_j may be negative, so a degree
    d_i = v_i . sum_j w_j v_j can be zero or negative, where eq. (2) is undefined. We floor each
    degree at LAPLACIAN_DEGREE_FLOOR * sum_j w_j (the degree every bin would have if all
    embeddings coincided): such a bin keeps a bounded normalized affinity and a gradient through
    its affinities (none through its degree), which pull its embedding towards its own cluster.
    Bins whose degree is above the floor, i.e. every bin near a solution, get eq. (2) exactly."""
    return _pair_distance(_laplacian_embedding(V, w), _laplacian_target(Y, w))


def _stochastic_embedding(V, w):
    """U = W^1/2 V_s, eq. (3) with the bins' masses and dc_doubly_stochastic's floors."""
    rows = V.sum(-1, keepdim=True)
    sign = torch.where(rows < 0, -1.0, 1.0).to(V.dtype)
    V_bar = V / (sign * rows.abs().clamp_min(STOCHASTIC_ROW_FLOOR))
    columns = _gram(V_bar, w[..., None]).squeeze(-1)  # 1^T W V_bar, (B, D)
    floor = STOCHASTIC_COLUMN_FLOOR * w.sum(-1, keepdim=True) / V.shape[-1]
    return V_bar * w[..., None].sqrt() * torch.maximum(columns, floor).clamp_min(EPS).rsqrt()[:, None, :]


def dc_doubly_stochastic(V, Y, w):
    """Doubly stochastic distance, Wang et al. 2018 eqs. (3)-(4): ||V_s V_s^T - Y_s Y_s^T||_F^2 with
    the closed-form normalization V_bar = diag(V 1)^-1 V, V_s = V_bar diag(1^T V_bar)^-1/2 (V_s V_s^T 1
    = 1), and Y_s likewise from Y (Y 1 = 1, so Y_s Y_s^T = Y diag(1^T Y)^-1 Y^T, for a one-hot Y and a
    relaxed one alike). Low-rank: only the (D x D), (D x C), (C x C) Gram matrices are formed.

    Weights: bins are nodes of mass w_i as in dc_laplacian: column masses 1^T W V_bar, so that
    V_s V_s^T W 1 = 1, and squared differences summed with w_i w_j (eq. (4) on the active bins for
    binary W_VA; unchanged by a global scale of w).

    Guard: the closed form presumes nonnegative embeddings (a stochastic matrix), and ours are tanh,
    unit length. A row sum (V 1)_i near zero would blow up its row of V_bar, so its magnitude is
    floored at STOCHASTIC_ROW_FLOOR with its sign kept (rows of V_bar still sum to 1); a column
    mass (1^T W V_bar)_d at or below STOCHASTIC_COLUMN_FLOOR * sum(w) / D (a fraction of the mean
    column mass) is floored there, so the inverse square root stays real and bounded. With
    nonnegative V neither floor binds in practice and eq. (3) is exact (tests check both)."""
    return _pair_distance(_stochastic_embedding(V, w), _stochastic_target(Y, w))


# The paper's eqs. (2)-(4) use V V^T itself, which with tanh unit embeddings has negative entries
# (see the guards above). With free unit embeddings (N = 400, D = 10, C = 2, random W_MR-like
# weights, 1000 Adam steps from a random start), eq. (2) with its guard ends at loss 0.92 with
# same / other-cluster mean affinities 0.65 / 0.57, eq. (3)-(4) at 20.6 with 0.005 / -0.002 (no
# separation), while both shifted forms below reach 0.0000 with 0.997 / -0.997. So these stay as
# named options (laplacian_shifted, doubly_stochastic_shifted), not the paper's objectives.


def _affinity_times(V, x):
    """A x for the nonnegative affinity A = (1 + V V^T) / 2 of unit-length rows, without forming A."""
    return (x.sum(-1, keepdim=True) + torch.bmm(V, _gram(V, x[..., None])).squeeze(-1)) / 2


def _scaled_affinity_embedding(V, w, s):
    """U = W^1/2 S [1, V] / sqrt(2), so that U U^T = W^1/2 S A S W^1/2 for A = (1 + V V^T) / 2."""
    return torch.cat([torch.ones_like(V[..., :1]), V], -1) * ((w / 2).sqrt() * s)[..., None]


def _laplacian_shifted_embedding(V, w):
    return _scaled_affinity_embedding(V, w, _affinity_times(V, w).clamp_min(EPS).rsqrt())


def _sinkhorn_embedding(V, w, iterations=None):
    s = torch.ones_like(w)
    for _ in range(SINKHORN_ITERATIONS if iterations is None else iterations):
        s = (s / _affinity_times(V, w * s).clamp_min(EPS)).sqrt()
    return _scaled_affinity_embedding(V, w, s)


def dc_laplacian_shifted(V, Y, w):
    """Not the paper's: the graph Laplacian distance on the shifted affinity, ||L_V - L_Y||_F^2
    between the normalized Laplacians L = I - D^-1/2 A D^-1/2 of the embedding and target graphs,
    i.e. the distance between the degree-normalized affinities. A graph needs nonnegative
    affinities, so the embedding graph uses A_ij = (1 + v_i.v_j) / 2 (in [0, 1] for unit vectors;
    rank D + 1, so still low-rank); the target graph Y Y^T normalizes as in dc_laplacian (to
    Y (Y^T W Y)^-1 Y^T for a one-hot Y). Weights enter as node masses: degrees d_i = sum_j w_j A_ij
    and the squared errors are summed with w_i w_j."""
    return _pair_distance(_laplacian_shifted_embedding(V, w), _laplacian_target(Y, w))


def dc_doubly_stochastic_shifted(V, Y, w, iterations=None):
    """Not the paper's: the distance between the doubly stochastic normalizations of the embedding
    and target affinities on the shifted affinity. The target's, Y diag(1^T W Y)^-1 Y^T (eq. (3)'s
    closed form, as in dc_doubly_stochastic), is exactly doubly stochastic; the embedding affinity
    A = (1 + V V^T) / 2 is scaled to S A S with sum_j w_j s_i A_ij s_j = 1 for every bin by
    `iterations` (default SINKHORN_ITERATIONS) symmetric Sinkhorn iterations s <- sqrt(s / (A W s))
    (each O(N D); the first one gives D^-1/2, the Laplacian's normalization, of which this is the
    exact doubly stochastic version)."""
    return _pair_distance(_sinkhorn_embedding(V, w, iterations), _stochastic_target(Y, w))


def dc_lda(V, Y, w):
    """Deep LDA, Wang et al. 2018 eq. (5), for the one-hot Y of training: within-cluster scatter over
    total scatter of the embeddings, sum_i w_i ||v_i - mu_c(i)||^2 / sum_i w_i ||v_i - mu||^2
    (weighted means mu_c, mu; eq. (5) itself with w = 1).
    It equals 1 / (1 + between / within), a monotone function of Fisher's within / between ratio,
    bounded in [0, 1] and finite when the clusters' means coincide.

    One-hot only: the cluster sums use Y^T W Y = diag(1^T W Y), true for a one-hot Y alone. A
    relaxed Y (matched inference) takes eq. (5)'s matrix form, continuous_dc_loss('lda', V, w)."""
    sq = (V.square().sum(-1) * w).sum(-1)
    mass = (Y * w[..., None]).sum(1)  # (B, C)
    cluster_sums = _gram(V, Y * w[..., None])  # (B, D, C)
    within = sq - (cluster_sums.square().sum(1) / mass.clamp_min(EPS)).sum(-1)
    mean_sum = _gram(V, w[..., None]).squeeze(-1)  # (B, D)
    total = sq - mean_sum.square().sum(-1) / w.sum(-1).clamp_min(EPS)
    return within / total.clamp_min(EPS)


def dc_wkm(V, Y, w):
    """Whitened k-means, Wang et al. 2018 eq. (6) (W in Table 1), for the one-hot Y of training: the
    k-means objective on whitened embeddings U = W^1/2 V (V^T W V)^-1/2 (orthonormal columns) with
    the ideal assignment, ||U - P_Y U||_F^2 = D - tr((V^T W V)^-1 V^T W Y (Y^T W Y)^-1 Y^T W V),
    P_Y = W^1/2 Y (Y^T W Y)^-1 Y^T W^1/2. Ranges over [D - C, D]. Differentiated by hand
    (_WhitenedKMeans): the gradient needs one N x (D + C) product where autograd takes five.

    One-hot only: it takes Y^T W Y = diag(1^T W Y), true for a one-hot Y alone, and differentiates
    the embeddings alone. A relaxed Y (matched inference) takes continuous_dc_loss('wkm', V, w)."""
    if torch.is_grad_enabled():
        if w.requires_grad:
            raise ValueError("dc_wkm does not differentiate the bin weights")
        if Y.requires_grad:
            raise ValueError(
                "dc_wkm is eq. (6) for a one-hot Y and does not differentiate it: for a relaxed "
                "assignment use losses.continuous_dc_loss('wkm', V, w)(Y)"
            )
    return _WhitenedKMeans.apply(V, Y.to(V.dtype), w.to(V.dtype))


class _WhitenedKMeans(torch.autograd.Function):
    """dc_wkm with A = V^T W V + r I (r = WKM_RIDGE mean diag(V^T W V) + EPS, a ridge that keeps a
    rank-poor A invertible), B = V^T W Y, M = diag(Y^T W 1) (= Y^T W Y, Y being one-hot):
    L = D - tr(A^-1 B M^-1 B^T), and dL/dV = 2 W (V S' - Y P^T) with P = A^-1 B M^-1, S = P M P^T and
    S' = S + WKM_RIDGE tr(S) / D I (the ridge's share). Neither the assignment nor the weights get
    a gradient (they come from the references or the mixture)."""

    @staticmethod
    def forward(ctx, V, Y, w):
        dim = V.shape[-1]
        X = torch.cat([V, Y], -1)  # (B, N, D + C)
        gram = _gram(V * w[..., None], X)  # (B, D, D + C) = [V^T W V | V^T W Y], one pass over the bins
        vv, vy = gram[..., :dim], gram[..., dim:]
        mass = (Y * w[..., None]).sum(1)  # (B, C): Y^T W Y is diagonal for a one-hot Y
        ridge = WKM_RIDGE * vv.diagonal(dim1=1, dim2=2).mean(-1) + EPS
        eye = torch.eye(dim, dtype=V.dtype, device=V.device)
        solved = torch.linalg.solve(vv + ridge[:, None, None] * eye, vy)  # A^-1 B
        P = solved / mass.clamp_min(EPS)[:, None, :]
        ctx.save_for_backward(X, w, solved, P)
        return dim - (vy * P).sum((1, 2))  # sum_c b_c^T A^-1 b_c / m_c

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        X, w, solved, P = ctx.saved_tensors
        dim = solved.shape[1]
        scale = grad_loss[:, None, None]
        grad_V = None
        if ctx.needs_input_grad[0]:
            S = solved @ P.transpose(1, 2)  # P M P^T = A^-1 B M^-1 B^T A^-1
            trace = S.diagonal(dim1=1, dim2=2).sum(-1)
            S = S + (WKM_RIDGE / dim) * trace[:, None, None] * torch.eye(dim, dtype=S.dtype, device=S.device)
            K = torch.cat([S, -P.transpose(1, 2)], 1) * (2 * scale)  # (B, D + C, D)
            grad_V = torch.bmm(X, K) * w[..., None]
        return grad_V, None, None


DC_LOSSES = {
    "classic": dc_classic,
    "laplacian": dc_laplacian,
    "doubly_stochastic": dc_doubly_stochastic,
    "lda": dc_lda,
    "wkm": dc_wkm,
    "laplacian_shifted": dc_laplacian_shifted,
    "doubly_stochastic_shifted": dc_doubly_stochastic_shifted,
}


# ---------------------------------------------------------------------------------------------
# the DC objectives of a relaxed assignment (matched run-time inference)
#
# Matched inference relaxes the assignment, "Y = logistic(Z)", and minimizes the training objective
# over it, "Y_hat = argmin_Y L_DC(V_hat, Y)" (Wang et al. 2018 Sec. 3), so each objective is needed
# as the paper writes it for a Y that is not one-hot. dc_lda and dc_wkm above use Y^T W Y =
# diag(1^T W Y), true for a one-hot Y only; on a relaxed Y they compute another function, minus a
# sum of quadratic-over-linear terms b_c^T A^-1 b_c / m_c, concave in Y, whose minimum over the
# relaxation is at a binary Y: minimizing it keeps the masks binary. Here Y^T W Y is kept
# in full (C x C) and the graph targets take D_Y per bin. Every objective is prepared once on an
# utterance's embeddings (what depends on V alone), after which an evaluation at a new Y costs
# O(N C (D + C)): products of Y with N x D prepared embeddings, and Y^T W Y. On a one-hot Y each
# equals its training form of DC_LOSSES (tests check it).


def _continuous_graph(embedding, target):
    """A graph objective prepared on V: U = embedding(V, w) and ||U^T U||^2 once, then
    Y -> ||U U^T - Q Q^T||_F^2 for Q = target(Y, w)."""

    def prepare(V, w):
        U = embedding(V, w)
        own = _gram(U, U).square().sum((1, 2))

        def loss(Y):
            Q = target(Y, w)
            return own - 2 * _gram(U, Q).square().sum((1, 2)) + _gram(Q, Q).square().sum((1, 2))

        return loss

    return prepare


def _classic_scaled(X, w):
    """X W^1/2 / sqrt(sum w): eq. (7) over (sum w)^2 (dc_classic) is ||U U^T - Q Q^T||^2 with U, Q
    the embeddings and the assignment so scaled."""
    return X * (w / w.sum(-1, keepdim=True).clamp_min(EPS)).sqrt()[..., None]


def _projected_scatter(X, Y, w):
    """tr(B^T B (Y^T W Y)^-1), B = X^T W Y: the w-weighted scatter of the rows of X that the span of
    Y explains, ||W^1/2 Y (Y^T W Y)^-1 Y^T W X||_F^2 for the W-orthogonal projection onto Y's columns
    of eqs. (5) and (6) (Y Y^T's projector "Y (Y^T Y)^-1 Y^T" with W^1/2 on Y and X as eq. (7) puts
    it), for any Y: Y^T W Y in full. A cluster without mass (one-hot Y, an empty cluster) makes it
    singular; EPS on its diagonal keeps the solve finite, and that cluster's column of B is zero so
    it adds nothing, as with the training forms' clamped masses."""
    wy = Y * w[..., None]
    B = _gram(X, wy)  # (B, P, C) = X^T W Y
    G = _gram(Y, wy)  # (B, C, C) = Y^T W Y: off-diagonal where clusters share bins
    eye = torch.eye(Y.shape[-1], dtype=G.dtype, device=G.device)
    explained = torch.linalg.solve(G + EPS * eye, B.transpose(1, 2) @ B)  # (Y^T W Y)^-1 B^T B
    return explained.diagonal(dim1=1, dim2=2).sum(-1)


def _continuous_lda(V, w):
    """Eq. (5) for any Y, with W^1/2 on V, Y and 1 as eq. (7) weights:
    ||W^1/2 (V - Y (Y^T W Y)^-1 Y^T W V)||^2 / ||W^1/2 (V - 1 (1^T W 1)^-1 1^T W V)||^2. The numerator
    is the residual of a W-orthogonal projection, tr(V^T W V) - tr(B^T B (Y^T W Y)^-1), B = V^T W Y:
    the cluster means are (Y^T W Y)^-1 Y^T W V, V's least-squares fit by Y, not the soft averages
    diag(1^T W Y)^-1 Y^T W V (dc_lda's form, no projection residual once Y is relaxed)."""
    sq = (V.square().sum(-1) * w).sum(-1)  # tr(V^T W V)
    mean_sum = _gram(V, w[..., None]).squeeze(-1)  # V^T W 1, (B, D)
    total = (sq - mean_sum.square().sum(-1) / w.sum(-1).clamp_min(EPS)).clamp_min(EPS)

    def loss(Y):
        return (sq - _projected_scatter(V, Y, w)) / total

    return loss


def _continuous_wkm(V, w):
    """Eq. (6) for any Y: D - tr((V^T W V)^-1 V^T W Y (Y^T W Y)^-1 Y^T W V), Y^T W Y in full, with
    dc_wkm's ridge on V^T W V. Whitening with any square root gives the same projector
    V (V^T W V)^-1 V^T, so V is whitened once per utterance as V L^-T, L the Cholesky factor of the
    ridged V^T W V (all in float64, once), and an evaluation is D - tr(B^T B (Y^T W Y)^-1) with
    B = L^-1 V^T W Y."""
    dim = V.shape[-1]
    exact = V.double()
    gram = _gram(exact, exact * w.double()[..., None])  # V^T W V
    ridge = WKM_RIDGE * gram.diagonal(dim1=1, dim2=2).mean(-1) + EPS
    eye = torch.eye(dim, dtype=gram.dtype, device=gram.device)
    factor = torch.linalg.cholesky(gram + ridge[:, None, None] * eye)
    whitened = torch.linalg.solve_triangular(factor, exact.transpose(1, 2), upper=False)
    whitened = whitened.transpose(1, 2).to(V.dtype)  # V L^-T, (B, N, D)

    def loss(Y):
        return dim - _projected_scatter(whitened, Y, w)

    return loss


CONTINUOUS_DC_LOSSES = {
    "classic": _continuous_graph(_classic_scaled, _classic_scaled),
    "laplacian": _continuous_graph(_laplacian_embedding, _laplacian_target),
    "doubly_stochastic": _continuous_graph(_stochastic_embedding, _stochastic_target),
    "lda": _continuous_lda,
    "wkm": _continuous_wkm,
    "laplacian_shifted": _continuous_graph(_laplacian_shifted_embedding, _laplacian_target),
    "doubly_stochastic_shifted": _continuous_graph(_sinkhorn_embedding, _stochastic_target),
}


def continuous_dc_loss(objective, V, w):
    """The DC objective `objective` of a relaxed assignment, prepared on fixed embeddings V (B, N, D)
    and bin weights w (B, N): a function Y (B, N, C) -> (B,) losses, for any Y >= 0 whose rows sum
    to 1, the paper's formula itself (see above); differentiable in Y. On a one-hot Y it equals
    DC_LOSSES[objective]. Matched run-time inference (inference.matched_inference) minimizes it."""
    if objective not in CONTINUOUS_DC_LOSSES:
        raise ValueError(f"unknown DC objective '{objective}': use one of {', '.join(CONTINUOUS_DC_LOSSES)}")
    return CONTINUOUS_DC_LOSSES[objective](V, w)


CHUNK_ELEMENTS = 2**21  # embedding values per chunk of utterances on the chunked path (8 MiB in float32)
# The path rule of dc_loss: the batched path when the temporaries autograd keeps for the whole
# batch, estimated as SAVED_PER_EMBEDDING float32 values per embedding value, fit in
# BATCHED_MAX_BYTES; the chunked path otherwise.
BATCHED_MAX_BYTES = 2**28  # 256 MiB
SAVED_PER_EMBEDDING = 4  # measured (bench_dc_memory.py --paths): the batched path peaks 4.3 x the embeddings above them
DC_PATHS = ("auto", "batched", "chunked")


def dc_path(batch, bins, emb_dim):
    """The path dc_loss takes for a batch of `batch` utterances of `bins` TF bins (frames x
    frequencies) and D = emb_dim: 'batched' when SAVED_PER_EMBEDDING * batch * bins * emb_dim
    float32 values fit in BATCHED_MAX_BYTES, else 'chunked'.

    Both paths call the same objective function, so they give the same losses and gradients to
    float rounding. The batched one applies it to the whole batch under plain autograd: one
    forward pass, but autograd keeps about SAVED_PER_EMBEDDING times the embeddings until backward.
    The chunked one (_ChunkedRecompute) keeps only its inputs and recomputes the forward pass in
    backward, CHUNK_ELEMENTS embedding values at a time: the forward pass runs twice, on small
    tensors. Measured on 2 CPU threads (bench_dc_memory.py --paths chunked,batched, interleaved): at
    the mini recipe's batch, 16 x 200 frames x 129 bins, D = 10 (66 MB by the estimate), the batched
    path takes 0.56-0.97 of the chunked one's time, objective by objective (wkm, the recipe's: 0.72);
    at 32 x 400 x 129, D = 40 (1.06 GB) it adds 1078 MiB over the inputs where the chunked one adds
    365 (classic; wkm alike), for 1.05 (classic) and 0.68 (wkm) of its time. Above the bound memory
    decides. doubly_stochastic_shifted keeps more than the estimate at small D (its Sinkhorn
    iterations' N-vectors: 215 MiB measured at the mini batch), still far below the bound there."""
    saved = SAVED_PER_EMBEDDING * batch * bins * emb_dim * 4
    return "batched" if saved <= BATCHED_MAX_BYTES else "chunked"


class _ChunkedRecompute(torch.autograd.Function):
    """fn(V, Y, w) -> (B,) computed on chunks of utterances, keeping nothing but the inputs between
    forward and backward: backward recomputes one chunk at a time. Without this, autograd would
    keep several N x D temporaries of the whole batch (about 4 times the embeddings, 1 GiB at
    32 x 400 x 129 x D=40); with it the loss adds the embeddings' gradient and one chunk's temporaries."""

    @staticmethod
    def forward(ctx, fn, chunk, V, Y, w):
        ctx.fn, ctx.chunk = fn, chunk
        ctx.save_for_backward(V, Y, w)
        return torch.cat([fn(V[i : i + chunk], Y[i : i + chunk], w[i : i + chunk]) for i in range(0, len(V), chunk)])

    @staticmethod
    def backward(ctx, grad_loss):
        V, Y, w = ctx.saved_tensors
        grad = torch.empty_like(V)
        for i in range(0, len(V), ctx.chunk):
            part = slice(i, i + ctx.chunk)
            with torch.enable_grad():
                v = V[part].detach().requires_grad_()
                grad[part] = torch.autograd.grad(ctx.fn(v, Y[part], w[part]), v, grad_loss[part])[0]
        return None, None, grad, None, None


def dc_loss(emb, mix_spec, src_spec, valid, objective, weights, path="auto"):
    """(B,) DC loss per utterance from emb (B, T, F, D) and the batch's spectra. path: 'auto' (the
    rule of dc_path), or 'batched' / 'chunked' to force one (tests, bench_dc_memory.py)."""
    if emb.dtype in (torch.float16, torch.bfloat16):
        emb = emb.float()  # the solves and cancellations want float32
    V = emb.flatten(1, 2)
    Y = ideal_binary_assignment(src_spec).flatten(1, 2).to(V.dtype)
    w = dc_weights(mix_spec, src_spec, valid, weights).flatten(1).to(V.dtype)
    fn = DC_LOSSES[objective]
    if path == "auto":
        path = dc_path(*V.shape)
    if path == "batched":
        return fn(V, Y, w)
    if path != "chunked":
        raise ValueError(f"unknown DC loss path '{path}': use one of {', '.join(DC_PATHS)}")
    chunk = max(1, CHUNK_ELEMENTS // max(1, V.shape[1] * V.shape[2]))
    return _ChunkedRecompute.apply(fn, chunk, V, Y, w)


# ---------------------------------------------------------------------------------------------
# the configurable objective


def build_objective(cfg):
    """The training objective of a `loss:` config section: a callable
    objective(outputs, batch) -> (loss scalar tensor, stats dict of floats).

    outputs: the model's dict (`emb` (B, T, F, D), `masks` (B, C, T, F));
    batch: `mix_spec` (B, T, F) and `src_spec` (B, C, T, F) complex STFTs, `valid` (B, T) bool.

    The `loss:` keys are described and checked in nnet/config.py (KEYS): the type (dc, mi,
    chimera, joint, dl), the DC objective and weights, the MI target and norm, and the weights
    alpha, lambda, gamma of the combined objectives. Each type's terms and weights are its entry
    of config.LOSSES.

    Its `selects_on` names the validation figure of model selection (and of the learning-rate
    schedule): "mi", the stat of the best permutation's MI loss (the uPIT term), or "loss", the
    whole objective. chimera++ selects on "mi" (Wang et al. 2018 Sec. 5.1: "we only use the MI loss
    during validation for model selection"); so does dl, whose objective subtracts gamma x (the
    other permutations' losses) and would rank a model better the worse its wrong permutations
    get (with lambda > 0 its DC term is left out too, as chimera++'s is); dc, mi and joint (DEF)
    select on the whole objective.
    """
    return Objective(cfg)


class Objective:
    def __init__(self, cfg):
        self.kind, self.cfg = config.check_section("loss", cfg)
        self.loss_type = config.LOSSES[self.kind]  # its terms and their weights
        self.truncation = float(self.cfg.get("psa_truncation", 1.0))
        weight = self.loss_type.dc_weight  # None, a number or the key that holds it
        if isinstance(weight, str):
            self.dc_weight = float(self.cfg.get(weight, 0.0))
        else:
            self.dc_weight = 0.0 if weight is None else float(weight)
        # the DC term: where the type has one, unless it is optional (dl) and weighted 0
        self.uses_dc = self.dc_weight > 0 or (weight is not None and not self.loss_type.dc_optional)
        self.uses_mi = self.loss_type.mi
        # the validation figure of model selection (see build_objective): the best permutation's MI
        # loss for chimera++ (Sec. 5.1) and dl (not its -gamma x others reward); else the whole objective
        self.selects_on = self.loss_type.selects_on
        # the names of the per-term stats a call returns besides "loss" (history.tsv's columns)
        self.terms = (
            (("dc",) if self.uses_dc else ())
            + (("mi",) if self.uses_mi else ())
            + (("mi_others", "dl") if self.loss_type.others else ())
        )

    def __repr__(self):
        return f"Objective({self.cfg})"

    def _output(self, outputs, key, batch):
        if key not in outputs:
            raise ValueError(
                f"loss type '{self.kind}' needs the model output '{key}', the model gives "
                f"{sorted(outputs)}; pick a model type that produces it"
            )
        value = outputs[key]
        mix, src = batch["mix_spec"], batch["src_spec"]
        if key == "emb":
            expected, shape = tuple(mix.shape) + ("D",), tuple(value.shape[:3]) + ("D",)
        else:
            expected, shape = tuple(src.shape), tuple(value.shape)
        if value.dim() != 4 or shape != expected:
            raise ValueError(
                f"model output '{key}' is {tuple(value.shape)}, the batch needs "
                f"{expected} (mix_spec {tuple(mix.shape)}, src_spec {tuple(src.shape)})"
            )
        return value

    def __call__(self, outputs, batch):
        mix, src, valid = batch["mix_spec"], batch["src_spec"], batch["valid"]
        stats = {}
        loss = 0.0
        if self.uses_dc:
            emb = self._output(outputs, "emb", batch)
            dc = dc_loss(emb, mix, src, valid, self.cfg["dc_objective"], self.cfg["dc_weights"]).mean()
            stats["dc"] = dc.item()
            loss = self.dc_weight * dc
        if self.uses_mi:
            masks = self._output(outputs, "masks", batch)
            pair = mi_pair_loss(masks, mix, src, valid, self.cfg["mi_target"], self.cfg["mi_norm"], self.truncation)
            best, _, perm_loss = pit(pair)
            mi = best.mean()
            stats["mi"] = mi.item()
            if self.loss_type.others:  # discriminative learning: minus the other permutations' losses
                others = (perm_loss.sum(-1) - best).mean()
                stats["mi_others"] = others.item()
                mi = mi - float(self.cfg[self.loss_type.others]) * others
                stats["dl"] = mi.item()
            loss = loss + (1.0 - self.dc_weight) * mi
        stats["loss"] = loss.item()
        return loss, stats
