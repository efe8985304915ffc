"""The separation networks: deep clustering (dc), mask inference / uPIT (mi), chimera++ (chimera)
and deep embedding features (def: a DC network whose embeddings feed a uPIT network).

Every model takes `feats` (B, T, F) normalized log magnitudes and `lengths` (B,) valid frames, and
returns a dict: `emb` (B, T, F, D), unit length along D on valid frames (dc, chimera, def), and
`masks` (B, C, T, F) (mi, chimera, def). Both are zero on padded frames. The BLSTMs see packed
sequences, so padding never reaches a shorter utterance's recurrence. A batch without padding (every
training batch of equal segments) skips the packing and the zeroing, which change nothing there.

`build_model(cfg)` builds one from the `model:` section of a system's YAML; its keys are described
and checked in nnet/config.py, whose MODELS names each type's class here (made by its from_config).
"""

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nnet import config


# C of a dc config without model.num_spk (its network has no C): the k-means clusters at separation
DEFAULT_NUM_SPK = 2


def build_model(cfg):
    """The network described by a `model:` config section (keys: nnet/config.py): the class its type
    names in config.MODELS, made by that class's from_config."""
    kind, cfg = config.check_section("model", cfg)
    if "num_bins" not in cfg:
        raise config.ConfigError("model.num_bins is missing: training sets it to the features' bins (nnet/train.py)")
    network = globals()[config.MODELS[kind].network]  # a class of this module (config cannot import it)
    return network.from_config(cfg, float(cfg.get("dropout", 0.0)))


def _check_input(feats, lengths, num_bins):
    if feats.dim() != 3 or feats.shape[-1] != num_bins:
        raise ValueError(f"feats must be (batch, frames, {num_bins}), got {tuple(feats.shape)}")
    lengths = torch.as_tensor(lengths).to("cpu", torch.int64)
    if lengths.shape != feats.shape[:1]:
        raise ValueError(f"lengths must be ({feats.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (lengths.min() < 1 or lengths.max() > feats.shape[1]):
        raise ValueError(f"lengths must lie in [1, {feats.shape[1]}] (frames of feats), got {lengths.tolist()}")
    return lengths


def _unpadded(lengths, frames):
    """True when every utterance fills all `frames` (every training batch of full segments): the
    packing of the BLSTMs and the zeroing of padded frames can be skipped."""
    return not lengths.numel() or bool(lengths.min() == frames)


def _zero_padding(x, lengths, time_dim):
    """x with its padded frames (along time_dim; batch first) set to zero; x itself when no frame is
    padded, which saves a pass over the outputs."""
    frames = x.shape[time_dim]
    if _unpadded(lengths, frames):
        return x
    valid = (torch.arange(frames)[None, :] < lengths[:, None]).to(x.device, x.dtype)
    return x * valid.view(valid.shape + (1,) * (x.dim() - 2)).movedim(1, time_dim)


class BLSTMStack(nn.Module):
    """Bidirectional LSTM layers over packed sequences: (B, T, I) -> (B, T, 2 * units), zero past each length."""

    def __init__(self, input_dim, units, layers, dropout):
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            units,
            num_layers=layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if layers > 1 else 0.0,
        )  # between layers only
        self.output_dim = 2 * units

    def forward(self, x, lengths):
        if _unpadded(lengths, x.shape[1]):
            return self.lstm(x)[0]  # nothing padded: the packed run's outputs, without its copies
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class EmbeddingHead(nn.Module):
    """Linear -> tanh -> unit length: (B, T, H) -> (B, T, F, D)."""

    def __init__(self, input_dim, num_bins, emb_dim):
        super().__init__()
        self.linear = nn.Linear(input_dim, num_bins * emb_dim)
        self.num_bins, self.emb_dim = num_bins, emb_dim

    def forward(self, hidden):
        emb = torch.tanh(self.linear(hidden)).unflatten(-1, (self.num_bins, self.emb_dim))
        # emb / max(|emb|, 1e-8) as a product with the reciprocal norm: F.normalize divides by an
        # expanded norm, 1.5x slower forward and backward at the mini batch (3200 frames x 1290).
        # The norm in float32 (as F.normalize's under bf16 autocast), so bf16 embeddings stay unit length.
        return emb * emb.float().square().sum(-1, keepdim=True).clamp_min(1e-16).rsqrt()


class MaskHead(nn.Module):
    """Linear -> activation: (B, T, H) -> (B, C, T, F)."""

    def __init__(self, input_dim, num_bins, num_spk, activation):
        super().__init__()
        self.linear = nn.Linear(input_dim, num_spk * num_bins)
        self.num_bins, self.num_spk, self.activation = num_bins, num_spk, activation

    def forward(self, hidden):
        z = self.linear(hidden).unflatten(-1, (self.num_spk, self.num_bins)).transpose(1, 2)
        if self.activation == "relu":
            return torch.relu(z)
        if self.activation == "sigmoid":
            return torch.sigmoid(z)
        return torch.softmax(z, dim=1)


