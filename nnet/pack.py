"""A trained system as one file: a zip that holds what separation needs and what a reader asks.

    best.pt       the checkpoint (weights, CMVN, STFT and config travel in it)
    config.yaml   the training config of exp/<system>/ (the file a user reads; best.pt has its dict)
    RESULTS.md    the rows of the recipe's RESULTS.md for this system, with its header (if any)
    meta.yaml     format, system, sample rate, speakers, the head/inference/phase to use (with
                  matched run-time inference: its number of steps), the training corpus and its
                  licence note, the repository commit, torch and python versions, the creation
                  date, and best.pt's sha256

A reader checks the format (a pack from a newer cocktail is refused, naming both versions) and
best.pt against its sha256 before anything is loaded; torch.load runs with weights_only=True, as
for an exp dir. A pack is written in the oldest format that can say what it holds (format 2 only
when it names a head other than the model's first or matched run-time inference, which a format-1
reader would refuse or skip, separating otherwise than the pack promises). meta.yaml's facts about
the weights (sample rate, speakers, model type, epoch, a head the model has, matched inference only
on the dc head) are checked against best.pt, and config.yaml's model and loss against best.pt's
config: a pack whose meta.yaml or config.yaml says otherwise was edited or damaged, and is refused
naming the key. A pack unpacked into a dir (meta.yaml beside best.pt) is read with the same checks.

The RESULTS.md rows travel only when they are the packed model's: each row's score dir
(exp/<system>/score_<set>[_<variant>]/provenance.yaml, nnet/provenance.py) must hold the sha256 of
this best.pt as the model that separated, and data that did not change since; the other rows (a
system trained again and not yet separated, scored before provenance was recorded) are left out,
each named on stderr.
"""

import datetime
import hashlib
import io
import os
import platform
import subprocess
import zipfile

import sys

import torch
import yaml

from nnet import config as configs
from nnet import provenance

FORMAT = 2  # the newest pack layout this code writes and reads (2: meta.yaml may name any head, matched inference)
MEMBERS = ("best.pt", "config.yaml", "meta.yaml")  # RESULTS.md is optional


class PackError(Exception):
    """A pack that cannot be read: the message names the file and what to do."""


def is_pack(path):
    """A file given as a pack: a zip, or a file named .zip (one cut short is still meant as a pack, and
    read() says it is damaged)."""
    return os.path.isfile(path) and (path.endswith(".zip") or zipfile.is_zipfile(path))


def _commit(root):
    """The repository commit ('<hash>', or '<hash>-dirty' when tracked code differs from it), or
    'unknown' outside a git checkout."""
    try:
        run = lambda *a: subprocess.run(["git", "-C", root, *a], capture_output=True, text=True, check=True)  # noqa: E731
        commit = run("rev-parse", "HEAD").stdout.strip()
        # a recipe run rewrites its tracked RESULTS.md: that is output, not a change of the code
        dirty = run(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude,glob)**/RESULTS.md"
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def results_rows(results_md, system, exp_dir=None, sha256=None):
    """The header and the rows of `system` (and its '+variant' rows) of a RESULTS.md table. With
    exp_dir and sha256 (of the best.pt packed), only the rows scored on estimates of that model
    (their score dir's provenance), the others named on stderr."""
    with open(results_md) as f:
        lines = [line.rstrip("\n") for line in f]
    header = [line for line in lines if line.startswith("| system |") or line.startswith("|---")][:2]
    rows = [line for line in lines if line.split("|")[1:2] and line.split("|")[1].strip().split(" ")[0] == system]
    if exp_dir is not None:
        rows = [row for row in rows if _row_of_model(row, exp_dir, sha256)]
    return header + rows if rows else []


def _row_of_model(row, exp_dir, sha256):
    cells = [cell.strip() for cell in row.split("|")[1:3]]
    variant = cells[0].split(" +")[1] if " +" in cells[0] else ""
    score_dir = os.path.join(exp_dir, f"score_{cells[1]}" + (f"_{variant}" if variant else ""))
    best = os.path.join(exp_dir, "best.pt")
    try:
        problems = provenance.score_problems(score_dir, {"path": best, "sha256": sha256})
    except provenance.ProvenanceError as err:
        problems = [str(err)]
    if problems is None:
        problems = [f"{score_dir} has no {provenance.RECORD}: which model it scored is not known"]
    if problems:
        print(f"pack: left out the RESULTS.md row '{cells[0]} | {cells[1]}': {'; '.join(problems)}", file=sys.stderr)
    return not problems


