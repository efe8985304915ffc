"""What made a result, recorded beside it and checked wherever it is reused (issue 23).

A recipe reuses what it finds: stage 3 skips a finished system, a training resumes from last.pt,
stage 5 scores a separated dir, RESULTS.md gathers score dirs, a pack carries the rows of its
system. A file that exists says nothing about what made it, so each of them records that here,
in a `provenance.yaml` beside it, and is reused only when it matches what it is now used with:

  exp/<system>/provenance.yaml   written when a training starts (and kept in last.pt and best.pt as
      "provenance"): the config as parsed, after train.py's --set (and --num-spk) and with
      the features' model.num_bins where the config leaves it out (without
      training.num_workers and num_threads, which do not change what is learnt), the training and
      validation data dirs, the STFT of the features, and the sha256 of the init_from checkpoint.
      A resume and stage 3's skip of a finished system compare it with what they are given now
      and refuse, naming every key and file that differs.
  <separated-dir>/provenance.yaml   written by steps/separate.sh and separate_oracle.sh: the data dir
      separated, the model (the sha256 of its best.pt) and how (head, phase, mask).
  <score-dir>/provenance.yaml   written by steps/score.sh: the data dir scored against and the
      separated dir's record. utils/show_results.py leaves out the rows whose data or model changed
      since; a pack carries only the rows of the best.pt it packs.

A data dir is recorded by the sha256 of each table that says what its utterances are (wav.scp,
spk*.scp, noise*.scp, utt2num_samples; for training also stft.conf and the dynamic-mixing sources'
sources/wav.scp and sources/utt2spk) and by the sample rate of its first mixture. That is cheap
(tables and one wav header, not the audio): a corpus re-made in place with the same file names and
lengths is not told apart. feats.scp and cmvn are left out: they follow from the audio and
stft.conf, and their text changes with the --nj of stage 2 (another split into archives).

One writer per exp dir: a training holds an flock on <exp>/.lock, which names its host and pid. A
second training of the same dir is refused while the first runs; the lock of a killed run is
released by the kernel with the process, and the next run says whose it was. steps/train.sh takes
the lock for its whole job (the log included) and tells train.py so through COCKTAIL_EXP_LOCK.

usage: python3 -m nnet.provenance lock --fd N <exp-dir>
       python3 -m nnet.provenance check-training [--set K=V]... [--num-spk C] <config> <train-dir> <valid-dir>
           <exp-dir>
       python3 -m nnet.provenance record-separated [--model <exp-dir|pack>] [--how TEXT] <data-dir> <out-dir>
           (the jobs' <out-dir>/resolved.txt joins --how, then is removed)
       python3 -m nnet.provenance check-separated <data-dir> <separated-dir>
       python3 -m nnet.provenance record-score <data-dir> <separated-dir|-> <score-dir>
"""

import argparse
import contextlib
import datetime
import errno
import fcntl
import hashlib
import os
import re
import socket
import sys
import zipfile

import yaml

from nnet import config as configs
from nnet import datafiles

FORMAT = 1
RECORD = "provenance.yaml"
# in a separation's <out-dir>: what its jobs resolved (nnet/bin/separate.py writes it), until the record takes it
RESOLVED = "resolved.txt"
LOCK = ".lock"
LOCK_ENV = "COCKTAIL_EXP_LOCK"  # the realpath of the exp dir whose lock a parent (steps/train.sh) holds
# keys that change how fast a training runs, not what it learns: a resume may change them
IGNORED_KEYS = (("training", "num_workers"), ("training", "num_threads"))
SCORED_TABLES = re.compile(r"wav\.scp|(spk|noise)[0-9]+\.scp|utt2num_samples")
TRAINING_FILES = ("stft.conf", os.path.join("sources", "wav.scp"), os.path.join("sources", "utt2spk"))


class ProvenanceError(Exception):
    """A result reused with other inputs than made it, or an exp dir another run writes: the message
    names what differs and what to do."""


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now():
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


# -- data dirs ------------------------------------------------------------------------------------
def data_record(data_dir, training=False):
    """{'path', 'sample_rate', 'files': {table: sha256}} of a data dir (see the module doc)."""
    names = sorted(n for n in os.listdir(data_dir) if SCORED_TABLES.fullmatch(n))
    if training:
        names += [n for n in TRAINING_FILES if os.path.isfile(os.path.join(data_dir, n))]
    rate = None
    try:
        with open(os.path.join(data_dir, "wav.scp"), encoding="utf-8") as f:
            first = f.readline().split(maxsplit=1)
        rate = datafiles.wav_info(first[1].strip()).sample_rate if len(first) == 2 else None
    except (OSError, datafiles.AudioError):
        pass  # the tools that read the audio name the problem; the tables still identify the data
    return {
        "path": os.path.abspath(data_dir),
        "sample_rate": rate,
        "files": {name: sha256_file(os.path.join(data_dir, name)) for name in names},
    }