class DeepClusteringNet(nn.Module):
    """BLSTM stack + embedding layer (Hershey et al. 2016; Wang et al. 2018)."""

    def __init__(self, num_bins, layers, units, emb_dim, dropout=0.0, num_spk=None):
        super().__init__()
        self.num_bins, self.emb_dim, self.num_spk = num_bins, emb_dim, num_spk
        self.blstm = BLSTMStack(num_bins, units, layers, dropout)
        self.embedding = EmbeddingHead(self.blstm.output_dim, num_bins, emb_dim)

    @classmethod
    def from_config(cls, cfg, dropout):
        return cls(cfg["num_bins"], cfg["layers"], cfg["units"], cfg["emb_dim"], dropout, cfg.get("num_spk"))

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.num_bins)
        emb = self.embedding(self.blstm(feats, lengths))
        return {"emb": _zero_padding(emb, lengths, 1)}


class MaskInferenceNet(nn.Module):
    """BLSTM stack + mask layer (uPIT). input_dim is num_bins for spectra, num_bins * D inside DEF."""

    def __init__(self, input_dim, num_bins, num_spk, layers, units, mask_activation, dropout=0.0):
        super().__init__()
        self.input_dim, self.num_bins, self.num_spk = input_dim, num_bins, num_spk
        self.blstm = BLSTMStack(input_dim, units, layers, dropout)
        self.mask = MaskHead(self.blstm.output_dim, num_bins, num_spk, mask_activation)

    @classmethod
    def from_config(cls, cfg, dropout, input_dim=None):
        """input_dim: num_bins (spectra) unless given (DEF's embeddings)."""
        return cls(
            input_dim or cfg["num_bins"],
            cfg["num_bins"],
            cfg["num_spk"],
            cfg["layers"],
            cfg["units"],
            cfg["mask_activation"],
            dropout,
        )

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.input_dim)
        masks = self.mask(self.blstm(feats, lengths))
        return {"masks": _zero_padding(masks, lengths, 2)}


class ChimeraNet(nn.Module):
    """chimera++: one BLSTM stack, the embedding and mask heads both on its last layer's output."""

    def __init__(self, num_bins, num_spk, layers, units, emb_dim, mask_activation, dropout=0.0):
        super().__init__()
        self.num_bins, self.num_spk, self.emb_dim = num_bins, num_spk, emb_dim
        self.blstm = BLSTMStack(num_bins, units, layers, dropout)
        self.embedding = EmbeddingHead(self.blstm.output_dim, num_bins, emb_dim)
        self.mask = MaskHead(self.blstm.output_dim, num_bins, num_spk, mask_activation)

    @classmethod
    def from_config(cls, cfg, dropout):
        return cls(
            cfg["num_bins"],
            cfg["num_spk"],
            cfg["layers"],
            cfg["units"],
            cfg["emb_dim"],
            cfg["mask_activation"],
            dropout,
        )

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.num_bins)
        hidden = self.blstm(feats, lengths)
        return {
            "emb": _zero_padding(self.embedding(hidden), lengths, 1),
            "masks": _zero_padding(self.mask(hidden), lengths, 2),
        }


class DEFNet(nn.Module):
    """Deep embedding features (Fan et al. 2019): the DC part's embeddings, flattened to F * D per
    frame, are the input of the uPIT part. `dc` is a DeepClusteringNet, so a dc system's
    state_dict loads into it as is."""

    def __init__(self, dc, mi, freeze_dc=False):
        super().__init__()
        self.dc, self.mi = dc, mi
        self.num_bins, self.num_spk, self.emb_dim = dc.num_bins, mi.num_spk, dc.emb_dim
        self.freeze_dc = freeze_dc
        if freeze_dc:
            self.dc.requires_grad_(False)
            self.dc.eval()

    @classmethod
    def from_config(cls, cfg, dropout):
        """The DC part of dc_layers x dc_units, the uPIT part of layers x units on its F * D embeddings."""
        dc = DeepClusteringNet(cfg["num_bins"], cfg["dc_layers"], cfg["dc_units"], cfg["emb_dim"], dropout)
        mi = MaskInferenceNet.from_config(cfg, dropout, input_dim=cfg["num_bins"] * cfg["emb_dim"])
        return cls(dc, mi, cfg.get("freeze_dc", False))

    def train(self, mode=True):
        super().train(mode)
        if self.freeze_dc:
            self.dc.eval()  # a frozen part keeps running without dropout
        return self

    def forward(self, feats, lengths):
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_dc):
            emb = self.dc(feats, lengths)["emb"]
        masks = self.mi(emb.flatten(2), lengths)["masks"]
        return {"emb": emb, "masks": masks}
