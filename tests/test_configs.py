"""The recipes' system configs (egs/*/conf/tuning/*.yaml): each one loads, builds its model and
objective, and trains one step at a tiny size; the wsj0_2mix configs of Table 1 (Wang, Le Roux,
Hershey, ICASSP 2018) are all there and are what their file names say."""

import glob
import os
import re

import pytest
import torch

import yaml

from nnet import config as configs, dsp, losses, models
from nnet.config import load_config
from recipes import tuning_dirs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSJ0 = os.path.realpath(os.path.join(ROOT, "egs", "wsj0_2mix", "conf", "tuning"))  # as tuning_dirs() names it
MINI = os.path.realpath(os.path.join(ROOT, "egs", "mini_2mix", "conf", "tuning"))
CONFIGS = [path for tuning in tuning_dirs() for path in sorted(glob.glob(os.path.join(tuning, "*.yaml")))]

# One file per training row of Table 1 (the "+run-time inference", "+Griffin-Lim" and "+MISI"
# rows are separation variants of dc_classic_mr, dc_lda_va, dc_s_mr, dc_l_va, dc_w_mr, chimerapp).
TABLE1 = {
    "dc_classic_equal_nodrop",
    "dc_classic_va_nodrop",
    "dc_classic_va",
    "dc_classic_mr_nodrop",
    "dc_classic_mr",
    "dc_lda_va_nodrop",
    "dc_lda_va",
    "dc_s_va",
    "dc_s_mr",
    "dc_l_va",
    "dc_w_va",
    "dc_w_mr",
    "mi_softmax_tpsa_l2",
    "mi_softmax_tpsa_l1",
    "mi_sigmoid_tpsa_l1",
    "chimerapp_w_va_sigmoid",
    "chimerapp_w_mr_softmax",
    "chimerapp",
}
DC_OBJECTIVE = {"classic": "classic", "lda": "lda", "s": "doubly_stochastic", "l": "laplacian", "w": "wkm"}
DC_WEIGHTS = {"equal": "none", "va": "va", "mr": "mr"}
MODEL_CLASS = {"dc": models.DeepClusteringNet, "mi": models.MaskInferenceNet, "chimera": models.ChimeraNet}

# the tiny size every config is trained at: only these keys change, types and loss keys stay
TINY = {"layers": 2, "units": 4, "dc_layers": 1, "dc_units": 4, "emb_dim": 3}
BATCH, FRAMES, LENGTHS = 2, 6, [6, 4]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is faster than several, and leaves the cores to other tests."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def name_of(path):
    return os.path.splitext(os.path.basename(path))[0]


def ident(path):
    return os.path.relpath(path, os.path.join(ROOT, "egs"))


def expected_from_name(name):
    """What a Table 1 file name says, or None for another name:
    model type, loss keys, mask activation (None for dc), dropout (0.0 with _nodrop, else 0.3)."""
    m = re.fullmatch(r"dc_(classic|lda|s|l|w)_(equal|va|mr)(_nodrop)?", name)
    if m:
        loss = {"type": "dc", "dc_objective": DC_OBJECTIVE[m[1]], "dc_weights": DC_WEIGHTS[m[2]]}
        return "dc", loss, None, 0.0 if m[3] else 0.3
    m = re.fullmatch(r"mi_(softmax|sigmoid)_tpsa_(l1|l2)", name)
    if m:
        return "mi", {"type": "mi", "mi_target": "tpsa", "mi_norm": m[2]}, m[1], 0.3
    m = re.fullmatch(r"chimerapp(?:_(w)_(va|mr)_(softmax|sigmoid))?", name)
    if m:
        obj, weights, activation = m.groups() if m[1] else ("w", "mr", "sigmoid")  # chimerapp: the best row
        loss = {
            "type": "chimera",
            "dc_objective": DC_OBJECTIVE[obj],
            "dc_weights": DC_WEIGHTS[weights],
            "mi_target": "tpsa",
            "mi_norm": "l1",
        }
        return "chimera", loss, activation, 0.3
    return None


NAMED = [p for p in CONFIGS if expected_from_name(name_of(p)) is not None]


