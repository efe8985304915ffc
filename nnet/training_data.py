"""Training and validation data: feature segments from the Kaldi archives plus the waveform slices
from which the training device computes the STFT targets.

An item is (features (frames, bins), waveforms (1 + C, samples)): row 0 of waveforms is the
mixture, rows 1..C the references, cut so that `dsp.stft(..., center=False)` gives exactly the
item's frames (see `dsp.padded_segment`).

DynamicMixingSet makes the same items from mixtures it draws anew each epoch from the training
speakers' single-speaker recordings (dynamic mixing), by the rules of the static corpus.
"""

import glob
import os

import kaldiio
import numpy as np
import torch

from nnet import corpus, datafiles, dsp


class DataError(ValueError):
    """Training data that cannot be used (a damaged archive, lengths that disagree); the message
    names the utterance and the file."""


class SeparationSet(torch.utils.data.Dataset):
    """A Kaldi data dir (feats.scp, wav.scp, spk<c>.scp, utt2num_samples) cut into segments.

    segment_frames=None keeps whole utterances (validation); otherwise utterances are cut into
    segments of that many frames, a shorter utterance is one shorter segment, and a tail of at
    least a quarter segment becomes the last `segment_frames` of the utterance.
    """

    def __init__(self, data_dir, stft_config, segment_frames=None):
        self.data_dir = data_dir
        self.stft_config = stft_config
        self.feats = datafiles.read_table(os.path.join(data_dir, "feats.scp"))
        self.mixtures = datafiles.read_table(os.path.join(data_dir, "wav.scp"))
        ref_paths = sorted(glob.glob(os.path.join(data_dir, "spk[0-9]*.scp")))
        if not ref_paths:
            raise DataError(f"{data_dir}: no spk1.scp/spk2.scp: training needs the references")
        self.references = [datafiles.read_table(p) for p in ref_paths]
        lengths = datafiles.read_table(os.path.join(data_dir, "utt2num_samples"))
        self.segments = []
        for utt in self.feats:
            for table, path in [(self.mixtures, "wav.scp"), (lengths, "utt2num_samples")] + [
                (t, os.path.basename(p)) for t, p in zip(self.references, ref_paths)
            ]:
                if utt not in table:
                    raise DataError(
                        f"{data_dir}/{path}: no entry for utterance '{utt}' of feats.scp; "
                        f"run utils/fix_data_dir.py {data_dir}"
                    )
            total = dsp.num_frames(int(lengths[utt]), stft_config)
            self.segments.extend((utt, start, length) for start, length in _cut(total, segment_frames))

    @property
    def num_spk(self):
        return len(self.references)

    def __len__(self):
        return len(self.segments)

    def __getitem__(self, index):
        utt, start, length = self.segments[index]
        try:
            feats = kaldiio.load_mat(self.feats[utt])[start : start + length]
        except Exception as err:  # a truncated or overwritten ark: kaldiio's errors name neither
            raise DataError(
                f"{self.data_dir}/feats.scp: utterance '{utt}': cannot read its features from "
                f"{self.feats[utt]} ({type(err).__name__}: {err}): the archive is damaged; "
                "re-run steps/make_feats.sh (stage 2)"
            ) from None
        if feats.shape[0] != length:
            raise DataError(
                f"{self.data_dir}: utterance '{utt}' has {feats.shape[0] + start} feature "
                "frames, utt2num_samples implies more: re-run steps/make_feats.sh"
            )
        waves = []
        for table in [self.mixtures] + self.references:
            try:
                samples, _ = datafiles.read_wav(table[utt])
            except datafiles.AudioError as err:  # names the file; the utterance and data dir are added here
                raise DataError(f"{self.data_dir}: utterance '{utt}': {err}") from None
            waves.append(samples)
        if len({len(w) for w in waves}) != 1:
            raise DataError(f"{self.data_dir}: utterance '{utt}': mixture and references differ in length")
        waves = dsp.padded_segment(np.stack(waves), start, length, self.stft_config)
        return torch.from_numpy(np.array(feats, dtype=np.float32)), torch.from_numpy(waves)


