"""init_from: a system starts from the weights of another's best.pt (the DL-DEF chain: a dc system's
weights go into the DC part of a def model; a system of the same model type is loaded whole). The
model keys that shape the weights must agree; a checkpoint that does not fit is refused naming
every key that differs. Which keys those are, and which other types' checkpoints a type takes into
which part, is config.MODELS' shape_keys and starts_from."""

import torch
from nnet import config as configs, models
from nnet.training_error import TrainingError, first_line


def _model_value(model_config, key):
    return model_config.get(key, models.DEFAULT_NUM_SPK if key == "num_spk" else None)


def load_initial_weights(model, model_config, path):
    """Start from another system's weights (init_from, the DL-DEF chain): a dc checkpoint goes into
    the DC part of a def model, one of the same model type is loaded whole. Configs that make weights
    of other shapes are refused naming every key that differs."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # as checkpoints.load(): none of torch's errors names the file
        raise TrainingError(
            f"{path}: cannot read this checkpoint ({first_line(err)}): train its system again"
        ) from None
    source, kind = ckpt["config"]["model"], model_config["type"]
    model_type = configs.MODELS[kind]
    if source["type"] in model_type.starts_from:
        name, keys = model_type.starts_from[source["type"]]
        part = getattr(model, name)
    elif source["type"] == kind:
        part, keys = model, {k: k for k in model_type.shape_keys}
    else:
        raise TrainingError(
            f"{path}: a '{source['type']}' model cannot initialize a '{kind}' model (init_from "
            "takes a system of the same model type, or a dc system for a def model)"
        )
    differ = [
        f"model.{mine} {_model_value(source, theirs)} in {path}, {_model_value(model_config, mine)} here"
        if mine == theirs
        else f"model.{theirs} {source.get(theirs)} in {path}, model.{mine} {model_config.get(mine)} here"
        for theirs, mine in keys.items()
        if _model_value(source, theirs) != _model_value(model_config, mine)
    ]
    if differ:
        raise TrainingError(
            f"{path} does not fit this model: {'; '.join(differ)}: make the model keys agree, "
            "or remove init_from to train from scratch"
        )
    part.load_state_dict(ckpt["model"])
