"""A system's YAML config: every key of every section, and the one checker of them.

A config has three sections and one optional top-level key:

    init_from: def_dc   # start from <exp>/def_dc/best.pt (the DL-DEF chain); steps/train_chains.sh
                        # trains def_dc first
    model:    ...       # the network (nnet/models.py)
    loss:     ...       # the training objective (nnet/losses.py)
    training: ...       # the loop (nnet/train.py); every key has a default

KEYS below is the reference of every key: which model or loss types use it, whether it is
required, its type, allowed values or range, default and meaning. `python3 -m nnet.config keys`
prints it as a table. load_config checks a file against it; models.build_model and
losses.build_objective check their section with the same check_section.

One way to change a config without editing it: "section.key=value" overrides (train.py --set, passed
down from run.sh --set by steps/separation_recipe.sh, train_chains.sh and train.sh), applied to the
file's mapping before the check (read_config, set_value); train.py --num-spk C is model.num_spk=C.
model.num_bins may be left out: training takes the features' (n_fft / 2 + 1 of the training data's
stft.conf at its sample rate). exp/<system>/config.yaml and provenance.yaml record the config so made.

`python3 -m nnet.config chains <tuning-dir> <exp-root> <system>...` prints the training order
of steps/train_chains.sh: one line per chain, each system after the one it starts from.
`python3 -m nnet.config get <config> <section.key>` prints one value of a checked config.
`python3 -m nnet.config resolve [--set K=V]... [--features <data-dir>] <config>` prints the config as
training makes it, checked: the --set values applied, model.num_bins from the data dir's features.
"""

import argparse
import collections
import math
import os
import re
import sys

import yaml

# The model types, one entry each: every module that treats a type apart reads it here (models.build_model,
# init_from, Separator, the pack's meta.yaml), so a new type is an entry here plus its network in nnet/models.py.
#   network:     the nnet/models.py class build_model makes, by its from_config(cfg, dropout)
#   heads:       the network's heads, the one separation uses by default first (MI when there is one)
#   keys:        {key: required} of the model keys this type takes besides the ones every type takes
#                (type, num_bins, layers, units, dropout); KEYS' uses and required follow from it
#   shape_keys:  the keys that shape its weights (dropout, freeze_dc, mask_activation do not): init_from
#                from a system of the same type refuses a checkpoint that differs in one
#   starts_from: {other type: (the part of the network its checkpoint loads into, {its key: the key here})}:
#                init_from from a system of another type
#   doc:         what the network is (model.type's meaning in KEYS)
ModelType = collections.namedtuple("ModelType", "network heads keys shape_keys starts_from doc")
MODELS = {
    "dc": ModelType(
        network="DeepClusteringNet",
        heads=("dc",),
        keys={"num_spk": False, "emb_dim": True},
        shape_keys=("num_bins", "layers", "units", "emb_dim"),
        starts_from={},
        doc="BLSTM + embeddings",
    ),
    "mi": ModelType(
        network="MaskInferenceNet",
        heads=("mi",),
        keys={"num_spk": True, "mask_activation": True},
        shape_keys=("num_bins", "num_spk", "layers", "units"),
        starts_from={},
        doc="BLSTM + masks (uPIT)",
    ),
    "chimera": ModelType(
        network="ChimeraNet",
        heads=("mi", "dc"),
        keys={"num_spk": True, "emb_dim": True, "mask_activation": True},
        shape_keys=("num_bins", "num_spk", "layers", "units", "emb_dim"),
        starts_from={},
        doc="both heads on one BLSTM",
    ),
    "def": ModelType(
        network="DEFNet",
        heads=("mi",),
        keys={
            "num_spk": True,
            "emb_dim": True,
            "mask_activation": True,
            "dc_layers": True,
            "dc_units": True,
            "freeze_dc": False,
        },
        shape_keys=("num_bins", "num_spk", "dc_layers", "dc_units", "emb_dim", "layers", "units"),
        # a dc checkpoint starts the DC part (the DL-DEF chain): its keys under their def names; num_spk
        # shapes no dc weight, but a chain member must separate as many sources as the system it starts from
        starts_from={
            "dc": (
                "dc",
                {
                    "num_bins": "num_bins",
                    "layers": "dc_layers",
                    "units": "dc_units",
                    "emb_dim": "emb_dim",
                    "num_spk": "num_spk",
                },
            )
        },
        doc="a dc network whose embeddings feed an mi network",
    ),
}
MODEL_TYPES = tuple(MODELS)


