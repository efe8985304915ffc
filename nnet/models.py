"""The separation networks: deep clustering (dc), mask inference / uPIT (mi), chimera++ (chimera)
and deep embedding features (def: a DC network whose embeddings feed a uPIT network).

Every model takes `feats` (B, T, F) normalized log magnitudes and `lengths` (B,) valid frames, and
returns a dict: `emb` (B, T, F, D), unit length along D on valid frames (dc, chimera, def), and
`masks` (B, C, T, F) (mi, chimera, def). Both are zero on padded frames. The BLSTMs see packed
sequences, so padding never reaches a shorter utterance's recurrence.

`build_model(cfg)` builds one from the `model:` section of a system's YAML:

    type             dc | mi | chimera | def
    num_bins         F, frequency bins of the input and of the masks (129 at 8 kHz, 32 ms)
    num_spk          C, sources (masks per frame); mi, chimera, def (optional for dc)
    layers           BLSTM layers (dc, mi, chimera; for def: the uPIT part)
    units            LSTM cells per direction (dc, mi, chimera; for def: the uPIT part)
    dropout          dropout between BLSTM layers (optional, default 0)
    emb_dim          D, embedding dimension per TF bin (dc, chimera, def)
    mask_activation  relu | sigmoid | softmax (softmax: across the C sources); mi, chimera, def
    dc_layers        def only: BLSTM layers of the DC part
    dc_units         def only: LSTM cells per direction of the DC part
    freeze_dc        def only (optional, default false): keep the DC part fixed (no gradient,
                     eval mode, no dropout), e.g. while the uPIT part learns on pretrained DC
"""
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

MODEL_TYPES = ("dc", "mi", "chimera", "def")
MASK_ACTIVATIONS = ("relu", "sigmoid", "softmax")

# key -> (required by these types, optional for these types)
_KEYS = {
    "num_bins": (("dc", "mi", "chimera", "def"), ()),
    "num_spk": (("mi", "chimera", "def"), ("dc",)),
    "layers": (("dc", "mi", "chimera", "def"), ()),
    "units": (("dc", "mi", "chimera", "def"), ()),
    "dropout": ((), ("dc", "mi", "chimera", "def")),
    "emb_dim": (("dc", "chimera", "def"), ()),
    "mask_activation": (("mi", "chimera", "def"), ()),
    "dc_layers": (("def",), ()),
    "dc_units": (("def",), ()),
    "freeze_dc": ((), ("def",)),
}


def check_config(cfg):
    """The model type of a `model:` section; a ValueError names the first key that is wrong and what it takes."""
    if not isinstance(cfg, dict):
        raise ValueError(f"model config must be a mapping, got {type(cfg).__name__}")
    kind = cfg.get("type")
    if kind not in MODEL_TYPES:
        raise ValueError(f"model key 'type' is {kind!r}: use one of {', '.join(MODEL_TYPES)}")
    accepted = {"type"} | {k for k, (req, opt) in _KEYS.items() if kind in req or kind in opt}
    for key in cfg:
        if key not in accepted:
            raise ValueError(f"model key '{key}' is not used by type '{kind}'; "
                             f"its keys: {', '.join(sorted(accepted))}")
    for key, (req, _) in _KEYS.items():
        if kind in req and key not in cfg:
            raise ValueError(f"model key '{key}' is missing (needed by type '{kind}')")
    for key in ("num_bins", "layers", "units", "emb_dim", "dc_layers", "dc_units"):
        if key in cfg and (not isinstance(cfg[key], int) or isinstance(cfg[key], bool) or cfg[key] < 1):
            raise ValueError(f"model key '{key}' must be a positive integer, got {cfg[key]!r}")
    if "num_spk" in cfg and (not isinstance(cfg["num_spk"], int) or cfg["num_spk"] < 2):
        raise ValueError(f"model key 'num_spk' must be an integer >= 2, got {cfg['num_spk']!r}")
    dropout = cfg.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"model key 'dropout' must be in [0, 1), got {dropout!r}")
    if "mask_activation" in cfg and cfg["mask_activation"] not in MASK_ACTIVATIONS:
        raise ValueError(f"model key 'mask_activation' is {cfg['mask_activation']!r}: "
                         f"use one of {', '.join(MASK_ACTIVATIONS)}")
    if not isinstance(cfg.get("freeze_dc", False), bool):
        raise ValueError(f"model key 'freeze_dc' must be true or false, got {cfg['freeze_dc']!r}")
    return kind