def tiny(model_cfg):
    return {k: (TINY[k] if k in TINY else v) for k, v in model_cfg.items()}


def random_batch(num_bins, num_spk, seed=0):
    """feats (B, T, F), lengths (B,) and the objective's batch: complex spectra, valid frames."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    valid = torch.arange(FRAMES)[None, :] < lengths[:, None]
    src = torch.randn(BATCH, num_spk, FRAMES, num_bins, 2, generator=gen)
    src = torch.view_as_complex(src * torch.rand(BATCH, num_spk, FRAMES, num_bins, 1, generator=gen) * 3)
    src = src * valid[:, None, :, None]
    mix = src.sum(1)
    feats = torch.log1p(mix.abs()) * valid[..., None]
    return feats, lengths, {"mix_spec": mix, "src_spec": src, "valid": valid, "lengths": lengths}


def features_bins(path):
    """F of the features of the config's recipe at 8 kHz (its conf/stft.conf): the model.num_bins that
    training gives a config that leaves it out."""
    return dsp.read_stft_conf(os.path.join(os.path.dirname(os.path.dirname(path)), "stft.conf"), 8000).num_bins


def build(path):
    config = load_config(path, num_bins=features_bins(path))
    model_cfg = tiny(config["model"])
    torch.manual_seed(0)
    return config, model_cfg, models.build_model(model_cfg), losses.build_objective(config["loss"])


def test_both_recipes_have_configs():
    assert glob.glob(os.path.join(WSJ0, "*.yaml")) and glob.glob(os.path.join(MINI, "*.yaml"))


def test_wsj0_2mix_has_exactly_the_table1_configs():
    present = {name_of(p) for p in glob.glob(os.path.join(WSJ0, "*.yaml"))}
    named = {n for n in present if expected_from_name(n) is not None}
    assert not TABLE1 - present, f"Table 1 configs missing: {sorted(TABLE1 - present)}"
    assert named == TABLE1, f"configs named like Table 1 rows that are not in it: {sorted(named - TABLE1)}"
    assert len(TABLE1) == 18


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_one_training_step(path):
    config, model_cfg, model, objective = build(path)
    num_spk = model_cfg.get("num_spk", 2)
    feats, lengths, batch = random_batch(model_cfg["num_bins"], num_spk)
    named = list(model.named_parameters())
    params = [p for _, p in named if p.requires_grad]
    before = [p.detach().clone() for _, p in named]
    optimizer = torch.optim.Adam(params, lr=config["training"]["lr"])
    model.train()
    outputs = model(feats, lengths)
    loss, stats = objective(outputs, batch)
    assert loss.dim() == 0 and torch.isfinite(loss), (loss, stats)
    optimizer.zero_grad()
    loss.backward()
    bad = [n for n, p in named if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients of {bad} (loss {loss.item()})"
    if config["training"]["grad_clip"] > 0:
        torch.nn.utils.clip_grad_norm_(params, config["training"]["grad_clip"])
    optimizer.step()
    changed = {n for (n, p), b in zip(named, before) if not torch.equal(p.detach(), b)}
    assert changed, "no parameter changed in one training step"
    frozen = {n for n, p in named if not p.requires_grad}
    assert not changed & frozen, f"frozen parameters changed: {sorted(changed & frozen)}"
    if model_cfg.get("freeze_dc"):
        assert frozen and all(n.startswith("dc.") for n in frozen)


@pytest.mark.parametrize("path", NAMED, ids=ident)
def test_config_is_what_its_name_says(path):
    kind, loss_keys, activation, dropout = expected_from_name(name_of(path))
    config, model_cfg, model, objective = build(path)
    assert config["model"]["type"] == kind
    assert type(model) is MODEL_CLASS[kind]
    assert objective.kind == loss_keys["type"]
    for key, value in loss_keys.items():
        assert config["loss"][key] == value, (key, config["loss"][key], value)
        assert objective.cfg[key] == value, (key, objective.cfg[key], value)
    if activation is None:
        assert not hasattr(model, "mask")
    else:
        assert config["model"]["mask_activation"] == activation
        assert model.mask.activation == activation
    if kind != "mi":
        assert hasattr(model, "embedding")
    # the built objective computes what a config written from the name alone computes
    expected = dict(loss_keys)
    if kind == "chimera":
        expected["alpha"] = config["loss"]["alpha"]
    feats, lengths, batch = random_batch(model_cfg["num_bins"], model_cfg.get("num_spk", 2), seed=1)
    with torch.no_grad():
        outputs = model.eval()(feats, lengths)
        got, _ = objective(outputs, batch)
        want, _ = losses.build_objective(expected)(outputs, batch)
    assert torch.allclose(got, want), (got, want)
    if os.path.dirname(path) == WSJ0:  # mini_2mix shrinks the network and its dropout
        assert config["model"]["dropout"] == dropout
        assert model.blstm.lstm.dropout == dropout  # between the BLSTM layers (tiny: 2 layers)


@pytest.mark.parametrize("name", sorted(TABLE1))
def test_table1_config_follows_section_5_1(name):
    """4 BLSTM layers x 600 units per direction, 129 bins (at 8 kHz), 400-frame segments, Adam."""
    path = os.path.join(WSJ0, name + ".yaml")
    config = load_config(path, num_bins=features_bins(path))
    model = config["model"]
    assert (model["layers"], model["units"], model["num_bins"]) == (4, 600, 129)
    assert model.get("num_spk", 2) == 2
    assert config["training"]["segment_frames"] == 400  # and Adam, the only optimizer of nnet/train.py


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_every_key_is_commented_and_the_file_has_a_header(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines and lines[0].startswith("# "), "no header comment"
    for line in lines:
        if line.startswith("  ") and not line.lstrip().startswith("#"):
            assert " # " in line, f"key without a comment: {line!r}"


def yaml_keys(data, section=""):
    """(section, key) of every key a parsed config file holds."""
    for key, value in data.items():
        if not section and key in configs.SECTIONS:
            yield from yaml_keys(value or {}, key)
        else:
            yield section, key


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_every_key_is_in_the_reference_table(path):
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    known = {(k.section, k.name) for k in configs.KEYS}
    unknown = [f"{s}.{k}" if s else k for s, k in yaml_keys(data) if (s, k) not in known]
    assert not unknown, f"keys not in nnet/config.py KEYS: {unknown}"


def listed_choices(comment):
    """The words a comment lists as 'a | b (note) | c': the last word before the first '|', the
    first word after each, notes in parentheses left out; None when it lists nothing."""
    while re.search(r"\([^()]*\)", comment):  # notes in parentheses, nested ones too, are not choices
        comment = re.sub(r"\s*\([^()]*\)", "", comment)
    parts = comment.split(" | ")
    if len(parts) < 2:
        return None
    words = [parts[0].split()[-1]] + [p.split()[0] for p in parts[1:]]
    return [w.rstrip(":;,") for w in words]


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_comments_list_the_choices_of_the_table(path):
    """A line comment such as '# classic | laplacian | ...' lists exactly the allowed values of its key."""
    section, wrong = "", []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.startswith((" ", "#")) and ":" in line:
                section = line.split(":")[0] if line.split(":")[0] in configs.SECTIONS else ""
            if line.lstrip().startswith("#") or " # " not in line:
                continue
            key, comment = line.split(":")[0].strip(), line.split(" # ", 1)[1]
            choices = listed_choices(comment)
            if choices is None:
                continue
            allowed = configs.keys_of(section)[key].allowed
            if sorted(choices) != sorted(allowed):
                wrong.append(f"line {number}: {section}.{key} lists {choices}, the table has {list(allowed)}")
    assert not wrong, "\n".join(wrong)


def test_the_comment_check_sees_a_missing_choice(tmp_path):
    """The check above on a mini config as it was: its dc_objective comment without the _shifted options."""
    comment = "classic | laplacian | doubly_stochastic | lda | wkm (whitened k-means)"
    assert listed_choices(comment) == ["classic", "laplacian", "doubly_stochastic", "lda", "wkm"]
    assert sorted(listed_choices(comment)) != sorted(configs.DC_OBJECTIVES)
    assert listed_choices("mask layer: relu | sigmoid | softmax (across the C sources)") == [
        "relu",
        "sigmoid",
        "softmax",
    ]


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_num_bins_is_left_to_the_features(path):
    """No shipped config states model.num_bins: training takes the features' n_fft / 2 + 1, so each
    trains at 8 or 16 kHz, or under another stft.conf, as it is."""
    assert "num_bins" not in configs.read_config(path)["model"]


@pytest.mark.parametrize("path", CONFIGS, ids=ident)
def test_comments_name_parts_the_model_has(path):
    """A dc network has no masks and no uPIT part: its comments do not speak of them."""
    config = load_config(path)
    with open(path, encoding="utf-8") as f:
        body = [line for line in f if line.startswith("  ")]
    if config["model"]["type"] == "dc":
        assert not [line for line in body if "masks" in line or "uPIT part" in line]


def test_chain_of_the_shipped_def_configs():
    """def_dc -> def -> def_joint -> dl_def in every recipe comes from init_from alone."""
    for tuning in tuning_dirs():
        systems = ["oracle_ibm", "dl_def", "upit", "def", "def_joint", "def_dc"]
        assert configs.chains(tuning, "/nonexistent", systems) == [["upit"], ["def_dc", "def", "def_joint", "dl_def"]]


def test_every_init_from_names_a_config_of_its_recipe():
    """Every chain a tuning dir holds (the *_long ones beside the shipped one) trains from that
    dir's configs alone, each system after the one it starts from."""
    for tuning in tuning_dirs():
        systems = sorted(os.path.basename(p)[: -len(".yaml")] for p in glob.glob(os.path.join(tuning, "*.yaml")))
        chains = configs.chains(tuning, "/nonexistent", systems)
        trained = [system for chain in chains for system in chain]
        assert sorted(trained) == [s for s in systems if not s.startswith("oracle_")]
        for chain in chains:
            for before, after in zip(chain, chain[1:]):
                assert load_config(os.path.join(tuning, after + ".yaml"))["init_from"] == before
    speech = os.path.realpath(os.path.join(ROOT, "egs", "speechocean762", "conf", "tuning"))
    long_chain = ["def_dc_long", "def_long", "def_joint_long", "dl_def_long"]
    assert long_chain in configs.chains(speech, "/nonexistent", long_chain[::-1])