def inference_problem(model_type, head, matched, steps):
    """Why a model of model_type cannot separate with `head` (k-means refined by `steps` Adam steps of
    matched run-time inference when `matched`), or None: the one check of separation (Separator) and of
    a pack's defaults (nnet/pack.py)."""
    heads = MODELS[model_type].heads
    if head not in heads:
        return f"a '{model_type}' model has no {head} head; use --head {heads[0]}"
    if matched and head != "dc":
        remedy = "add --head dc" if "dc" in heads else f"a '{model_type}' model has no DC head"
        return (
            f"matched run-time inference refines k-means on the DC head; with the {head} head it would do "
            f"nothing: {remedy}"
        )
    if steps is not None and steps < 0:
        return f"matched run-time inference steps must be 0 or more, got {steps}"
    return None


# The loss types, one entry each, read by losses.Objective and by the loss keys' uses and required in KEYS:
# a new type is an entry here (and code in nnet/losses.py only for a term of a new kind).
#   dc_weight:   the weight of L_DC: None (no DC term), a number, or the loss key that holds it; L_MI, where
#                there is one, weighs 1 - dc_weight
#   dc_optional: that key may be left out (0), and with a weight of 0 the DC term is left out, its keys
#                not needed ("<type>+" in a key's required: needed by the type when the weight is not 0)
#   mi:          whether the objective has the MI term (utterance-level PIT)
#   others:      the loss key that weighs the other permutations' MI losses, subtracted from the MI term
#                (discriminative learning), or None
#   selects_on:  the validation figure of model selection: "mi", the best permutation's MI loss, or "loss",
#                the whole objective (losses.build_objective says why)
#   doc:         the objective (loss.type's meaning in KEYS)
# chimera and joint train on the same weighted sum of L_DC and L_MI; they differ in the papers'
# weight name (alpha, lambda) and in model selection: chimera++ selects on the MI loss alone
# (Wang et al. 2018, Sec. 5.1), DEF joint training on the whole objective.
LossType = collections.namedtuple("LossType", "dc_weight dc_optional mi others selects_on doc")
LOSSES = {
    "dc": LossType(dc_weight=1.0, dc_optional=False, mi=False, others=None, selects_on="loss", doc="L_DC"),
    "mi": LossType(
        dc_weight=None, dc_optional=False, mi=True, others=None, selects_on="loss", doc="L_MI, utterance-level PIT"
    ),
    "chimera": LossType(
        dc_weight="alpha",
        dc_optional=False,
        mi=True,
        others=None,
        selects_on="mi",
        doc="alpha L_DC + (1 - alpha) L_MI, model selection on L_MI alone (chimera++)",
    ),
    "joint": LossType(
        dc_weight="lambda",
        dc_optional=False,
        mi=True,
        others=None,
        selects_on="loss",
        doc="lambda L_DC + (1 - lambda) L_MI, model selection on the whole (DEF joint training)",
    ),
    "dl": LossType(
        dc_weight="lambda",
        dc_optional=True,
        mi=True,
        others="gamma",
        selects_on="mi",
        doc="L_MI(phi*) - gamma sum_{phi != phi*} L_MI(phi), plus lambda L_DC",
    ),
}
LOSS_TYPES = tuple(LOSSES)
MASK_ACTIVATIONS = ("relu", "sigmoid", "softmax")
DC_OBJECTIVES = (
    "classic",
    "laplacian",
    "doubly_stochastic",
    "lda",
    "wkm",
    "laplacian_shifted",
    "doubly_stochastic_shifted",
)
DC_WEIGHTS = ("none", "va", "mr")
MI_TARGETS = ("msa", "psa", "tpsa")
MI_NORMS = ("l1", "l2")