def build_model(cfg):
    """The network described by a `model:` config section (keys in the module docstring)."""
    kind = check_config(cfg)
    dropout = float(cfg.get("dropout", 0.0))
    if kind == "dc":
        return DeepClusteringNet(cfg["num_bins"], cfg["layers"], cfg["units"], cfg["emb_dim"], dropout,
                                 cfg.get("num_spk"))
    if kind == "mi":
        return MaskInferenceNet(cfg["num_bins"], cfg["num_bins"], cfg["num_spk"], cfg["layers"],
                                cfg["units"], cfg["mask_activation"], dropout)
    if kind == "chimera":
        return ChimeraNet(cfg["num_bins"], cfg["num_spk"], cfg["layers"], cfg["units"], cfg["emb_dim"],
                          cfg["mask_activation"], dropout)
    dc = DeepClusteringNet(cfg["num_bins"], cfg["dc_layers"], cfg["dc_units"], cfg["emb_dim"], dropout)
    mi = MaskInferenceNet(cfg["num_bins"] * cfg["emb_dim"], cfg["num_bins"], cfg["num_spk"], cfg["layers"],
                          cfg["units"], cfg["mask_activation"], dropout)
    return DEFNet(dc, mi, cfg.get("freeze_dc", False))


def _check_input(feats, lengths, num_bins):
    if feats.dim() != 3 or feats.shape[-1] != num_bins:
        raise ValueError(f"feats must be (batch, frames, {num_bins}), got {tuple(feats.shape)}")
    lengths = torch.as_tensor(lengths).to("cpu", torch.int64)
    if lengths.shape != feats.shape[:1]:
        raise ValueError(f"lengths must be ({feats.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (lengths.min() < 1 or lengths.max() > feats.shape[1]):
        raise ValueError(f"lengths must lie in [1, {feats.shape[1]}] (frames of feats), got {lengths.tolist()}")
    return lengths


def _frame_mask(lengths, frames, device):
    """(B, T) float: 1 on valid frames."""
    return (torch.arange(frames)[None, :] < lengths[:, None]).to(device, torch.float32)


class BLSTMStack(nn.Module):
    """Bidirectional LSTM layers over packed sequences: (B, T, I) -> (B, T, 2 * units), zero past each length."""

    def __init__(self, input_dim, units, layers, dropout):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, units, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)  # between layers only
        self.output_dim = 2 * units

    def forward(self, x, lengths):
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
        return nn.functional.normalize(emb, dim=-1, eps=1e-8)


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

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.num_bins)
        valid = _frame_mask(lengths, feats.shape[1], feats.device)
        emb = self.embedding(self.blstm(feats, lengths))
        return {"emb": emb * valid[:, :, None, None]}


class MaskInferenceNet(nn.Module):
    """BLSTM stack + mask layer (uPIT). input_dim is num_bins for spectra, num_bins * D inside DEF."""

    def __init__(self, input_dim, num_bins, num_spk, layers, units, mask_activation, dropout=0.0):
        super().__init__()
        self.input_dim, self.num_bins, self.num_spk = input_dim, num_bins, num_spk
        self.blstm = BLSTMStack(input_dim, units, layers, dropout)
        self.mask = MaskHead(self.blstm.output_dim, num_bins, num_spk, mask_activation)

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.input_dim)
        valid = _frame_mask(lengths, feats.shape[1], feats.device)
        masks = self.mask(self.blstm(feats, lengths))
        return {"masks": masks * valid[:, None, :, None]}


class ChimeraNet(nn.Module):
    """chimera++: one BLSTM stack, the embedding and mask heads both on its last layer's output."""

    def __init__(self, num_bins, num_spk, layers, units, emb_dim, mask_activation, dropout=0.0):
        super().__init__()
        self.num_bins, self.num_spk, self.emb_dim = num_bins, num_spk, emb_dim
        self.blstm = BLSTMStack(num_bins, units, layers, dropout)
        self.embedding = EmbeddingHead(self.blstm.output_dim, num_bins, emb_dim)
        self.mask = MaskHead(self.blstm.output_dim, num_bins, num_spk, mask_activation)

    def forward(self, feats, lengths):
        lengths = _check_input(feats, lengths, self.num_bins)
        valid = _frame_mask(lengths, feats.shape[1], feats.device)
        hidden = self.blstm(feats, lengths)
        return {"emb": self.embedding(hidden) * valid[:, :, None, None],
                "masks": self.mask(hidden) * valid[:, None, :, None]}


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