def data_differences(what, given, recorded, current, used):
    """[a line saying how data dir `given` differs from the one `recorded`] ([] when it does not):
    'the training data data/tr (trained on /x/data/tr): wav.scp, utt2num_samples differ'. The path
    alone is no difference: a dir copied elsewhere holds the same utterances."""
    old, new = recorded["files"], current["files"]
    changed = [name for name in sorted(set(old) | set(new)) if old.get(name) != new.get(name)]
    parts = []
    if changed:
        gone = [n for n in changed if n not in new]
        added = [n for n in changed if n not in old]
        same_names = [n for n in changed if n in old and n in new]
        if same_names:
            parts.append(", ".join(same_names) + (" differ" if len(same_names) > 1 else " differs"))
        if added:
            parts.append(", ".join(added) + " added")
        if gone:
            parts.append(", ".join(gone) + " gone")
    if recorded.get("sample_rate") != current.get("sample_rate"):
        parts.append(f"{current.get('sample_rate')} Hz, {recorded.get('sample_rate')} Hz when {used}")
    if not parts:
        return []
    if os.path.abspath(given) == recorded["path"]:
        return [f"{what} {given} changed since it was {used} ({'; '.join(parts)})"]
    return [f"{what} {given} ({used} {recorded['path']}): {'; '.join(parts)}"]


# -- trainings ------------------------------------------------------------------------------------
def config_record(config):
    """The parsed config that decides what a training learns: IGNORED_KEYS left out."""
    record = {key: dict(value) if isinstance(value, dict) else value for key, value in config.items()}
    for section, key in IGNORED_KEYS:
        record.get(section, {}).pop(key, None)
    return record


def _flat(config):
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            flat[key] = value
    return flat


def config_differences(recorded, current):
    """['training.lr 0.002 when trained, 0.5 now', ...] for every key that differs."""
    old, new = _flat(config_record(recorded)), _flat(config_record(current))
    shown = lambda value: "unset" if value is None else str(value).lower() if isinstance(value, bool) else value  # noqa: E731
    return [
        f"{key} {shown(old.get(key))} when trained, {shown(new.get(key))} now"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def training_record(config, train_dir, valid_dir, exp_dir, stft=None):
    """What a training into exp_dir is made from (the module doc); stft: the features' StftConfig dict."""
    init = configs.init_checkpoint(config, exp_dir)
    return {
        "format": FORMAT,
        "config": config_record(config),
        "train": data_record(train_dir, training=True),
        "valid": data_record(valid_dir, training=True),
        "stft": stft,
        "init_from": (
            {"path": os.path.abspath(init), "sha256": sha256_file(init)} if init and os.path.isfile(init) else None
        ),
    }


def training_differences(recorded, current, train_dir, valid_dir):
    """Lines naming how a training `recorded` differs from the one `current` would be (its STFT
    follows from the data dirs' stft.conf and sample rate, which are compared)."""
    lines = config_differences(recorded["config"], current["config"])
    lines += data_differences("the training data", train_dir, recorded["train"], current["train"], "trained on")
    lines += data_differences("the validation data", valid_dir, recorded["valid"], current["valid"], "trained on")
    old, new = recorded.get("init_from") or {}, current.get("init_from") or {}
    if old.get("sha256") != new.get("sha256"):
        source = current["config"].get("init_from") or recorded["config"].get("init_from")
        where = new.get("path") or old.get("path")
        lines.append(
            f"init_from {source}: {where} is not the checkpoint it started from (trained again since?)"
            if new
            else f"init_from {source}: {where} is gone"
        )
    return lines


def check_training(config_path, train_dir, valid_dir, exp_dir, overrides=()):
    """Stage 3's reuse of a finished system: ProvenanceError naming every difference between what
    trained exp_dir and what it is given now (the config with train.py's --set `overrides`)."""
    retrain = f"--retrain true trains it again (the old run goes to {os.path.dirname(os.path.normpath(exp_dir))}/old/)"
    recorded = read_record(exp_dir)
    if recorded is None:
        raise ProvenanceError(
            f"{exp_dir} finished training, but has no {RECORD} (trained by an older cocktail): what it was "
            f"trained from is unknown: {retrain}"
        )
    num_bins, model = None, configs.read_config(config_path, overrides).get("model")
    if isinstance(model, dict) and "num_bins" not in model:
        from nnet import features, training_data  # torch: only for a config that takes F from the features

        try:
            num_bins = features.data_stft(train_dir).num_bins
        except training_data.DataError as err:
            raise ProvenanceError(str(err)) from None
    config = configs.load_config(config_path, overrides, num_bins)
    current = training_record(config, train_dir, valid_dir, exp_dir)
    differences = training_differences(recorded, current, train_dir, valid_dir)
    if differences:
        raise ProvenanceError(
            f"{exp_dir} finished training, but not from what it is given now: {'; '.join(differences)}: {retrain}"
        )


# -- records --------------------------------------------------------------------------------------
def write_record(directory, record):
    with datafiles.atomic_write(os.path.join(directory, RECORD), encoding="utf-8") as f:
        f.write(f"# what made {os.path.basename(os.path.abspath(directory))}: written by nnet/provenance.py\n")
        yaml.safe_dump({**record, "written": _now(), "host": socket.gethostname()}, f, sort_keys=False)


def read_record(directory):
    """The provenance.yaml of directory as a dict, or None when there is none."""
    path = os.path.join(directory, RECORD)
    try:
        with open(path, encoding="utf-8") as f:
            record = yaml.safe_load(f)
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise ProvenanceError(f"{path}: cannot be read ({err}): move the dir aside and make it again") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ProvenanceError(f"{path}: not a provenance record of format {FORMAT}: make the dir again")
    return record


# -- separations and scores -----------------------------------------------------------------------
def model_identity(model):
    """{'path', 'sha256'} of a trained system, an exp dir (its best.pt) or a pack (the sha256 of its
    best.pt in meta.yaml, which nnet/pack.py checks before anything is loaded)."""
    if os.path.isfile(model) and zipfile.is_zipfile(model):
        with zipfile.ZipFile(model) as z:
            sha = yaml.safe_load(z.read("meta.yaml")).get("sha256_best_pt")
        return {"path": os.path.abspath(model), "sha256": sha}
    return {"path": os.path.abspath(model), "sha256": sha256_file(os.path.join(model, "best.pt"))}


def resolved_how(out_dir, how):
    """how, with what separate.py's jobs resolved (a pack's head, matched inference and phase: <out-dir>/resolved.txt,
    which the options do not say) added in parentheses."""
    try:
        with open(os.path.join(out_dir, RESOLVED), encoding="utf-8") as f:
            resolved = f.read().strip()
    except FileNotFoundError:  # oracle masks: nothing resolved
        return how
    if not resolved:
        return how
    return f"{how} ({resolved})" if how else f"({resolved})"


def record_separated(data_dir, out_dir, model=None, how=""):
    """<out-dir>/provenance.yaml of finished separation jobs; their resolved.txt goes into its how."""
    write_record(out_dir, separated_record(data_dir, model, resolved_how(out_dir, how)))
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(out_dir, RESOLVED))


