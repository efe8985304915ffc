"""Separation metrics: BSS Eval v3 (SDR, SIR, SAR), SI-SNR, their improvements, PESQ and STOI.

BSS Eval follows `mir_eval.separation.bss_eval_sources` (mir_eval 0.8.2, the reference in the tests):
an estimate e is projected by least squares on the span of the delayed references (delays
0..511, signals zero-padded by 511 samples); with P_j the projection on reference j alone and
P the projection on all references,
    SDR = |P_j e|^2 / |e - P_j e|^2,  SIR = |P_j e|^2 / |P e - P_j e|^2,  SAR = |P e|^2 / |e - P e|^2,
and the estimate-to-reference matching is the permutation of highest mean SIR (the first one in
itertools order on ties), as mir_eval chooses it.

Speed: mir_eval solves one dense (C*512)^2 system per estimate/reference pair. Here the
correlations come from one FFT per signal, and the normal equations, which are block Toeplitz,
are solved once per reference set for all estimates (and the mixture) at the same time by
conjugate gradients preconditioned with the exact inverse of each reference's own Toeplitz block
(Levinson + Gohberg-Semencul, applied by FFT). Everything is O(L log L) per iteration; the
iterations only have to undo the coupling between different references, which is weak for
independent talkers. If the iterations stall (strongly correlated references) or the Levinson
recursion breaks down, the same system is solved densely. The energies come from the residuals
of the filters found (exact quadratic forms), which exceed the least-squares minimum by the
filters' error energy only; ratios above 150 dB (perfect estimates) are capped there, being
rounding noise anyway (mir_eval reports such noise as is, e.g. 250-300 dB).

Every utterance is scored; nothing is left out of a mean. A silent estimate is a very bad
estimate, not a missing one, so it gets each metric's floor (FLOORS); input that cannot be scored
honestly is an error (ScoreError, naming the utterance and the signal):
- dB ratios (SDR, SIR, SAR, SI-SNR) lie in [-150, 150] dB: the +150 dB cap above, and its mirror,
  a ratio of 0 (no target component left, e.g. an estimate that is zero once its mean is removed
  for SI-SNR) at -150 dB. A fixed floor rather than NaN is what fast_bss_eval's clamp_db option
  and the eps (1e-8, about -80 dB) in Asteroid's SI-SDR amount to; mir_eval raises on a silent
  estimate instead, which would stop a whole test set for one collapsed output. With NaN left out
  of the means (this module's earlier rule), a system that output silence for its hard utterances
  scored higher, and the permutation, chosen on the non-NaN SIRs, matched the other sources as if
  the silent one did not exist.
- an estimate is silent when its RMS is below -100 dB full scale (is_silent, the same rule as for
  references; a 16-bit file cannot encode anything useful there: one LSB is -90 dB): it scores
  -150 dB in SDR, SIR, SAR and SI-SNR, hence SDRi = -150 - the mixture's SDR (SI-SNRi alike),
  PESQ 1.0 (the bottom of the MOS-LQO scale that the pesq package reports; its outputs are above
  1.01) and STOI 0.0 (no correlation), with a MetricWarning naming the utterance. PESQ failing on a
  non-silent estimate (no speech found by its VAD, under 0.25 s) also scores 1.0 with a warning,
  and a STOI below 0 (an envelope that moves against the reference's) is clipped to 0.0 with one.
  So a metric sits at its floor for one of three causes: a silent estimate, a PESQ failure, a
  negative STOI clipped.
  The result's 'floored' lists the metrics at which a source of the utterance sits at its floor,
  so that the tables can count them;
- an estimate, like the mixture, is scale invariant: an estimate at 1 % of the mixture's level
  scores exactly the mixture's SDR and SI-SNR, i.e. SDRi = SI-SNRi = 0: no improvement;
- a silent reference or a silent mixture is a corpus error (ScoreError): mir_eval refuses silent
  references too, and with a silent mixture SDRi would be measured from the floor;
- estimates and mixture must have the references' length (ScoreError naming the estimate and both
  lengths, as mir_eval refuses shapes that differ): this recipe's separation writes the mixture's
  length exactly, so a different length means a truncated file or another utterance's estimate;
- NaN or infinite samples in any signal are a ScoreError;
- PESQ is narrowband at 8 kHz and wideband at 16 kHz; any other rate is resampled
  (nnet.dsp.resample) to 8 kHz ('nb') below 12 kHz and to 16 kHz ('wb') from 12 kHz up.
"""