def write(
    exp_dir,
    out_zip,
    corpus,
    licence,
    results_md=None,
    phase="mixture",
    root=None,
    citation="",
    head=None,
    matched_steps=None,
):
    """Pack exp_dir/best.pt (+ config.yaml, RESULTS rows) into out_zip, written atomically. citation: what
    a user of the model must cite (the training corpus's paper), kept in meta.yaml when given. head: the
    head users get (default: the model's first, MI when it has one); matched_steps: users get k-means
    refined by that many steps of matched run-time inference (DC head; None: k-means alone)."""
    best = os.path.join(exp_dir, "best.pt")
    if not os.path.isfile(best):
        raise PackError(f"{best} not found: train the system first (stage 3)")
    config_yaml = os.path.join(exp_dir, "config.yaml")
    if not os.path.isfile(config_yaml):
        raise PackError(f"{config_yaml} not found: {exp_dir} is not a training dir of steps/train.sh")
    with open(best, "rb") as f:
        weights = f.read()
    ckpt = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    system = os.path.basename(os.path.normpath(exp_dir))
    facts = weight_facts(ckpt)
    heads = configs.MODELS[facts["model_type"]].heads
    head = head or heads[0]
    problem = configs.inference_problem(facts["model_type"], head, matched_steps is not None, matched_steps)
    if problem:
        raise PackError(f"{exp_dir}: {problem}")
    inference = "masks of the MI head" if head == "mi" else "k-means on the DC embeddings"
    if matched_steps is not None:
        inference += f" + {matched_steps} steps of matched run-time inference (Wang et al. 2018)"
    meta = {
        # format 1 readers take the model's first head and k-means alone: a pack that says otherwise is 2
        "format": 1 if matched_steps is None and head == heads[0] else 2,
        "system": system,
        "sample_rate": facts["sample_rate"],
        "num_spk": facts["num_spk"],
        "model_type": facts["model_type"],
        "head": head,
        "inference": inference,
        **({"matched_inference": True, "matched_steps": matched_steps} if matched_steps is not None else {}),
        "phase": phase,
        "epoch": facts["epoch"],
        "training_corpus": corpus,
        "license": licence,
        **({"citation": citation} if citation else {}),
        "commit": _commit(root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        "torch": str(torch.__version__),  # a TorchVersion, which yaml cannot write
        "python": platform.python_version(),
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "sha256_best_pt": hashlib.sha256(weights).hexdigest(),
    }
    rows = results_rows(results_md, system, exp_dir, meta["sha256_best_pt"]) if results_md else []
    tmp = out_zip + ".tmp"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("meta.yaml", yaml.safe_dump(meta, sort_keys=False))
            z.write(config_yaml, "config.yaml")
            z.writestr("best.pt", weights)
            if rows:
                z.writestr("RESULTS.md", "\n".join(rows) + "\n")
        os.replace(tmp, out_zip)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return meta


def read(path):
    """(checkpoint dict, meta dict) of a pack; PackError naming the file for anything amiss."""
    try:
        with zipfile.ZipFile(path) as z:
            missing = [m for m in MEMBERS if m not in z.namelist()]
            if missing:
                raise PackError(
                    f"{path}: not a cocktail model pack (no {', '.join(missing)}): make one with utils/pack_model.sh"
                )
            meta = yaml.safe_load(z.read("meta.yaml"))
            weights = z.read("best.pt")
    except zipfile.BadZipFile as err:
        raise PackError(f"{path}: damaged zip ({err}): download or copy the pack again") from None
    ckpt = check_meta(
        meta,
        weights,
        path,
        f"{path}: best.pt does not match the sha256 in meta.yaml: the pack is damaged, get it again",
    )
    with zipfile.ZipFile(path) as z:
        try:
            config = yaml.safe_load(z.read("config.yaml"))
        except yaml.YAMLError:
            config = None
    for section in ("model", "loss"):  # read as training read them (1e-3 is a float)
        try:
            theirs = configs.check_section(section, config.get(section) if isinstance(config, dict) else None)[1]
        except configs.ConfigError:
            theirs = None
        if theirs != ckpt["config"][section]:
            raise PackError(f"{path}: config.yaml's {section}: is not best.pt's: the pack was edited or damaged")
    return ckpt, meta


def check_meta(meta, weights, where, mismatch):
    """The checkpoint of best.pt's bytes `weights`, once meta.yaml (the dict `meta`, of the pack or unpacked
    dir `where`) is one this code reads and says nothing about best.pt that best.pt does not; else a
    PackError naming `where` (`mismatch`: the message for a best.pt that is not meta.yaml's)."""
    if not isinstance(meta, dict) or not isinstance(meta.get("format"), int):
        raise PackError(f"{where}: meta.yaml has no integer 'format': not a cocktail model pack")
    if meta["format"] > FORMAT:
        raise PackError(
            f"{where}: pack format {meta['format']} was written by a newer cocktail; this one reads format "
            f"{FORMAT} and older: update cocktail (git pull) to use it"
        )
    if hashlib.sha256(weights).hexdigest() != meta.get("sha256_best_pt"):
        raise PackError(mismatch)
    ckpt = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    # meta.yaml is outside best.pt's sha256: what it says about the weights must be what they are
    facts = weight_facts(ckpt)
    for key, true in facts.items():
        if key in meta and meta[key] != true:
            raise PackError(
                f"{where}: meta.yaml says {key} {meta[key]}, its best.pt {true}: the pack was edited or damaged"
            )
    heads = configs.MODELS[facts["model_type"]].heads
    if "head" in meta and meta["head"] not in heads:
        raise PackError(
            f"{where}: meta.yaml says head {meta['head']}, its best.pt (a '{facts['model_type']}' model) has "
            f"{' and '.join(heads)}: the pack was edited or damaged"
        )
    matched, steps = meta.get("matched_inference", False), meta.get("matched_steps", 0)
    if (
        not isinstance(matched, bool)
        or isinstance(steps, bool)
        or not isinstance(steps, int)
        or steps < 0
        or (matched and (meta.get("head") != "dc" or meta["format"] < 2))
    ):
        raise PackError(
            f"{where}: meta.yaml says matched_inference {matched!r}, matched_steps {steps!r} on the "
            f"{meta.get('head')} head in format {meta['format']} (matched run-time inference needs true or "
            "false, 0 or more steps, the dc head and format 2): the pack was edited or damaged"
        )
    return ckpt


def weight_facts(ckpt):
    """What meta.yaml says about the weights of a checkpoint, from the checkpoint."""
    model = ckpt["config"]["model"]
    return {
        "sample_rate": int(ckpt["stft"]["sample_rate"]),
        "num_spk": int(model.get("num_spk", 2)),
        "model_type": model["type"],
        "epoch": int(ckpt["epoch"]),
    }


def load_system(path, checkpoint="best.pt"):
    """(checkpoint dict, meta) of the trained system at `path`: a model pack (a .zip; read() and its
    checks), or an exp dir: its `checkpoint` file, with the meta.yaml beside a best.pt that a pack was
    unpacked into (`pack_model.py unpack`; checked as a pack's), else meta None."""
    if is_pack(path):
        return read(path)
    if os.path.isfile(path):
        raise PackError(f"{path}: neither an exp dir nor a model pack (zip)")
    meta_yaml = os.path.join(path, "meta.yaml")
    path = os.path.join(path, checkpoint)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: train the system first (stage 3)")
    if checkpoint != "best.pt" or not os.path.isfile(meta_yaml):
        return torch.load(path, map_location="cpu", weights_only=True), None
    with open(path, "rb") as f:
        weights = f.read()
    try:
        with open(meta_yaml) as f:
            meta = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise PackError(f"{meta_yaml}: not YAML ({err}): unpack the pack again") from None
    mismatch = (
        f"{meta_yaml} is not about {path} (sha256_best_pt differs): unpack the pack into a new dir, or remove "
        "meta.yaml to separate with the code's defaults"
    )
    return check_meta(meta, weights, meta_yaml, mismatch), meta