Key = collections.namedtuple("Key", "section name uses required kind allowed default doc")
# uses / required: the model or loss types that accept / need the key (None: every type; the
#   training keys all have defaults), from MODELS and LOSSES. "dl+" in required: needed by dl when its
#   lambda > 0 (LOSSES' dc_optional).
# kind: int | float | bool | choice | name.  allowed: the choices, or a range "[lo, hi)", ">= lo", "> lo".


def _model_types_with(key, required=False):
    """The model types that take (required: need) the model key `key`, in MODELS' order."""
    return tuple(t for t, m in MODELS.items() if key in m.keys and (m.keys[key] or not required))


def _loss_types_weighted_by(key, required=False):
    """The loss types with a term weighted by the loss key `key` (required: that need it, which an
    optional DC weight is not)."""
    return tuple(
        t
        for t, loss in LOSSES.items()
        if loss.others == key or (loss.dc_weight == key and not (required and loss.dc_optional))
    )


def _types_doc(types):
    return "; ".join(f"{name}: {t.doc}" for name, t in types.items())


_DC = tuple(t for t, loss in LOSSES.items() if loss.dc_weight is not None)
_DC_NEEDED = tuple(t + "+" if LOSSES[t].dc_optional else t for t in _DC)
_MI = tuple(t for t, loss in LOSSES.items() if loss.mi)
KEYS = [
    Key(
        "",
        "init_from",
        None,
        (),
        "name",
        None,
        None,
        "the system (config file name) whose <exp>/<system>/best.pt starts this one: the DL-DEF chain",
    ),
    Key(
        "model",
        "type",
        None,
        MODEL_TYPES,
        "choice",
        MODEL_TYPES,
        None,
        _types_doc(MODELS),
    ),
    Key(
        "model",
        "num_bins",
        None,
        (),
        "int",
        ">= 1",
        None,
        "F: frequency bins of the input features, embeddings and masks, n_fft / 2 + 1 of the features' STFT "
        "(129 at 8 kHz, 32 ms; 257 at 16 kHz): training takes the features' when the config leaves it out, "
        "and refuses another",
    ),
    Key(
        "model",
        "num_spk",
        _model_types_with("num_spk"),
        _model_types_with("num_spk", required=True),
        "int",
        ">= 2",
        None,
        "C: sources per mixture, masks per frame (dc: the k-means clusters at separation, default 2)",
    ),
    Key("model", "layers", None, MODEL_TYPES, "int", ">= 1", None, "BLSTM layers (def: of the uPIT part)"),
    Key("model", "units", None, MODEL_TYPES, "int", ">= 1", None, "LSTM cells per direction (def: of the uPIT part)"),
    Key("model", "dropout", None, (), "float", "[0, 1)", 0.0, "dropout between BLSTM layers"),
    Key(
        "model",
        "emb_dim",
        _model_types_with("emb_dim"),
        _model_types_with("emb_dim", required=True),
        "int",
        ">= 1",
        None,
        "D: embedding dimension per TF bin (tanh, unit length)",
    ),
    Key(
        "model",
        "mask_activation",
        _model_types_with("mask_activation"),
        _model_types_with("mask_activation", required=True),
        "choice",
        MASK_ACTIVATIONS,
        None,
        "the mask layer's activation (softmax: across the C sources)",
    ),
    Key(
        "model",
        "dc_layers",
        _model_types_with("dc_layers"),
        _model_types_with("dc_layers", required=True),
        "int",
        ">= 1",
        None,
        "BLSTM layers of the DC part",
    ),
    Key(
        "model",
        "dc_units",
        _model_types_with("dc_units"),
        _model_types_with("dc_units", required=True),
        "int",
        ">= 1",
        None,
        "LSTM cells per direction of the DC part",
    ),
    Key(
        "model",
        "freeze_dc",
        _model_types_with("freeze_dc"),
        _model_types_with("freeze_dc", required=True),
        "bool",
        None,
        False,
        "keep the DC part as initialized (no gradient, eval mode, no dropout)",
    ),
    Key(
        "loss",
        "type",
        None,
        LOSS_TYPES,
        "choice",
        LOSS_TYPES,
        None,
        _types_doc(LOSSES),
    ),
    Key(
        "loss",
        "dc_objective",
        _DC,
        _DC_NEEDED,
        "choice",
        DC_OBJECTIVES,
        None,
        "Wang et al. 2018: classic eq. (1), laplacian (L) eq. (2), doubly_stochastic (S) eqs. (3)-(4), "
        "lda eq. (5), wkm (W, whitened k-means) eq. (6); *_shifted: not the paper's, on (1 + VV^T) / 2",
    ),
    Key(
        "loss",
        "dc_weights",
        _DC,
        _DC_NEEDED,
        "choice",
        DC_WEIGHTS,
        None,
        "none: equal; va: W_VA, 1 where a clean source is within 40 dB of its loudest bin; mr: W_MR, "
        "mixture magnitude over its sum",
    ),
    Key(
        "loss",
        "mi_target",
        _MI,
        _MI,
        "choice",
        MI_TARGETS,
        None,
        "the target of mask * |X|: msa |S|; psa |S| cos(theta_S - theta_X); tpsa: psa in [0, psa_truncation |X|]",
    ),
    Key(
        "loss",
        "mi_norm",
        _MI,
        _MI,
        "choice",
        MI_NORMS,
        None,
        "absolute or squared error, summed over the sources, averaged over TF bins",
    ),
    Key("loss", "psa_truncation", _MI, (), "float", "> 0", 1.0, "tpsa's upper bound in units of |X|"),
    Key(
        "loss",
        "alpha",
        _loss_types_weighted_by("alpha"),
        _loss_types_weighted_by("alpha", required=True),
        "float",
        "[0, 1)",
        None,
        "chimera: the weight of L_DC (Wang et al.: set on cv; steps/sweep_alpha.sh); below 1: at 1 the MI head, "
        "which selects the model and separates, would get no gradient",
    ),
    Key(
        "loss",
        "lambda",
        _loss_types_weighted_by("lambda"),
        _loss_types_weighted_by("lambda", required=True),
        "float",
        "[0, 1]",
        0.0,
        "joint, dl: the weight of L_DC (dl: optional, default 0)",
    ),
    Key(
        "loss",
        "gamma",
        _loss_types_weighted_by("gamma"),
        _loss_types_weighted_by("gamma", required=True),
        "float",
        ">= 0",
        None,
        "dl: the weight of the other permutations' losses (below 1: with C = 2 the loss is unbounded else)",
    ),
    Key("training", "segment_frames", None, (), "int", ">= 1", 400, "training segment length in frames"),
    Key("training", "batch_size", None, (), "int", ">= 1", 32, "segments per step (per process under DDP)"),
    Key("training", "valid_batch_size", None, (), "int", ">= 1", 8, "whole utterances per validation step"),
    Key("training", "epochs", None, (), "int", ">= 1", 100, "at most this many epochs (early stopping)"),
    Key("training", "lr", None, (), "float", "> 0", 1.0e-3, "Adam's initial learning rate (0 would train nothing)"),
    Key("training", "weight_decay", None, (), "float", ">= 0", 0.0, "Adam's weight decay"),
    Key("training", "lr_factor", None, (), "float", "(0, 1)", 0.5, "the learning rate is multiplied by this ..."),
    Key(
        "training",
        "lr_patience",
        None,
        (),
        "int",
        ">= 0",
        2,
        "... after this many epochs without a better validation loss",
    ),
    Key(
        "training",
        "lr_decay_from",
        None,
        (),
        "int",
        ">= 0",
        0,
        "from the end of this epoch on, the learning rate is also multiplied by lr_factor after every "
        "epoch, plateau or not: the annealing of a fixed budget of epochs (0: on a plateau only)",
    ),
    Key(
        "training",
        "early_stop_patience",
        None,
        (),
        "int",
        ">= 1",
        6,
        "stop after this many epochs without a better validation loss",
    ),
    Key("training", "grad_clip", None, (), "float", ">= 0", 5.0, "largest global gradient norm (0: off)"),
    Key("training", "num_workers", None, (), "int", ">= 0", 2, "data loader processes"),
    Key("training", "seed", None, (), "int", None, 777, "random seed (segment order, initialization, dropout)"),
    Key("training", "amp", None, (), "bool", None, False, "bf16 autocast on GPU (no effect on CPU)"),
    Key(
        "training",
        "dynamic_mixing",
        None,
        (),
        "bool",
        None,
        False,
        "new training mixtures each epoch, drawn by the corpus's rules from <train-dir>/sources/ (the "
        "training speakers' recordings), as many segments as the static set; cv stays fixed",
    ),
    Key("training", "num_threads", None, (), "int", ">= 0", 0, "torch CPU threads per process (0: cores / processes)"),
]
SECTIONS = ("model", "loss", "training")
# keys once accepted, now an error that says what to do
REMOVED = {("training", "optimizer"): "training is always Adam: delete the line"}


