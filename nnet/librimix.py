"""The science of LibriMix (Cosentino et al., 2020): LibriSpeech utterances mixed with WHAM! noise.

These are the rules of LibriMix's published metadata and creation scripts, written here:
metadata (one row a mixture: each source's path and gain, the noise's path and gain), all at 16 kHz:
- utterances of at least 3 s; the sources of a mixture come from different speakers;
- every signal is zero-padded (or, the noise, cut) to the longest source, and its integrated
  loudness (ITU-R BS.1770, measured by pyloudnorm) is moved to a target drawn uniformly from
  [-33, -25] LUFS for speech and [-38, -30] LUFS for the noise;
- a signal that would then reach a peak of 1 is instead scaled to a peak of 0.9;
- if the sum of all (the `max` mixture) peaks above 0.9, every signal is scaled by 0.9 / peak;
- a row's gain is the product of those scale factors. (LibriMix writes the ratio of the loudness
  measured before and after, the same factor up to the meter's gating.)
creation (one mixture from a row):
- gains applied at 16 kHz, then resampled (polyphase, Kaiser beta 5: nnet.dsp.resample), then
  cut to the shortest source (`min`) or zero-padded to the longest (`max`);
- the noise is read to the longest source's length (its first channel: WHAM! is two-channel); a
  shorter noise is extended by repeating it with a cross-fade of 0.5 s Hann halves;
- mix_clean = sum of the sources; mix_both = mix_clean + noise. No second peak guard.
"""

import numpy as np
import pyloudnorm

from nnet import dsp

RATE = 16000  # LibriSpeech and WHAM! noise
RATES = {"8k": 8000, "16k": 16000}
MIN_SECONDS = 3.0  # shorter utterances are not used
SPEECH_LUFS = (-33.0, -25.0)
NOISE_LUFS = (-38.0, -30.0)
PEAK = 0.9
STALE_PASSES = 20  # group_utterances: a small corpus has no more distinct groups to give
CROSSFADE = RATE // 2 + 1  # samples of a noise repetition's cross-fade (half of a 1 s Hann window)
# A LibriSpeech subset -> the LibriMix set it makes (its folder and the mixture CSVs' name).
SETS = {"train-clean-100": "train-100", "train-clean-360": "train-360", "dev-clean": "dev", "test-clean": "test"}
# The WHAM! noise subset of each LibriMix set.
WHAM_SUBSET = {"train-100": "tr", "train-360": "tr", "dev": "cv", "test": "tt"}


def loudness(samples):
    """Integrated loudness in LUFS of 16 kHz samples (-inf for silence)."""
    return pyloudnorm.Meter(RATE).integrated_loudness(np.asarray(samples, dtype=np.float64))


def fit(samples, length):
    """Cut or zero-pad to `length` samples."""
    samples = np.asarray(samples, dtype=np.float64)
    return samples[:length] if len(samples) >= length else np.pad(samples, (0, length - len(samples)))


def draw_gains(sources, noise, rng):
    """The metadata gains of one mixture (16 kHz signals): ([gain of each source], noise gain or None).

    rng is a random.Random: it draws each target loudness, the sources' first, then the noise's."""
    length = max(len(s) for s in sources)
    signals = [fit(s, length) for s in sources] + ([fit(noise, length)] if noise is not None else [])
    gains = []
    for i, x in enumerate(signals):
        low, high = NOISE_LUFS if i == len(sources) else SPEECH_LUFS
        target = rng.uniform(low, high)
        measured = loudness(x)
        if not np.isfinite(measured):
            raise ValueError(f"signal {i + 1} is silent (loudness {measured} LUFS): it cannot be normalized")
        gain = 10.0 ** ((target - measured) / 20.0)
        peak = np.max(np.abs(x))
        if gain * peak >= 1.0:  # would clip: a 0.9 peak instead of the drawn loudness
            gain = PEAK / peak
        gains.append(gain)
    peak = np.max(np.abs(sum(g * x for g, x in zip(gains, signals))))
    if peak > PEAK:
        gains = [g * PEAK / peak for g in gains]
    return gains[: len(sources)], (gains[-1] if noise is not None else None)


def extend_noise(noise, length):
    """Repeat `noise` up to `length` samples, each repetition cross-faded into the last (Hann halves)."""
    noise = np.asarray(noise, dtype=np.float64)
    if len(noise) >= length:
        return noise[:length]
    if len(noise) <= CROSSFADE:
        raise ValueError(f"a noise of {len(noise)} samples is too short to repeat (> {CROSSFADE} needed)")
    window = np.hanning(2 * CROSSFADE - 1)
    rise, fall = window[:CROSSFADE], window[CROSSFADE - 1 :]
    out = noise
    while len(out) < length:
        faded = out[-CROSSFADE:] * fall + noise[:CROSSFADE] * rise
        out = np.concatenate([out[:-CROSSFADE], faded, noise[CROSSFADE:]])
    return out[:length]


def make_mixture(sources, gains, noise, noise_gain, rate, mode):
    """One LibriMix mixture at `rate` Hz from 16 kHz signals: {'s1'.., 'noise', 'mix_clean', 'mix_both'}
    (no noise: no 'noise' and 'mix_both')."""
    longest = max(len(s) for s in sources)
    signals = [g * np.asarray(s, dtype=np.float64) for g, s in zip(gains, sources)]
    if noise is not None:
        signals.append(noise_gain * extend_noise(noise, longest))
    signals = [dsp.resample(x, RATE, rate) for x in signals]
    length = (min if mode == "min" else max)(len(x) for x in signals)
    signals = [fit(x, length) for x in signals]
    out = {f"s{i + 1}": x for i, x in enumerate(signals[: len(sources)])}
    out["mix_clean"] = sum(signals[: len(sources)])
    if noise is not None:
        out["noise"] = signals[-1]
        out["mix_both"] = out["mix_clean"] + signals[-1]
    return out


def group_utterances(utterances, num_spk, rng, reuse=False, target=3000):
    """Groups of `num_spk` utterances of different speakers: [(index, ..)] into `utterances`, a list of
    (speaker, ..) tuples. Without `reuse` (training sets), each utterance is used at most once; with it
    (dev, test), passes over every utterance are repeated until `target` distinct groups, or until
    STALE_PASSES passes in a row add none (a small corpus)."""

    def one_pass():
        pool = list(range(len(utterances)))
        rng.shuffle(pool)
        groups = []
        while len(pool) >= num_spk:
            positions, speakers = [], set()
            for position, index in enumerate(pool):
                if utterances[index][0] not in speakers:
                    positions.append(position)
                    speakers.add(utterances[index][0])
                    if len(positions) == num_spk:
                        break
            if len(positions) < num_spk:
                break  # what is left is too few speakers
            groups.append(tuple(pool[p] for p in positions))
            for position in reversed(positions):
                del pool[position]
        return groups

    if not reuse:
        return one_pass()
    groups, seen, stale = [], set(), 0
    while len(groups) < target and stale < STALE_PASSES:
        new = [g for g in one_pass() if frozenset(g) not in seen]
        stale = 0 if new else stale + 1
        for g in new:
            seen.add(frozenset(g))
        groups += new
    return groups[:target]
