"""Training and validation data: feature segments from the Kaldi archives plus the waveform slices
from which the training device computes the STFT targets.

An item is (features (frames, bins), waveforms (1 + C, samples)): row 0 of waveforms is the
mixture, rows 1..C the references, cut so that `signal.stft(..., center=False)` gives exactly the
item's frames (see `signal.padded_segment`).
"""

import glob
import os

import kaldiio
import numpy as np
import torch

from nnet import io, signal


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
        self.config = stft_config
        self.feats = io.read_table(os.path.join(data_dir, "feats.scp"))
        self.mixtures = io.read_table(os.path.join(data_dir, "wav.scp"))
        ref_paths = sorted(glob.glob(os.path.join(data_dir, "spk[0-9]*.scp")))
        if not ref_paths:
            raise FileNotFoundError(f"{data_dir}: no spk1.scp/spk2.scp: training needs the references")
        self.references = [io.read_table(p) for p in ref_paths]
        lengths = io.read_table(os.path.join(data_dir, "utt2num_samples"))
        self.segments = []
        for utt in self.feats:
            for table, path in [(self.mixtures, "wav.scp"), (lengths, "utt2num_samples")] + [
                (t, os.path.basename(p)) for t, p in zip(self.references, ref_paths)
            ]:
                if utt not in table:
                    raise KeyError(
                        f"{data_dir}/{path}: no entry for utterance '{utt}' of feats.scp; "
                        f"run utils/fix_data_dir.py {data_dir}"
                    )
            total = signal.num_frames(int(lengths[utt]), stft_config)
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
                samples, _ = io.read_wav(table[utt])
            except io.AudioError as err:  # names the file; the utterance and data dir are added here
                raise DataError(f"{self.data_dir}: utterance '{utt}': {err}") from None
            waves.append(samples)
        if len({len(w) for w in waves}) != 1:
            raise DataError(f"{self.data_dir}: utterance '{utt}': mixture and references differ in length")
        waves = signal.padded_segment(np.stack(waves), start, length, self.config)
        return torch.from_numpy(np.array(feats, dtype=np.float32)), torch.from_numpy(waves)


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