def separated_record(data_dir, model=None, how=""):
    return {
        "format": FORMAT,
        "data": data_record(data_dir),
        "model": model_identity(model) if model else None,
        "how": how,
    }


def check_separated(data_dir, separated):
    """A separated dir scored against data_dir must have been separated from it as it is now; estimates
    written by other tools (no record) are taken as they are."""
    recorded = read_record(separated)
    if recorded is None:
        return
    differences = data_differences("the data", data_dir, recorded["data"], data_record(data_dir), "separated")
    if differences:
        raise ProvenanceError(
            f"{separated} was separated from other data than {data_dir} is now: {'; '.join(differences)}: "
            "separate it again (stage 4: steps/separate.sh) before scoring it"
        )


def score_record(data_dir, separated, score_dir):
    data = data_record(data_dir)
    return {
        "format": FORMAT,
        "data": data,
        # a recipe dir moved elsewhere keeps its score dirs' data dir at the same relative place
        "data_relative": os.path.relpath(data["path"], os.path.abspath(score_dir)),
        "separated": None
        if separated is None
        else {"path": os.path.abspath(separated), "record": read_record(separated)},
    }


def score_problems(score_dir, model=None):
    """Why the result in score_dir no longer holds: [] when it does, None when it has no record
    (scored by an older cocktail: nothing to check). model {'path', 'sha256'}: the estimates must
    come from that model (a pack's rows); without it, from the recorded model as it is now."""
    recorded = read_record(score_dir)
    if recorded is None:
        return None
    path = recorded["data"]["path"]
    if not os.path.isdir(path):
        path = os.path.normpath(os.path.join(os.path.abspath(score_dir), recorded.get("data_relative", "")))
    if not os.path.isfile(os.path.join(path, "wav.scp")):
        return [f"the data {recorded['data']['path']} it was scored on is gone"]
    problems = data_differences("the data", path, recorded["data"], data_record(path), "scored")
    separated = recorded.get("separated") or {}
    made_by = (separated.get("record") or {}).get("model")
    if model is not None:
        if not made_by or made_by.get("sha256") != model["sha256"]:
            which = "another model than" if made_by else "a model not recorded, maybe not"
            problems.append(f"{score_dir} was separated by {which} {model['path']}")
    elif made_by:
        where = made_by["path"]
        try:
            now = model_identity(where)["sha256"]
        except (OSError, zipfile.BadZipFile, KeyError, AttributeError, yaml.YAMLError):
            now = None
        if now is None:
            problems.append(f"the model {where} that separated {separated['path']} is gone")
        elif now != made_by["sha256"]:
            problems.append(f"the model {where} changed since it separated {separated['path']} (trained again?)")
    return problems