import itertools
import math
import warnings

import numpy as np
import scipy.fft
import scipy.linalg

FILTER_LENGTH = 512  # distortion filter taps, as in BSS Eval v3 / mir_eval
METRICS = ("SDR", "SIR", "SAR", "SDRi", "SI-SNR", "SI-SNRi", "PESQ", "STOI")
SILENCE_POWER = 1e-10  # mean square below -100 dB full scale: the signal counts as silent
MAX_DB_RATIO = 1e15  # energy ratios are bounded to [-150, 150] dB (rounding noise beyond)
DB_FLOOR = -10.0 * math.log10(MAX_DB_RATIO)
# The score of a silent estimate, per metric (SDRi and SI-SNRi follow from SDR and SI-SNR).
FLOORS = {"SDR": DB_FLOOR, "SIR": DB_FLOOR, "SAR": DB_FLOOR, "SI-SNR": DB_FLOOR, "PESQ": 1.0, "STOI": 0.0}
# Stop when r' M^-1 r (~ the filters' excess residual energy, the estimate having unit energy) is
# below 1e-12: the excess then stays below ~3e-11 (measured), i.e. < 0.01 dB up to ~65 dB.
CG_TOLERANCE = 1e-12
CG_MAX_ITERATIONS = 100  # most utterances need 5-10, some 20-80 (edge transients couple the references)


class MetricWarning(UserWarning):
    """An utterance has a metric at its floor (a silent estimate, a PESQ failure, a STOI below 0 clipped)."""


class ScoreError(ValueError):
    """Input that cannot be scored; the message names the utterance, `signal` the signal at fault
    ('reference 2', 'estimate 1', 'mixture') when there is one."""

    def __init__(self, message, signal=None):
        super().__init__(message)
        self.signal = signal


