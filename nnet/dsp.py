"""The one STFT/iSTFT of cocktail: features, training targets and resynthesis all go through here.

Defaults follow both seed papers: 32 ms sqrt-Hann window, 8 ms hop, FFT length = window length
(256 points, 129 bins at 8 kHz). sqrt-Hann analysis and synthesis windows at 75 % overlap
reconstruct perfectly; torch.istft divides by the summed squared windows, so iSTFT(STFT(x)) == x.

It also holds the one resampler (`resample`): wsj0-2mix creation, separate_wav.py and PESQ use it.
"""

import contextlib
import dataclasses
import math
import shlex

import numpy as np
import torch

LOG_FLOOR = 1e-8  # keeps log() finite on digital silence


@dataclasses.dataclass(frozen=True)
class StftConfig:
    sample_rate: int = 8000
    frame_length_ms: float = 32.0
    frame_shift_ms: float = 8.0
    window: str = "sqrt_hann"  # sqrt_hann | hann

    @property
    def win_length(self):
        return int(round(self.sample_rate * self.frame_length_ms / 1000))

    @property
    def hop_length(self):
        return int(round(self.sample_rate * self.frame_shift_ms / 1000))

    @property
    def n_fft(self):
        return self.win_length

    @property
    def num_bins(self):
        return self.n_fft // 2 + 1

    def window_tensor(self, device=None, dtype=torch.float32):
        hann = torch.hann_window(self.win_length, periodic=True, device=device, dtype=dtype)
        if self.window == "sqrt_hann":
            return hann.sqrt()
        if self.window == "hann":
            return hann
        raise ValueError(f"unknown window '{self.window}': use sqrt_hann or hann")

    def to_dict(self):
        return dataclasses.asdict(self)


def read_stft_conf(path, sample_rate=None):
    """Read a Kaldi-style option file (`--frame-length-ms=32` per line, '#' comments) into StftConfig.
    No path (None or '') gives the built-in defaults; `sample_rate` comes from the audio."""
    fields = {f.name: f.type for f in dataclasses.fields(StftConfig)}
    values = {}
    lines = open(path, encoding="utf-8") if path else contextlib.nullcontext([])
    with lines as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            for token in shlex.split(line):
                if not token.startswith("--") or "=" not in token:
                    raise ValueError(f"{path}:{lineno}: expected --name=value, got '{token}'")
                name, value = token[2:].split("=", 1)
                name = name.replace("-", "_")
                if name not in fields:
                    raise ValueError(
                        f"{path}:{lineno}: unknown option --{token[2:].split('=')[0]}; "
                        f"known: {', '.join('--' + n.replace('_', '-') for n in fields)}"
                    )
                values[name] = fields[name](value)
    if sample_rate is not None:
        values["sample_rate"] = int(sample_rate)
    return StftConfig(**values)


def stft(signal, stft_config, center=True):
    """Complex STFT of (..., samples) -> (..., frames, bins).

    center=True pads n_fft//2 zeros on both sides (frame t is centred on sample t*hop);
    center=False takes a signal already padded that way, e.g. a slice from `padded_segment`.
    """
    signal = torch.as_tensor(signal)
    shape = signal.shape
    flat = signal.reshape(-1, shape[-1])
    spec = torch.stft(
        flat,
        n_fft=stft_config.n_fft,
        hop_length=stft_config.hop_length,
        win_length=stft_config.win_length,
        window=stft_config.window_tensor(flat.device, flat.dtype),
        center=center,
        pad_mode="constant",
        return_complex=True,
    )
    spec = spec.transpose(-1, -2)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec, stft_config, length):
    """Inverse of `stft`: (..., frames, bins) complex -> (..., length) real."""
    shape = spec.shape
    flat = spec.reshape(-1, *shape[-2:]).transpose(-1, -2)
    real_dtype = flat.real.dtype
    signal = torch.istft(
        flat,
        n_fft=stft_config.n_fft,
        hop_length=stft_config.hop_length,
        win_length=stft_config.win_length,
        window=stft_config.window_tensor(flat.device, real_dtype),
        center=True,
        length=length,
    )
    return signal.reshape(*shape[:-2], signal.shape[-1])


def num_frames(num_samples, stft_config):
    """Frames `stft` gives for a signal of num_samples (center padding)."""
    return num_samples // stft_config.hop_length + 1


def padded_segment(samples, first_frame, frames, stft_config):
    """Samples that `stft(..., center=False)` turns into frames [first_frame, first_frame + frames)
    of the centred STFT of the whole signal: lets a data loader cut segments and leave the
    STFT to the training device. `samples` is (..., n) numpy or torch."""
    pad = stft_config.n_fft // 2
    start = first_frame * stft_config.hop_length - pad
    stop = (first_frame + frames - 1) * stft_config.hop_length + stft_config.n_fft - pad
    n = samples.shape[-1]
    inside = samples[..., max(start, 0) : min(stop, n)]
    before, after = max(0, -start), max(0, stop - n)
    if isinstance(samples, torch.Tensor):
        return torch.nn.functional.pad(inside, (before, after))
    return np.pad(inside, [(0, 0)] * (inside.ndim - 1) + [(before, after)])


def log_magnitude(spec):
    """The network input feature: log |X|, floored."""
    return torch.log(spec.abs().clamp_min(LOG_FLOOR))


def resample(samples, from_rate, to_rate):
    """Resample along the last axis, in float64, as MATLAB's resample(x, p, q) does: a polyphase
    Kaiser-windowed (beta 5) sinc lowpass of 2*10*max(p, q)+1 taps, ceil(n*p/q) samples out.
    MERL's wsj0-2mix scripts resample with MATLAB, so the corpus made here matches theirs."""
    import scipy.signal  # here, not at the top: it takes 0.8 s to import, and most processes never resample

    samples = np.asarray(samples, dtype=np.float64)
    if from_rate == to_rate:
        return samples
    common = math.gcd(int(from_rate), int(to_rate))
    return scipy.signal.resample_poly(
        samples, int(to_rate) // common, int(from_rate) // common, axis=-1, window=("kaiser", 5.0)
    )