# -- one writer per exp dir -----------------------------------------------------------------------
def _holder(path):
    """(pid, host, since) of the lock file's line, or None when empty or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            m = re.match(r"pid (\d+) host (\S+) since (.+?) command ", f.read())
    except OSError:
        return None
    return (int(m[1]), m[2], m[3]) if m else None


def lock_fd(fd, exp_dir, pid):
    """flock the open lock file fd of exp_dir for the writer pid: LockError naming the run that holds
    it; returns the (pid, host, since) of a former holder that ended without clearing it (killed)."""
    path = os.path.join(exp_dir, LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise ProvenanceError(f"{path}: cannot lock ({err.strerror})") from None
        holder = _holder(path)
        who = f"pid {holder[0]} on {holder[1]}, since {holder[2]}" if holder else f"see {path}"
        stop = f" (kill {holder[0]} on {holder[1]})" if holder else ""
        raise ProvenanceError(
            f"{exp_dir} is being trained by another run ({who}): a second writer would mix its checkpoints, "
            f"config and log with that run's: wait for it to end, or stop it{stop}, then run again"
        ) from None
    former = _holder(path)
    os.ftruncate(fd, 0)
    try:  # the writer's command line (steps/train.sh's, for the CLI), to say who holds the dir
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = " ".join(sys.argv)
    line = f"pid {pid} host {socket.gethostname()} since {_now()} command {command}\n"
    os.pwrite(fd, line.encode(), 0)
    return former if former and former[0] != pid else None


def taken_over(exp_dir, former):
    pid, host, since = former
    lock = os.path.join(exp_dir, LOCK)
    return f"{lock}: taken over from pid {pid} on {host}, since {since} (no longer running: a killed run?)"


class ExpLock:
    """The lock of an exp dir held by this process (train.py run alone): lock(), release()."""

    def __init__(self, exp_dir):
        self.exp_dir = exp_dir
        self.file = open(os.path.join(exp_dir, LOCK), "a+", encoding="utf-8")
        try:
            self.former = lock_fd(self.file.fileno(), exp_dir, os.getpid())
        except BaseException:
            self.file.close()
            raise

    def release(self):
        """Clear the holder line (a line left behind means a run that did not end cleanly) and unlock."""
        if not self.file.closed:
            os.ftruncate(self.file.fileno(), 0)
            self.file.close()


def held_by_parent(exp_dir):
    return os.environ.get(LOCK_ENV) == os.path.realpath(exp_dir)


# -- command line ---------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lock", help="lock <exp-dir> on the open file descriptor --fd (held by the calling shell)")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("exp_dir")
    p = sub.add_parser("check-training", help="exit 1 naming what differs from what trained <exp-dir>")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="as train.py's")
    p.add_argument("--num-spk", type=int, default=0)
    for name in ("config", "train_dir", "valid_dir", "exp_dir"):
        p.add_argument(name)
    p = sub.add_parser("record-separated")
    p.add_argument("--model", help="the exp dir or pack that separated (none: oracle masks)")
    p.add_argument("--how", default="")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p = sub.add_parser("check-separated")
    p.add_argument("data_dir")
    p.add_argument("separated")
    p = sub.add_parser("record-score")
    p.add_argument("data_dir")
    p.add_argument("separated", help="'-': the mixture scored as every estimate")
    p.add_argument("score_dir")
    args = parser.parse_args(argv)
    try:
        if args.command == "lock":
            former = lock_fd(args.fd, args.exp_dir, os.getppid())  # the shell that keeps the descriptor open
            if former:
                print(f"provenance.py: {taken_over(args.exp_dir, former)}")
        elif args.command == "check-training":
            overrides = configs.num_spk_override(args.num_spk) + args.set
            check_training(args.config, args.train_dir, args.valid_dir, args.exp_dir, overrides)
        elif args.command == "record-separated":
            record_separated(args.data_dir, args.out_dir, args.model, args.how)
        elif args.command == "check-separated":
            check_separated(args.data_dir, args.separated)
        else:
            separated = None if args.separated == "-" else args.separated
            write_record(args.score_dir, score_record(args.data_dir, separated, args.score_dir))
    except (ProvenanceError, configs.ConfigError) as err:
        sys.exit(f"provenance.py: {err}")


if __name__ == "__main__":
    main()