class ConfigError(ValueError):
    """A config that is not what KEYS describes; the message names the key and what it takes."""


def keys_of(section):
    return {k.name: k for k in KEYS if k.section == section}


def training_defaults():
    return {k.name: k.default for k in KEYS if k.section == "training"}


def _range_ok(value, allowed):
    m = re.fullmatch(r"([\[(])(\S+), (\S+)([\])])", allowed)
    if m:
        low, high = float(m[2]), float(m[3])
        return (low <= value if m[1] == "[" else low < value) and (value <= high if m[4] == "]" else value < high)
    op, bound = allowed.split()
    return value >= float(bound) if op == ">=" else value > float(bound)


def check_value(key, value):
    """`value` as key.kind (ints as floats for a float key, `1e-3` read as the float it means);
    a ConfigError '<section>.<key>: <value> is not ...' otherwise."""
    where = f"{key.section}.{key.name}" if key.section else key.name
    shown = str(key.default).lower() if key.kind == "bool" else key.default  # as YAML writes it
    default = "" if key.default is None else f" (default: {shown})"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if key.kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {value!r} is not true or false{default}")
        return value
    if key.kind == "choice":
        if value not in key.allowed:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(key.allowed)}")
        return value
    if key.kind == "name":
        if not isinstance(value, str) or not re.fullmatch(r"[\w.-]+", value):
            raise ConfigError(f"{where}: {value!r} is not a system name (a config file name without .yaml)")
        return value
    if key.kind == "int":
        if not is_int:
            raise ConfigError(f"{where}: {value!r} is not an integer{default}")
    else:
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if not (isinstance(number, (int, float)) and not isinstance(number, bool)) or math.isnan(number):
            raise ConfigError(f"{where}: {value!r} is not a number{default}")
        value = float(number)
    if key.allowed and not _range_ok(value, key.allowed):
        within = f"in {key.allowed}" if key.allowed[0] in "[(" else key.allowed
        raise ConfigError(f"{where}: {value!r} is not {within}{default}")
    return value