class DynamicMixingSet(torch.utils.data.Dataset):
    """Training items from mixtures drawn anew each epoch (set_epoch) out of single-speaker recordings.

    sources_dir is a Kaldi dir of the training speakers' recordings (wav.scp, utt2spk: what
    local/make_mixtures.py writes to <corpus>/sources/tr and the recipe's stage 1 copies to
    data/tr/sources). Each epoch draws its mix list as the static corpus was drawn
    (corpus.draw_mix_list: distinct speakers, +x / -x dB, x uniform in [0, 2.5]) from (seed, epoch),
    and mixes as local/create_wsj0_2mix.py does: each source resampled to the training rate, at unit
    P.56 active level (measured at 8 kHz, once per recording) times 10^(snr/20), cut to the shortest
    (min) or padded to the longest (max), one gain bringing the largest absolute sample to 0.9. Mixtures are cut into
    segments as SeparationSet cuts the static ones, and drawn until the epoch has num_items segments:
    the static set's count, so that an epoch has as many steps either way. The features are the
    log-magnitude STFT of the segment, computed here with the same STFT (normalized by the trainer
    with the static set's CMVN). Unlike the corpus files, mixtures are not rounded to 16 bits.
    """

    def __init__(self, sources_dir, stft_config, segment_frames, num_spk, num_items, seed, mode="min"):
        self.data_dir, self.stft_config, self.segment_frames = sources_dir, stft_config, segment_frames
        self.num_spk, self.num_items, self.seed, self.mode = num_spk, num_items, seed, mode
        tables = {}
        for name in ("wav.scp", "utt2spk"):
            path = os.path.join(sources_dir, name)
            if not os.path.isfile(path):
                raise DataError(
                    f"{path} not found: dynamic mixing (training.dynamic_mixing: true) draws its mixtures "
                    "from the training speakers' single-speaker recordings in <train-dir>/sources/ (wav.scp, "
                    "utt2spk), which the recipes made with local/make_mixtures.sh write at stage 1; "
                    "set training.dynamic_mixing: false for a corpus without them"
                )
            tables[name] = datafiles.read_table(path)
        wavs, utt2spk = tables["wav.scp"], tables["utt2spk"]
        self.samples, self.levels, self.by_speaker = {}, {}, {}
        for utt, path in wavs.items():
            if utt not in utt2spk:
                raise DataError(f"{sources_dir}/utt2spk: no line for utterance '{utt}' of wav.scp: add it")
            try:
                samples, rate = datafiles.read_wav(path, dtype="float64")
            except datafiles.AudioError as err:
                raise DataError(f"{sources_dir}/wav.scp: utterance '{utt}': {err}") from None
            if rate < stft_config.sample_rate:
                raise DataError(
                    f"{sources_dir}/wav.scp: utterance '{utt}': {path} is {rate} Hz, below the training "
                    f"mixtures' {stft_config.sample_rate} Hz: give sources at the corpus's rate or higher"
                )
            samples = dsp.resample(samples, rate, stft_config.sample_rate)  # as the corpus creation
            level, _ = corpus.activlev(dsp.resample(samples, stft_config.sample_rate, 8000), 8000)
            if level <= 0:
                raise DataError(f"{sources_dir}/wav.scp: utterance '{utt}': {path} is silent")
            self.samples[utt], self.levels[utt] = samples.astype(np.float32), level
            self.by_speaker.setdefault(utt2spk[utt], []).append(utt)
        if len(self.by_speaker) < num_spk:
            raise DataError(
                f"{sources_dir}: {len(self.by_speaker)} speaker(s); {num_spk}-speaker mixtures need {num_spk}"
            )
        self.mixtures, self.segments = [], []
        self.set_epoch(1)

    def set_epoch(self, epoch):
        """Draw epoch's mixtures: the same for the same (seed, epoch), so a resumed run sees them again."""
        rng = np.random.default_rng([self.seed, epoch])
        self.mixtures, self.segments = [], []
        while len(self.segments) < self.num_items:
            # a batch of mix list lines at a time; duplicates within a batch are drawn again
            for line in corpus.draw_mix_list(rng, self.by_speaker, max(64, self.num_items // 8), self.num_spk):
                utts, snrs = line[0::2], [float(x) for x in line[1::2]]
                lengths = [len(self.samples[u]) for u in utts]
                n = min(lengths) if self.mode == "min" else max(lengths)
                index, name = len(self.mixtures), "+".join(utts)  # the name messages give (_check_finite)
                self.mixtures.append((utts, snrs))
                total = dsp.num_frames(n, self.stft_config)
                cuts = _cut(total, self.segment_frames)
                self.segments.extend((name, start, length, index) for start, length in cuts)
                if len(self.segments) >= self.num_items:
                    break
        del self.segments[self.num_items :]

    def __len__(self):
        return self.num_items

    def mixture(self, index):
        """(mix, [s1, .., sC]) of the epoch's mixture index, float64, as the corpus creation makes them."""
        utts, snrs = self.mixtures[index]
        scaled = [self.samples[u] * (10 ** (x / 20) / np.sqrt(self.levels[u])) for u, x in zip(utts, snrs)]
        return corpus.mix_sources(scaled, self.mode)

    def __getitem__(self, index):
        _, start, length, mixture = self.segments[index]
        mix, sources = self.mixture(mixture)
        waves = dsp.padded_segment(np.stack([mix, *sources]).astype(np.float32), start, length, self.stft_config)
        spec = dsp.stft(torch.from_numpy(waves[0]), self.stft_config, center=False)
        feats = dsp.log_magnitude(spec)
        return feats, torch.from_numpy(waves)


def _cut(total, segment_frames):
    if segment_frames is None or total <= segment_frames:
        return [(0, total)]
    starts = list(range(0, total - segment_frames + 1, segment_frames))
    if total - (starts[-1] + segment_frames) >= segment_frames // 4:
        starts.append(total - segment_frames)
    return [(s, segment_frames) for s in starts]


def collate(items):
    """Pad a list of items into feats (B, T, F), waves (B, 1 + C, S) and lengths (B,)."""
    lengths = torch.tensor([f.shape[0] for f, _ in items])
    feats = torch.nn.utils.rnn.pad_sequence([f for f, _ in items], batch_first=True)
    longest = max(w.shape[-1] for _, w in items)
    waves = torch.stack([torch.nn.functional.pad(w, (0, longest - w.shape[-1])) for _, w in items])
    return feats, waves, lengths


def length_sorted_batches(dataset, batch_size):
    """Index batches of similar lengths (validation: whole utterances, little padding)."""
    order = sorted(range(len(dataset)), key=lambda i: dataset.segments[i][2])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def shuffled_batches(num_items, batch_size, seed, epoch, rank=0, world_size=1):
    """This rank's batches of an epoch: one permutation per (seed, epoch), shared by all ranks,
    dealt out so every rank gets the same number of batches (DDP needs equal step counts)."""
    generator = torch.Generator().manual_seed(seed * 100003 + epoch)
    order = torch.randperm(num_items, generator=generator).tolist()
    per_step = batch_size * world_size
    steps = max(1, num_items // per_step)
    order = (order * (1 + per_step // max(num_items, 1)))[: steps * per_step]
    return [order[s * per_step + rank * batch_size : s * per_step + (rank + 1) * batch_size] for s in range(steps)]
