"""The science of wsj0-2mix and wsj0-3mix creation: active speech level (ITU-T P.56 method B) and mixing.

Reproduces MERL's create_wav_2speakers.m and create_wav_3speakers.m (the same rule with a third
source), which use VOICEBOX's `activlev`:
- each source is resampled to 8 kHz (MATLAB `resample`, which nnet.dsp.resample reproduces),
- its active level is measured there and the source is divided by its square root (unit active level),
- it is scaled by 10^(snr/20),
- all are truncated to the shortest source (`min`) or zero-padded to the longest one (`max`),
- mix = s1 + s2 (+ s3), and one gain brings the largest absolute sample of mix and every source to 0.9.
The 16 kHz corpus applies the gains measured at 8 kHz to the 16 kHz sources, as the MATLAB scripts do.

`activlev` follows VOICEBOX's implementation of P.56 method B: the signal is zero-padded by 0.35 s and
band-passed (200 Hz highpass; 5.5 kHz lowpass only when the rate is at least 12.1 kHz), the envelope is
the rectified signal smoothed by two cascaded one-pole filters (time constant 0.03 s), held for 0.2 s
(hangover), and compared with 20 thresholds a factor 2 in power (3 dB) apart below the largest value.
The active level is where the level measured over the samples above a threshold lies 15.9 dB above that
threshold, linearly interpolated between the two thresholds that bracket the crossing.
"""

import functools
import math
import os

import numpy as np
import scipy.ndimage
import scipy.optimize
import scipy.signal

MARGIN_DB = 15.9  # P.56: active level lies this far above the activity threshold
ENVELOPE_TIME_S = 0.03  # time constant of the envelope smoothing
HANGOVER_S = 0.2  # a sample stays active this long after the envelope falls
PADDING_S = 0.35  # zeros appended so the hangover of the last word is counted
NUM_BINS = 20  # thresholds a factor 2 in power apart: a 60 dB range
BAND_HZ = (200.0, 5500.0)  # -0.25 dB points of the input bandpass filter
PEAK = 0.9  # wsj0-2mix, wsj0-3mix: largest absolute sample of mix, s1, s2 (, s3)
# wsj0-2mix's level rule: "SNRs between 0 dB and 5 dB" (Hershey et al. 2016), written in MERL's lists
# as +x for the first source and -x for the second, x uniform in [0, 2.5]
SNR_MAX_DB = 2.5
WSJ0_RATE = 16000
RATES = {"8k": 8000, "16k": 16000}


class CreationError(Exception):
    """Bad input of a corpus creation (local/create_wsj0_2mix.py, local/create_librimix.py): the
    message names the list file, line, row, path or option and says what to do."""


def parse_list(value, allowed, option):
    """The items of a comma-separated option value (`--sample-rates 8k,16k`), each one of `allowed`;
    CreationError naming the option otherwise."""
    items = [v for v in value.split(",") if v]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise CreationError(f"{option} {value}: expected a comma-separated subset of {','.join(allowed)}")
    return items


@functools.lru_cache(maxsize=None)
def _prototype_highpass():
    """s-plane zeros and poles of a 5th-order Chebyshev II highpass (50 dB stopband), -0.25 dB at w=1."""

    def excess_db_at_1(stop_edge):
        z, p, k = scipy.signal.cheby2(5, 50, stop_edge, "highpass", analog=True, output="zpk")
        _, h = scipy.signal.freqs_zpk(z, p, k, [1.0])
        return 20 * np.log10(abs(h[0])) + 0.25

    stop_edge = scipy.optimize.brentq(excess_db_at_1, 0.05, 0.99)
    z, p, _ = scipy.signal.cheby2(5, 50, stop_edge, "highpass", analog=True, output="zpk")
    return z, p


@functools.lru_cache(maxsize=None)
def band_filter(sample_rate):
    """Second-order sections of the P.56 input filter at this rate (bilinear transform, prewarped)."""
    z, p = _prototype_highpass()
    t = math.tan(math.pi * BAND_HZ[0] / sample_rate)
    zd, pd = (1 + z * t) / (1 - z * t), (1 + p * t) / (1 - p * t)
    gain = np.real(np.prod(-1 - pd) / np.prod(-1 - zd))  # unit gain at Nyquist
    sos = scipy.signal.zpk2sos(zd, pd, gain)
    if sample_rate >= 2.2 * BAND_HZ[1]:
        # lowpass from the same prototype with s -> 1/s; unit gain at DC
        t = math.tan(math.pi * BAND_HZ[1] / sample_rate)
        zd, pd = (z + t) / (z - t), (p + t) / (p - t)
        gain = np.real(np.prod(1 - pd) / np.prod(1 - zd))
        sos = np.vstack([sos, scipy.signal.zpk2sos(zd, pd, gain)])
    return sos