def _db(num, den):
    """10 log10(num/den) bounded to [DB_FLOOR, -DB_FLOOR]; DB_FLOOR where num is 0 (no target at all)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.maximum(np.asarray(den, dtype=np.float64), num / MAX_DB_RATIO)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * np.log10(num / den)
    return np.where(num > 0, np.maximum(out, DB_FLOOR), DB_FLOOR)


def is_silent(x):
    """True for a signal whose mean square is below SILENCE_POWER (-100 dB full scale)."""
    x = np.asarray(x, dtype=np.float64)
    return x.size == 0 or float(np.mean(x * x)) < SILENCE_POWER


class _BlockToeplitzSystem:
    """The normal equations of BSS Eval's projection on delayed references.

    G[i*L + a, j*L + b] = <s_i delayed by a, s_j delayed by b> = r_ij[b - a], with
    r_ij[k] = sum_t s_i[t + k] s_j[t]. Vectors are handled as arrays (..., C, L).
    """

    def __init__(self, references, filter_length):
        self.num_sources, length = references.shape
        self.L = L = filter_length
        self.n = scipy.fft.next_fast_len(length + L - 1, real=True)  # no circular wrap for |lag| < L
        self.ref_spectra = scipy.fft.rfft(references, self.n)
        i, j = np.triu_indices(self.num_sources)  # r_ji[k] = r_ij[-k]: compute i <= j only
        corr = scipy.fft.irfft(self.ref_spectra[i] * self.ref_spectra[j].conj(), self.n)
        # Lags -(L-1)..L-1 laid out circularly in 2L samples: G @ v is then a circular correlation.
        window = np.zeros((len(i), 2 * L))
        window[:, :L] = corr[:, :L]
        window[:, L + 1 :] = corr[:, self.n - L + 1 :]
        self.lags = np.empty((self.num_sources, self.num_sources, 2 * L))
        self.lags[i, j] = window
        self.lags[j, i] = np.roll(window[:, ::-1], 1, axis=-1)
        self.lag_spectra_conj = scipy.fft.rfft(self.lags, 2 * L).conj()
        diagonal = np.arange(self.num_sources)
        self.toeplitz_columns = self.lags[diagonal, diagonal, :L]

    def correlate(self, estimates):
        """Right-hand sides D[k, i, a] = <s_i delayed by a, e_k>, shape (K, C, L)."""
        spectra = scipy.fft.rfft(estimates, self.n)
        return scipy.fft.irfft(spectra[:, None] * self.ref_spectra[None].conj(), self.n)[..., : self.L]

    def matvec(self, v, coupled=True):
        """G @ v for v (..., C, L); coupled=False uses only the diagonal blocks."""
        spectra = scipy.fft.rfft(v, 2 * self.L)
        if coupled:
            out = np.einsum("ijf,...jf->...if", self.lag_spectra_conj, spectra)
        else:
            diag = np.einsum("jjf->jf", self.lag_spectra_conj)
            out = diag * spectra
        return scipy.fft.irfft(out, 2 * self.L)[..., : self.L]

    def dense(self, coupled=True):
        L, C = self.L, self.num_sources
        a = np.arange(L)
        blocks = self.lags[:, :, (a[None, :] - a[:, None]) % (2 * L)]  # (C, C, L, L): r_ij[b - a]
        if not coupled:
            blocks = blocks * np.eye(C)[:, :, None, None]
        return blocks.transpose(0, 2, 1, 3).reshape(C * L, C * L)


class _BlockDiagonalInverse:
    """Exact inverse of each reference's own Toeplitz block, applied by FFT.

    Gohberg-Semencul: with x = T^-1 e_0 and z = (0, x_{L-1}, ..., x_1),
    T^-1 = (Low(x) Low(x)^T - Low(z) Low(z)^T) / x_0, Low(v) the lower triangular Toeplitz matrix
    of first column v; Low(v) products are truncated convolutions.
    """

    def __init__(self, toeplitz_columns):
        self.L = L = toeplitz_columns.shape[1]
        first = np.zeros(L)
        first[0] = 1.0
        x = np.stack(
            [scipy.linalg.solve_toeplitz(col, first, check_finite=False) for col in toeplitz_columns]
        )  # raises LinAlgError on a singular minor
        if not np.all(np.isfinite(x)) or np.any(x[:, 0] <= 0):
            raise np.linalg.LinAlgError("Levinson recursion broke down")
        z = np.zeros_like(x)
        z[:, 1:] = x[:, :0:-1]
        self.x0 = x[:, :1]
        self.xz_spectra = scipy.fft.rfft(np.stack([x, z], axis=1), 2 * L)  # (C, 2, L + 1)

    def __call__(self, r):
        L = self.L
        flipped = scipy.fft.rfft(r[..., ::-1], 2 * L)[..., None, :]
        # Low(v)^T r = J Low(v) J r for v = x, z: truncated convolutions of the reversed r.
        w = scipy.fft.irfft(self.xz_spectra * flipped, 2 * L)[..., :L][..., ::-1]
        both = self.xz_spectra * scipy.fft.rfft(w, 2 * L)
        return scipy.fft.irfft(both[..., 0, :] - both[..., 1, :], 2 * L)[..., :L] / self.x0


def _inner(a, b):
    return np.einsum("...cl,...cl->...", a, b)


def _pcg(matvec, precond, rhs):
    """Preconditioned conjugate gradients on a batch of systems (..., C, L).

    Returns the solutions, or None if some system has not converged (error energy in the G norm,
    estimated by r^T M^-1 r, above CG_TOLERANCE) within CG_MAX_ITERATIONS, or stagnates (less
    than 10x progress in 40 iterations), so that the caller solves densely instead.
    """
    x = precond(rhs)
    r = rhs - matvec(x)
    z = precond(r)
    rz = _inner(r, z)
    p = z
    history = []
    for _ in range(CG_MAX_ITERATIONS):
        active = rz > CG_TOLERANCE
        if not active.any():
            if not history:  # r is the true residual: nothing to check
                return x
            break
        history.append(rz.max())
        if len(history) > 40 and history[-1] > history[-41] / 10:
            return None
        q = matvec(p)
        pq = _inner(p, q)
        alpha = np.where(active & (pq > 0), rz / np.where(pq > 0, pq, 1.0), 0.0)
        x = x + alpha[..., None, None] * p
        r = r - alpha[..., None, None] * q
        z = precond(r)
        rz_new = _inner(r, z)
        beta = np.where(active, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        p = z + beta[..., None, None] * p
        rz = rz_new
    # Check against the true residual, not the recursively updated one.
    r = rhs - matvec(x)
    if not np.all(_inner(r, precond(r)) <= 10 * CG_TOLERANCE):
        return None
    return x


def _dense_solve(matrix, rhs):
    """Solve matrix @ x = rhs for rhs (..., C, L): Cholesky, else LU (mir_eval's), else least squares."""
    shape = rhs.shape
    b = rhs.reshape(-1, shape[-2] * shape[-1]).T
    try:
        x = scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix, check_finite=False), b, check_finite=False)
    except np.linalg.LinAlgError:  # not numerically positive definite
        try:
            x = np.linalg.solve(matrix, b)
        except np.linalg.LinAlgError:  # singular
            x = scipy.linalg.lstsq(matrix, b, check_finite=False)[0]
    return x.T.reshape(shape)


