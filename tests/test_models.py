"""The networks: output shapes and ranges, padding, DEF's DC part, parameter counts, config errors."""

import pytest
import torch

from nnet import config as configs, models

F, D = 9, 3


def config(kind, **extra):
    base = {"num_bins": F, "layers": 2, "units": 8, "dropout": 0.2}
    if kind in ("dc", "chimera", "def"):
        base["emb_dim"] = D
    if kind != "dc":
        base.update(num_spk=2, mask_activation="sigmoid")
    if kind == "def":
        base.update(dc_layers=2, dc_units=6, layers=1)
    return {"type": kind, **base, **extra}


def inputs(lengths, frames=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = frames or max(lengths)
    lengths = torch.tensor(lengths)
    feats = torch.randn(len(lengths), frames, F, generator=gen)
    return feats * (torch.arange(frames)[None, :, None] < lengths[:, None, None]), lengths


@pytest.mark.parametrize("num_spk", [2, 3])
@pytest.mark.parametrize("kind", configs.MODEL_TYPES)
def test_output_shapes_and_unit_embeddings(kind, num_spk):
    cfg = config(kind, num_spk=num_spk) if kind != "dc" else config(kind)
    model = models.build_model(cfg).eval()
    feats, lengths = inputs([7, 4])
    out = model(feats, lengths)
    want = {"dc": {"emb"}, "mi": {"masks"}, "chimera": {"emb", "masks"}, "def": {"emb", "masks"}}[kind]
    assert set(out) == want
    valid = torch.arange(7)[None, :] < lengths[:, None]
    if "emb" in out:
        assert out["emb"].shape == (2, 7, F, D)
        norms = out["emb"].norm(dim=-1)
        assert torch.allclose(norms[valid], torch.ones(()), atol=1e-5)
        assert (norms[~valid] == 0).all()
    if "masks" in out:
        assert out["masks"].shape == (2, num_spk, 7, F)
        assert (out["masks"].transpose(1, 2)[~valid] == 0).all()


@pytest.mark.parametrize("activation", configs.MASK_ACTIVATIONS)
def test_mask_ranges(activation):
    torch.manual_seed(0)
    model = models.build_model(config("chimera", num_spk=3, mask_activation=activation)).eval()
    with torch.no_grad():
        model.mask.linear.weight.mul_(100)  # push the activations into their saturated regions
    masks = model(*inputs([6]))["masks"]
    if activation == "relu":
        assert (masks >= 0).all() and (masks == 0).any() and masks.max() > 1
    elif activation == "sigmoid":
        assert (masks >= 0).all() and (masks <= 1).all() and masks.min() < 0.05 and masks.max() > 0.95
    else:
        assert torch.allclose(masks.sum(1), torch.ones(()), atol=1e-6) and (masks >= 0).all()


@pytest.mark.parametrize("kind", configs.MODEL_TYPES)
def test_padding_does_not_change_a_short_utterance(kind):
    model = models.build_model(config(kind)).eval()
    feats, lengths = inputs([9, 4, 6], frames=11, seed=1)
    batch = model(feats, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = model(feats[b : b + 1, :n], lengths[b : b + 1])
        for key, value in alone.items():
            got = batch[key][b : b + 1, :n] if key == "emb" else batch[key][b : b + 1, :, :n]
            assert torch.allclose(got, value, atol=1e-6), (key, b)


def test_dropout_only_in_training():
    model = models.build_model(config("dc", dropout=0.5))
    feats, lengths = inputs([5])
    model.train()
    assert not torch.allclose(model(feats, lengths)["emb"], model(feats, lengths)["emb"])
    model.eval()
    assert torch.equal(model(feats, lengths)["emb"], model(feats, lengths)["emb"])


def test_def_dc_part_loads_a_dc_model():
    cfg = config("def")
    dc_cfg = {
        "type": "dc",
        "layers": cfg["dc_layers"],
        "units": cfg["dc_units"],
        "emb_dim": D,
        "dropout": cfg["dropout"],
        "num_bins": F,
    }
    dc = models.build_model(dc_cfg).eval()
    model = models.build_model(cfg).eval()
    assert type(model.dc) is type(dc)
    feats, lengths = inputs([6, 3])
    assert not torch.allclose(model(feats, lengths)["emb"], dc(feats, lengths)["emb"])
    model.dc.load_state_dict(dc.state_dict())
    out = model(feats, lengths)
    assert torch.equal(out["emb"], dc(feats, lengths)["emb"])
    # the uPIT part sees the embeddings flattened to F * D per frame
    assert torch.equal(out["masks"], model.mi(out["emb"].flatten(2), lengths)["masks"])


@pytest.mark.parametrize("freeze", [True, False])
def test_freeze_dc(freeze):
    model = models.build_model(config("def", freeze_dc=freeze)).train()
    assert all(p.requires_grad != freeze for p in model.dc.parameters())
    assert all(p.requires_grad for p in model.mi.parameters())
    assert model.dc.training != freeze and model.mi.training
    feats, lengths = inputs([5, 4])
    out = model(feats, lengths)
    (out["masks"].sum() + out["emb"].sum()).backward()
    assert all((p.grad is None) == freeze for p in model.dc.parameters())
    assert all(p.grad is not None for p in model.mi.parameters())
    if freeze:  # frozen means no dropout either: the DC part is deterministic while training
        assert torch.equal(model(feats, lengths)["emb"], out["emb"])


def lstm_params(inputs, units):
    """One direction of one PyTorch LSTM layer: 4 gates x (input and recurrent weights + two biases)."""
    return 4 * units * (inputs + units) + 2 * 4 * units


def blstm_params(inputs, units, layers):
    return 2 * lstm_params(inputs, units) + (layers - 1) * 2 * lstm_params(2 * units, units)


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_of_the_seed_sizes():
    # chimera++ (Wang et al. 2018): 4 x 600 BLSTM, 129 bins, D = 20, 2 sources
    chimera = models.build_model(
        {
            "type": "chimera",
            "num_bins": 129,
            "num_spk": 2,
            "layers": 4,
            "units": 600,
            "dropout": 0.3,
            "emb_dim": 20,
            "mask_activation": "sigmoid",
        }
    )
    embedding = 1200 * 129 * 20 + 129 * 20
    mask = 1200 * 2 * 129 + 2 * 129
    assert count(chimera) == blstm_params(129, 600, 4) + embedding + mask
    assert blstm_params(129, 600, 4) == 2 * (4 * 600 * 729 + 4800) + 3 * 2 * (4 * 600 * 1800 + 4800)
    # DEF (Fan et al. 2019): DC 2 x 896 with D = 40 here, uPIT 1 x 896 on 129 * 40 inputs, relu masks
    dl_def = models.build_model(
        {
            "type": "def",
            "num_bins": 129,
            "num_spk": 2,
            "dc_layers": 2,
            "dc_units": 896,
            "emb_dim": 40,
            "layers": 1,
            "units": 896,
            "mask_activation": "relu",
        }
    )
    dc_part = blstm_params(129, 896, 2) + 1792 * 129 * 40 + 129 * 40
    upit_part = blstm_params(129 * 40, 896, 1) + 1792 * 2 * 129 + 2 * 129
    assert count(dl_def.dc) == dc_part and count(dl_def) == dc_part + upit_part


@pytest.mark.parametrize(
    "cfg, message",
    [
        (
            {"type": "dc", "num_bins": F, "layers": 2, "units": 8},
            "model.emb_dim is missing (needed by model type 'dc')",
        ),
        (config("mi", mask_activation="tanh"), "model.mask_activation: 'tanh' is not one of relu, sigmoid, softmax"),
        (config("chimera", dc_layers=2), "model.dc_layers is not a key of model type 'chimera'; its keys: "),
        (config("dc", emb_dimm=3), "model.emb_dimm is not a key of model type 'dc'"),
        (config("mi", layers=0), "model.layers: 0 is not >= 1"),
        (config("mi", num_spk=1), "model.num_spk: 1 is not >= 2"),
        (config("mi", dropout=1.0), "model.dropout: 1.0 is not in [0, 1) (default: 0.0)"),
        (config("def", freeze_dc="yes"), "model.freeze_dc: 'yes' is not true or false (default: false)"),
        ({"type": "dpcl"}, "model.type: 'dpcl' is not one of dc, mi, chimera, def"),
    ],
)
def test_bad_configs(cfg, message):
    with pytest.raises(ValueError) as err:
        models.build_model(cfg)
    assert message in str(err.value)


def test_bad_inputs():
    model = models.build_model(config("mi"))
    with pytest.raises(ValueError, match=r"feats must be \(batch, frames, 9\)"):
        model(torch.zeros(1, 4, 8), torch.tensor([4]))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 4\]"):
        model(torch.zeros(2, 4, F), torch.tensor([4, 5]))