def check_section(section, cfg):
    """The `model:`, `loss:` or `training:` mapping `cfg` checked against KEYS, its values converted
    (training: completed with the defaults). A ConfigError names the first wrong key."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"section '{section}:' is {cfg!r}, expected keys indented under it")
    known = keys_of(section)
    kind = None
    if "type" in known:  # model:, loss:
        kind = check_value(known["type"], cfg.get("type"))
        accepted = [n for n, k in known.items() if k.uses is None or kind in k.uses]
        for name in cfg:
            if name not in accepted:
                raise ConfigError(
                    f"{section}.{name} is not a key of {section} type '{kind}'; its keys: {', '.join(sorted(accepted))}"
                )
        # an optional DC weight (dl's lambda) other than 0 brings in the keys its type needs with it
        optional = LOSSES[kind].dc_weight if section == "loss" and LOSSES[kind].dc_optional else None
        needs = {kind} | ({kind + "+"} if optional and cfg.get(optional, 0) != 0 else set())
        for name, k in known.items():
            if needs & set(k.required) and name not in cfg:
                why = f" with {optional} > 0" if kind not in k.required else ""
                raise ConfigError(f"{section}.{name} is missing (needed by {section} type '{kind}'{why})")
    else:
        for name in cfg:
            if (section, name) in REMOVED:
                raise ConfigError(f"{section}.{name} is not a key any more: {REMOVED[section, name]}")
            if name not in known:
                raise ConfigError(f"{section}.{name} is not a {section} key; known: {', '.join(known)}")
    checked = {name: check_value(known[name], value) for name, value in cfg.items()}
    if section == "training":
        checked = {**training_defaults(), **checked}
    return kind, checked


def read_config(path, overrides=(), num_bins=None):
    """The YAML mapping of the config file at `path` as written, with `overrides` applied ("section.key=value"
    or "init_from=value" strings: train.py's --set, see set_value) and, where it leaves model.num_bins out,
    the features' num_bins (when given). The file's keys are checked by check_config, not here."""
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    expected = "expected the sections model:, loss: and training:"
    if config is None:
        raise ConfigError(f"{path}: the file is empty; {expected}")
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: {expected}, found a {type(config).__name__}")
    for override in overrides:
        try:
            config = set_value(config, override)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    if num_bins is not None and isinstance(config.get("model"), dict) and "num_bins" not in config["model"]:
        config["model"] = {**config["model"], "num_bins": num_bins}
    return config


def set_value(config, override):
    """A copy of the config mapping with one value set: "section.key=value" (a key of model:, loss: or
    training:) or "init_from=value", the value read as YAML reads it (2 an integer, 0.5 a number, true a
    boolean, mr a string) and checked as the key's; an empty value removes the key (its default applies).
    Whether a model or loss key fits the section's type is checked with the rest (check_config)."""
    name, sep, text = override.partition("=")
    section, _, key = name.rpartition(".")
    usage = f"--set {override}: expected <section>.<key>=<value> ({', '.join(SECTIONS)}) or init_from=<system>"
    if not sep or not key or (section and section not in SECTIONS):
        raise ConfigError(usage)
    known = keys_of(section)
    if key not in known:
        if section:
            raise ConfigError(f"--set {override}: {name} is not a {section} key; known: {', '.join(known)}")
        hint = [f"{s}.{key}" for s in SECTIONS if key in keys_of(s)]
        raise ConfigError(f"{usage}{': did you mean ' + hint[0] + '=' + text + '?' if hint else ''}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {override}: {text!r} is not a single value") from None
    if value is not None:
        try:
            check_value(known[key], value)  # its type and range, as in a file
        except ConfigError as err:
            raise ConfigError(f"--set {override}: {err}") from None
    config = dict(config)
    if section:
        parent = dict(config[section]) if isinstance(config.get(section), dict) else {}
        config[section] = parent
    else:
        parent = config
    if value is None:
        parent.pop(key, None)
    else:
        parent[key] = value
    return config


def check_config(config, where):
    """The config mapping `config` with every key checked (check_section), the training section completed
    with its defaults. A ConfigError starts with `where` (the file, and the --set values applied)."""
    top = keys_of("")
    for name in config:
        if name not in SECTIONS and name not in top:
            raise ConfigError(
                f"{where}: unknown section '{name}:'; expected {', '.join(s + ':' for s in SECTIONS)}"
                f" (and the key {', '.join(top)})"
            )
    config = dict(config)
    try:
        for name in top:
            if name in config:
                config[name] = check_value(top[name], config[name])
        for section in SECTIONS:
            if config.get(section) is None and section != "training":
                raise ConfigError(f"missing section '{section}:'")
            _, config[section] = check_section(section, config.get(section) or {})
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    return config


def load_config(path, overrides=(), num_bins=None):
    """The config at `path` with `overrides` applied and num_bins filled in (read_config), every key
    checked (check_config). A ConfigError starts with the path (and the --set values applied)."""
    where = f"{path} with --set {' '.join(overrides)}" if overrides else path
    return check_config(read_config(path, overrides, num_bins), where)


def num_spk_override(num_spk=0):
    """The --set values of train.py's --num-spk C (0: not given)."""
    return [f"model.num_spk={num_spk}"] if num_spk else []


def init_checkpoint(config, exp_dir):
    """The best.pt the system trained into exp_dir starts from (init_from), or None."""
    if not config.get("init_from"):
        return None
    return os.path.join(os.path.dirname(os.path.normpath(exp_dir)), config["init_from"], "best.pt")


def _init_from(path):
    """The init_from of the config at path; None too where the file is not a config at all, whose
    training then fails alone, naming the problem, while the other chains train."""
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(config, dict) or config.get("init_from") is None:
        return None
    try:
        return check_value(keys_of("")["init_from"], config["init_from"])
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def chains(tuning_dir, exp_root, systems):
    """[[system, ...], ...]: the systems to train (oracle_* and repeats left out), each chain a
    system whose init_from is not among them followed by the ones that start from it, in order.
    A ConfigError names the file of an unknown system, a missing source or a cycle; the rest of
    each config is checked when its system trains."""
    listed = list(dict.fromkeys(s for s in systems if not s.startswith("oracle_")))
    parent = {}
    for system in listed:
        path = os.path.join(tuning_dir, system + ".yaml")
        if not os.path.isfile(path):
            raise ConfigError(f"no {path}: unknown system '{system}'")
        parent[system] = _init_from(path)
    for system in listed:
        path, source = os.path.join(tuning_dir, system + ".yaml"), parent[system]
        if source is None or source in parent:
            continue
        if not os.path.isfile(os.path.join(tuning_dir, source + ".yaml")):
            raise ConfigError(f"{path}: init_from: {source}: there is no {tuning_dir}/{source}.yaml")
        best = os.path.join(exp_root, source, "best.pt")
        if not os.path.isfile(best):
            raise ConfigError(
                f"{path}: init_from: {source} is not among the systems to train and {best} "
                f"does not exist: add {source} to the systems"
            )
    for system in listed:
        seen = [system]
        while parent.get(seen[-1]) in parent:
            seen.append(parent[seen[-1]])
            if seen[-1] in seen[:-1]:
                raise ConfigError(
                    f"{os.path.join(tuning_dir, system + '.yaml')}: init_from makes a cycle "
                    f"({' -> '.join(seen)}): a chain must start from a system without init_from"
                )

    def descendants(system):
        out = [system]
        for child in listed:
            if parent[child] == system:
                out += descendants(child)
        return out

    return [descendants(s) for s in listed if parent[s] not in parent]


def check_systems(tuning_dir, exp_root, systems):
    """Refuses (ConfigError) a system of stages 3-5 that names nothing: oracle_<mask> of a mask
    nnet/oracle_masks.py does not have (stage 3 skips oracle_* and would pass over it silently), or
    a system with neither <tuning-dir>/<system>.yaml nor <exp-root>/<system>/ (a typo, which stage 4
    would otherwise take for a system not trained yet)."""
    for system in systems:
        if system.startswith("oracle_"):
            if system not in oracle_systems():
                raise ConfigError(
                    f"unknown oracle system '{system}': the oracle systems are {', '.join(oracle_systems())}"
                )
            continue
        path, exp = os.path.join(tuning_dir, system + ".yaml"), os.path.join(exp_root, system)
        if not os.path.isfile(path) and not os.path.isdir(exp):
            raise ConfigError(
                f"unknown system '{system}': there is no {path} and no {exp}: check the name (a trained "
                f"system is a {tuning_dir}/<system>.yaml; the oracle systems are {', '.join(oracle_systems())})"
            )


def oracle_systems():
    """oracle_<mask> for each mask separate_oracle.py makes."""
    from nnet.oracle_masks import MASK_KINDS  # imports torch: only when a check needs it

    return [f"oracle_{kind}" for kind in MASK_KINDS]


def describe():
    """KEYS as a Markdown table."""
    rows = ["| key | used by | required by | type | allowed | default | meaning |", "|---|---|---|---|---|---|---|"]
    for k in KEYS:
        allowed = " \\| ".join(k.allowed) if k.kind == "choice" else (k.allowed or "")
        rows.append(
            f"| {k.section + '.' if k.section else ''}{k.name} | {', '.join(k.uses) if k.uses else 'all'} | "
            f"{', '.join(k.required)} | {k.kind} | {allowed} | {'' if k.default is None else k.default} | "
            f"{k.doc} |"
        )
    return "\n".join(rows)


def main(argv):
    usage = (
        f"usage: python3 -m nnet.config keys\n"
        f"       python3 -m nnet.config chains <tuning-dir> <exp-root> <system>...\n"
        f"       python3 -m nnet.config get <config> <section.key>\n"
        f"       python3 -m nnet.config resolve [--set K=V]... [--features <data-dir>] <config>\n"
        f"       python3 -m nnet.config check-systems <tuning-dir> <exp-root> <system>...\n{__doc__}"
    )
    if argv[:1] == ["keys"] and len(argv) == 1:
        print(describe())
    elif argv[:1] == ["chains"] and len(argv) >= 3:
        try:
            for chain in chains(argv[1], argv[2], argv[3:]):
                print(" ".join(chain))
        except ConfigError as err:
            sys.exit(f"config.py: {err}")
    elif argv[:1] == ["get"] and len(argv) == 3:
        section, _, key = argv[2].rpartition(".")
        try:
            config = load_config(argv[1])
        except ConfigError as err:
            sys.exit(f"config.py: {err}")
        value = (config.get(section) or {}).get(key) if section else config.get(key)
        print("" if value is None else str(value).lower() if isinstance(value, bool) else value)
    elif argv[:1] == ["resolve"]:
        parser = argparse.ArgumentParser(prog="python3 -m nnet.config resolve", description="a config as trained")
        parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="as train.py's")
        parser.add_argument("--features", metavar="DATA_DIR", help="model.num_bins from this data dir's STFT")
        parser.add_argument("config")
        args = parser.parse_args(argv[1:])
        try:
            num_bins = None
            if args.features:
                from nnet import features, training_data  # torch: only for the features' STFT

                try:
                    num_bins = features.data_stft(args.features).num_bins
                except training_data.DataError as err:
                    raise ConfigError(str(err)) from None
            config = read_config(args.config, args.set, num_bins)
            load_config(args.config, args.set, num_bins)  # checked as training checks it
        except ConfigError as err:
            sys.exit(f"config.py: {err}")
        # the values as written, not completed with the defaults: another version of cocktail reads it too
        print(yaml.safe_dump(config, sort_keys=False), end="")
    elif argv[:1] == ["check-systems"] and len(argv) >= 3:
        try:
            check_systems(argv[1], argv[2], argv[3:])
        except ConfigError as err:
            sys.exit(f"config.py: --systems: {err}")
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