def _solve_filters(system, rhs, method):
    """Least-squares filters on all references (coupled) and on each reference alone."""
    joint = own = None
    if method == "fast":
        try:
            precond = _BlockDiagonalInverse(system.toeplitz_columns)
        except np.linalg.LinAlgError:
            precond = None
        if precond is not None:
            own = _pcg(lambda v: system.matvec(v, coupled=False), precond, rhs)
            joint = _pcg(system.matvec, precond, rhs)
    elif method != "dense":
        raise ValueError(f"method must be 'fast' or 'dense', not {method!r}")
    if joint is None:
        joint = _dense_solve(system.dense(), rhs)
    if own is None:
        own = np.empty_like(rhs)
        for j, column in enumerate(system.toeplitz_columns):
            own[..., j : j + 1, :] = _dense_solve(scipy.linalg.toeplitz(column), rhs[..., j : j + 1, :])
    return joint, own


def bss_eval_pairs(references, estimates, filter_length=FILTER_LENGTH, method="fast"):
    """SDR, SIR, SAR of every estimate against every reference: three arrays (K, C).

    references (C, T), estimates (K, T): K may differ from C (e.g. the mixture appended).
    A silent reference (is_silent) is a ScoreError; a silent estimate's row is DB_FLOOR.
    method 'dense' always solves the normal equations densely (slow; for checks).
    """
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    estimates = np.atleast_2d(np.asarray(estimates, dtype=np.float64))
    if references.shape[1] != estimates.shape[1]:
        raise ValueError(f"references have {references.shape[1]} samples, estimates {estimates.shape[1]}")
    K, C = estimates.shape[0], references.shape[0]
    for j in range(C):
        if is_silent(references[j]):
            raise ScoreError(f"reference {j + 1} is silent: BSS Eval cannot score against it", f"reference {j + 1}")
    sdr, sir, sar = (np.full((K, C), DB_FLOOR) for _ in range(3))
    live_ests = [k for k in range(K) if not is_silent(estimates[k])]
    if not live_ests:
        return sdr, sir, sar
    # All three metrics are scale invariant: unit energies keep the system well balanced.
    refs = references / np.linalg.norm(references, axis=1, keepdims=True)
    ests = estimates[live_ests] / np.linalg.norm(estimates[live_ests], axis=1, keepdims=True)
    system = _BlockToeplitzSystem(refs, filter_length)
    rhs = system.correlate(ests)  # (K', C', L)
    joint, own = _solve_filters(system, rhs, method)

    # Residual energies |e - S c|^2 = 1 - 2 c.D + c.G c (e has unit energy) of the filters found:
    # they exceed the least-squares minimum by the filters' error energy only (second order), and
    # with the orthogonality of least squares give every energy BSS Eval needs:
    # |P e|^2 = 1 - |e - P e|^2 and |P e - P_j e|^2 = |e - P_j e|^2 - |e - P e|^2.
    own_res = 1.0 - np.einsum("kcl,kcl->kc", own, 2.0 * rhs - system.matvec(own, coupled=False))
    joint_res = 1.0 - _inner(joint, 2.0 * rhs - system.matvec(joint))
    sdr[live_ests] = _db(1.0 - own_res, own_res)
    sir[live_ests] = _db(1.0 - own_res, own_res - joint_res[:, None])
    sar[live_ests] = _db(1.0 - joint_res, joint_res)[:, None]
    return sdr, sir, sar


def best_permutation(sir):
    """Estimate index for each reference maximizing the mean SIR (sir is (C, C), estimate x reference).

    Same rule as mir_eval: itertools order, first maximum wins.
    """
    num = sir.shape[1]
    best, best_score = tuple(range(num)), -np.inf
    for perm in itertools.permutations(range(num)):
        score = sir[list(perm), np.arange(num)].mean()
        if score > best_score:
            best, best_score = perm, score
    return best