def activlev(samples, sample_rate):
    """Active speech level of ITU-T P.56 method B, as VOICEBOX activlev(sp, fs).

    Returns (level, activity): the active level as a power (mean square over the active samples of the
    filtered signal) and the activity factor in [0, 1] (the fraction of the padded signal that is
    active). An all-zero signal gives (0.0, 0.0).
    """
    x = np.asarray(samples, dtype=np.float64).ravel()
    x = np.concatenate([x, np.zeros(math.ceil(PADDING_S * sample_rate))])
    y = scipy.signal.sosfilt(band_filter(sample_rate), x)
    energy = float(np.sum(y * y))  # np.dot measured 40x slower here (BLAS threading)
    if energy == 0.0:
        return 0.0, 0.0

    g = math.exp(-1.0 / (ENVELOPE_TIME_S * sample_rate))
    envelope = scipy.signal.lfilter([(1 - g) ** 2], [1.0, -2 * g, g * g], np.abs(y))
    hangover = math.ceil(HANGOVER_S * sample_rate) + 1
    held = scipy.ndimage.maximum_filter1d(
        envelope, size=hangover, origin=(hangover - 1) // 2, mode="constant", cval=0.0
    )  # max over the last `hangover` samples
    # Bin of each sample: 2^(top-k-1) <= held^2 < 2^(top-k) is bin k (1 = loudest); zero and the
    # quietest samples go to the last bin.
    power = held * held
    _, exponent = np.frexp(power)
    nonzero = power > 0
    top = int(exponent[nonzero].max()) + 1
    bins = np.full(len(held), NUM_BINS)
    bins[nonzero] = np.minimum(top - exponent[nonzero], NUM_BINS)
    active_counts = np.cumsum(np.bincount(bins, minlength=NUM_BINS + 1)[1:])  # samples at or above each threshold

    j = np.arange(1, NUM_BINS + 1)
    level_db = 10 * np.log10(energy / active_counts)  # counts >= 1: the loudest sample is in bin 1
    threshold_db = 10 * np.log10(2) * (top - j - 1)
    excess = level_db - threshold_db - MARGIN_DB
    crossings = np.flatnonzero((excess[:-1] < 0) & (excess[1:] >= 0))
    if crossings.size:
        k = crossings[0]
        frac = 1 / (1 - excess[k + 1] / excess[k])
    elif excess[-1] <= 0:  # never reaches the margin: take the lowest threshold
        k, frac = NUM_BINS - 2, 1.0
    else:  # always above it: take the highest threshold
        k, frac = 0, 0.0
    active_db = level_db[k] + frac * (level_db[k + 1] - level_db[k])
    level = 10 ** (active_db / 10)
    return level, energy / (len(x) * level)


def source_gain(samples_8k, snr_db):
    """Gain that brings an 8 kHz source to unit active level, then to `snr_db` dB: 10^(snr/20)/sqrt(level).

    Raises ValueError for a silent source (no level to normalize).
    """
    level, _ = activlev(samples_8k, 8000)
    if level <= 0:
        raise ValueError("the source is silent (all samples are zero): it has no active speech level")
    return 10 ** (snr_db / 20) / math.sqrt(level)


def mix_sources(sources, mode):
    """(mix, [s1, .., sN]) of N scaled sources: `min` truncates all to the shortest, `max` zero-pads all
    to the longest; one gain brings the largest absolute sample of the mix and the sources to PEAK.

    MERL's create_wav_2speakers.m and create_wav_3speakers.m: the sources are cut (min) or padded (max)
    to a common length, summed, and mix_scaling = 1/max_amp*0.9 with max_amp the largest absolute sample
    over mix, s1, s2 (, s3) -- quiet mixtures are raised to 0.9 too. (pywsj0-mix's gain =
    max(1, peaks)/0.9, which never amplifies, differs from MERL there.)"""
    if len(sources) < 2:
        raise ValueError(f"a mixture needs 2 or more sources, got {len(sources)}")
    if mode == "min":
        n = min(len(s) for s in sources)
        sources = [s[:n] for s in sources]
    elif mode == "max":
        n = max(len(s) for s in sources)
        sources = [np.pad(s, (0, n - len(s))) for s in sources]
    else:
        raise ValueError(f"mode must be 'min' or 'max', not '{mode}'")
    mix = sources[0] + sources[1]
    for s in sources[2:]:  # left to right, as MATLAB's s1 + s2 + s3: the 2-source sum stays bit-identical
        mix = mix + s
    peak = max(np.abs(x).max(initial=0.0) for x in (mix, *sources))
    if peak == 0:
        raise ValueError("the mixture is silent: every source is zero over the mixed length")
    scale = PEAK / peak
    return mix * scale, [s * scale for s in sources]


def draw_mix_list(rng, by_speaker, num_mixtures, num_spk=2):
    """[(path1, snr1, .., pathN, snrN)]: num_mixtures lines of a mix list in MERL's format, drawn by
    wsj0-2mix's rules from {speaker: [recording path]} with the numpy Generator rng.

    Each mixture takes num_spk distinct speakers (uniformly), one recording of each (uniformly), and
    the levels +x, -x with x uniform in [0, SNR_MAX_DB], as strings of 4 decimals; a third source
    (wsj0-3mix) gets y uniform in [-SNR_MAX_DB, SNR_MAX_DB]: MERL publish their 3-speaker lists but
    not how they drew them, so that draw is ours. Names (mixture_name's recordings and first level)
    are unique: a repeat is drawn again. Raises ValueError when there are fewer than num_spk
    speakers, or when the recordings cannot make num_mixtures distinct mixtures."""
    speakers = sorted(by_speaker)
    if len(speakers) < num_spk:
        raise ValueError(f"{len(speakers)} speaker(s); {num_spk}-speaker mixtures need at least {num_spk}")
    lines, names, repeats = [], set(), 0
    while len(lines) < num_mixtures:
        chosen = rng.choice(len(speakers), size=num_spk, replace=False)
        paths = [by_speaker[speakers[c]][rng.integers(len(by_speaker[speakers[c]]))] for c in chosen]
        x = f"{rng.uniform(0, SNR_MAX_DB):.4f}"
        snrs = [x, "-" + x] + [f"{rng.uniform(-SNR_MAX_DB, SNR_MAX_DB):.4f}" for _ in range(num_spk - 2)]
        name = (tuple(os.path.basename(p) for p in paths), x)
        if name in names:
            repeats += 1
            if repeats > 100 * num_mixtures:
                raise ValueError(f"cannot draw {num_mixtures} distinct mixtures from these recordings")
            continue
        names.add(name)
        lines.append(tuple(v for pair in zip(paths, snrs) for v in pair))
    return lines