def test_the_keys_table_follows_the_type_tables():
    """The model and loss types that take and need each type-specific key (KEYS' uses and required,
    printed by `python3 -m nnet.config keys` and checked by check_section) come from config.MODELS
    and config.LOSSES: these are the ones the table listed before it was derived."""
    dc, mi = ("dc", "chimera", "joint", "dl"), ("mi", "chimera", "joint", "dl")
    want = {
        ("model", "num_spk"): (("dc", "mi", "chimera", "def"), ("mi", "chimera", "def")),
        ("model", "emb_dim"): (("dc", "chimera", "def"), ("dc", "chimera", "def")),
        ("model", "mask_activation"): (("mi", "chimera", "def"), ("mi", "chimera", "def")),
        ("model", "dc_layers"): (("def",), ("def",)),
        ("model", "dc_units"): (("def",), ("def",)),
        ("model", "freeze_dc"): (("def",), ()),
        ("loss", "dc_objective"): (dc, ("dc", "chimera", "joint", "dl+")),
        ("loss", "dc_weights"): (dc, ("dc", "chimera", "joint", "dl+")),
        ("loss", "mi_target"): (mi, mi),
        ("loss", "mi_norm"): (mi, mi),
        ("loss", "psa_truncation"): (mi, ()),
        ("loss", "alpha"): (("chimera",), ("chimera",)),
        ("loss", "lambda"): (("joint", "dl"), ("joint",)),
        ("loss", "gamma"): (("dl",), ("dl",)),
    }
    assert {(k.section, k.name): (k.uses, k.required) for k in configs.KEYS if (k.section, k.name) in want} == want