def bss_eval_sources(references, estimates, filter_length=FILTER_LENGTH, compute_permutation=True, method="fast"):
    """Drop-in for mir_eval.separation.bss_eval_sources: (sdr, sir, sar, perm), perm[j] the
    estimate matched to reference j."""
    sdr, sir, sar = bss_eval_pairs(references, estimates, filter_length, method)
    if sdr.shape[0] != sdr.shape[1]:
        raise ValueError(f"{sdr.shape[0]} estimates for {sdr.shape[1]} references")
    perm = best_permutation(sir) if compute_permutation else tuple(range(sdr.shape[1]))
    idx = (list(perm), np.arange(sdr.shape[1]))
    return sdr[idx], sir[idx], sar[idx], np.asarray(perm)


def si_snr(reference, estimate):
    """Scale-invariant SNR in dB of estimate against reference (both zero-meaned), along the last axis;
    DB_FLOOR for an estimate with no component along the reference (e.g. zero once zero-meaned)."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = reference - reference.mean(axis=-1, keepdims=True)
    estimate = estimate - estimate.mean(axis=-1, keepdims=True)
    ref_energy = np.sum(reference * reference, axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        target = np.sum(estimate * reference, axis=-1, keepdims=True) / ref_energy * reference
    noise = estimate - target
    return _db(np.sum(target * target, axis=-1), np.sum(noise * noise, axis=-1))


def _pesq_rate_and_mode(rate):
    if rate == 8000 or (rate != 16000 and rate < 12000):
        return 8000, "nb"
    return 16000, "wb"


def pesq_score(reference, estimate, rate, utt="?"):
    """PESQ (ITU-T P.862): 'nb' at 8 kHz, 'wb' at 16 kHz, other rates resampled to the nearer.

    FLOORS['PESQ'] with a MetricWarning when PESQ cannot score the pair (no speech found, too short).
    """
    import pesq

    target_rate, mode = _pesq_rate_and_mode(rate)
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if target_rate != rate:
        from nnet.dsp import resample  # imported here: it brings torch, which scoring needs only here

        reference = resample(reference, rate, target_rate)
        estimate = resample(estimate, rate, target_rate)
    try:
        return max(float(pesq.pesq(target_rate, reference, estimate, mode)), FLOORS["PESQ"])
    except pesq.PesqError as err:
        warnings.warn(
            f"utterance '{utt}': PESQ failed ({type(err).__name__}: {err}); PESQ scored at its floor, {FLOORS['PESQ']}",
            MetricWarning,
            stacklevel=2,
        )
        return FLOORS["PESQ"]


def stoi_score(reference, estimate, rate, utt="?"):
    """STOI (Taal et al. 2011) through pystoi, which resamples to 10 kHz itself; bounded below by
    FLOORS['STOI'] (0: no correlation), as a silent estimate scores. STOI is a mean correlation of
    short-time envelopes, so an estimate whose envelope moves against the reference's (loud where
    the reference is quiet: e.g. noise or the other speaker) scores below 0: it is clipped to the
    floor with a MetricWarning that gives the value, as the other floors have theirs."""
    import pystoi

    reference, estimate = np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    try:
        value = float(pystoi.stoi(reference, estimate, rate, extended=False))
    except (ValueError, IndexError) as err:  # numpy's AxisError: no frame left once silent ones are removed
        warnings.warn(
            f"utterance '{utt}': STOI failed ({type(err).__name__}: {err}) on {len(reference)} samples: too short "
            f"for STOI once its silent frames are removed; STOI scored at its floor, {FLOORS['STOI']}",
            MetricWarning,
            stacklevel=2,
        )
        return FLOORS["STOI"]
    if value < FLOORS["STOI"]:
        warnings.warn(
            f"utterance '{utt}': STOI {value:.4f} is below 0 (the estimate's envelope moves against the "
            f"reference's); STOI scored at its floor, {FLOORS['STOI']}",
            MetricWarning,
            stacklevel=2,
        )
        return FLOORS["STOI"]
    return value


# BSS Eval projects an estimate of T samples (T + 511 once padded) on the C x 512 delayed references:
# a random estimate keeps about C x 512 / (T + 511) of its energy there. An utterance shorter than 4
# times that span (C = 2: 4096 samples, 0.51 s at 8 kHz) is refused rather than scored on a filter
# that can fit anything; corpora's utterances are seconds long.
MIN_LENGTH_FACTOR = 4


def min_length(num_sources):
    return MIN_LENGTH_FACTOR * num_sources * FILTER_LENGTH


def _check_signals(references, estimates, mixture, utt):
    """ScoreError naming the utterance and the signal for input that cannot be scored honestly."""
    num, length = references.shape
    if len(estimates) != num:
        raise ScoreError(f"utterance '{utt}': {len(estimates)} estimates for {num} references")
    if length == 0:
        raise ScoreError(f"utterance '{utt}': the references are empty", "reference 1")
    if length < min_length(num):
        raise ScoreError(
            f"utterance '{utt}': {length} samples, fewer than the {min_length(num)} that BSS Eval's "
            f"{FILTER_LENGTH}-tap filters need with {num} references ({MIN_LENGTH_FACTOR} x {num} x {FILTER_LENGTH}): "
            "a shorter signal is largely spanned by the delayed references, so that any estimate scores well "
            "(SAR up to 150 dB), and STOI cannot score it; remove the utterance (utils/subset_data_dir.py)",
            "mixture",
        )
    named = [(f"reference {j + 1}", x) for j, x in enumerate(references)]
    named += [(f"estimate {k + 1}", x) for k, x in enumerate(estimates)] + [("mixture", mixture)]
    for name, x in named:
        if x.ndim != 1 or len(x) != length:
            raise ScoreError(
                f"utterance '{utt}': {name} has {x.size} samples, the references {length}: "
                "every signal of an utterance must have the references' length",
                name,
            )
        if not np.all(np.isfinite(x)):
            raise ScoreError(f"utterance '{utt}': {name} has NaN or infinite samples", name)
    for name, x in named[:num] + named[-1:]:
        if is_silent(x):
            raise ScoreError(
                f"utterance '{utt}': {'the mixture' if name == 'mixture' else name} is silent "
                "(RMS below -100 dB full scale): a corpus error; fix or remove the utterance",
                name,
            )


def score_utterance(references, estimates, mixture, rate, utt="?", pesq_stoi=True):
    """Score one utterance: references (C, T), estimates (C signals of T samples), mixture (T) -> dict.

    Keys: METRICS (each averaged over the sources), 'perm' (estimate index per reference) and
    'floored' (the METRICS, in order, at which some source sits at its floor; see the module doc).
    Estimates are matched to references by BSS Eval's best permutation; SI-SNR, PESQ and STOI use
    the same matching. SDRi and SI-SNRi are relative to the mixture used as every source's estimate.
    pesq_stoi=False skips PESQ and STOI: NaN, except for a silent estimate (the floor).
    """
    references = np.atleast_2d(np.asarray(references, dtype=np.float64))
    estimates = [np.asarray(x, dtype=np.float64) for x in estimates]
    mixture = np.asarray(mixture, dtype=np.float64)
    _check_signals(references, estimates, mixture, utt)
    estimates = np.stack(estimates)
    num = len(references)

    silent = [k for k in range(num) if is_silent(estimates[k])]
    if silent:
        warnings.warn(
            f"utterance '{utt}': estimate {', '.join(str(k + 1) for k in silent)} silent (RMS below "
            "-100 dB full scale): scored at each metric's floor",
            MetricWarning,
            stacklevel=2,
        )

    sdr, sir, sar = bss_eval_pairs(references, np.concatenate([estimates, mixture[None]]))
    perm = best_permutation(sir[:num])
    matched = estimates[list(perm)]
    idx = (list(perm), np.arange(num))
    per_source = {
        "SDR": sdr[idx],
        "SIR": sir[idx],
        "SAR": sar[idx],
        "SI-SNR": si_snr(references, matched),
        "PESQ": np.full(num, np.nan),
        "STOI": np.full(num, np.nan),
    }
    for j in range(num):
        if perm[j] in silent:  # BSS Eval's rows are floored already; PESQ cannot score silence
            per_source["SI-SNR"][j] = FLOORS["SI-SNR"]
            per_source["PESQ"][j], per_source["STOI"][j] = FLOORS["PESQ"], FLOORS["STOI"]
        elif pesq_stoi:
            per_source["PESQ"][j] = pesq_score(references[j], matched[j], rate, utt)
            per_source["STOI"][j] = stoi_score(references[j], matched[j], rate, utt)
    floored = {name: bool(np.any(values <= FLOORS[name])) for name, values in per_source.items()}
    floored["SDRi"], floored["SI-SNRi"] = floored["SDR"], floored["SI-SNR"]
    per_source["SDRi"] = sdr[idx] - sdr[num]
    per_source["SI-SNRi"] = per_source["SI-SNR"] - si_snr(references, mixture[None])
    result = {name: float(np.mean(per_source[name])) for name in METRICS}
    result["perm"] = tuple(int(p) for p in perm)
    result["floored"] = tuple(name for name in METRICS if floored[name])
    return result
