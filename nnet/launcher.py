"""Starting a training: train() checks the experiment dir and takes its lock, writes config.yaml
and provenance.yaml on a fresh start (a resume must match them), then runs nnet/train.py's Trainer
in this process, in the processes torchrun started (its environment decides), or in processes it
spawns for DistributedDataParallel (one per GPU over NCCL, or CPU processes over gloo)."""

import os
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import yaml
from nnet import config as configs, datafiles, features, provenance, training_data
from nnet.config import ConfigError, load_config
from nnet.train import Trainer
from nnet.training_error import TrainingError, error_message


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, ngpu, args, completed=None):
    """One rank's training; completed (a shared flag of run_ranks, None under torchrun) is set once
    every rank has finished its training and rank 0 has written every output."""
    if world_size > 1:
        dist.init_process_group("nccl" if ngpu > 0 else "gloo", rank=rank, world_size=world_size)
    try:
        try:
            _train(rank, world_size, ngpu, args)
        except (TrainingError, ConfigError, training_data.DataError, datafiles.TableError) as err:
            # The message alone, then exit 1: the launcher (spawn, torchrun) ends the other ranks,
            # also one waiting in a collective for this one.
            print(f"train.py: {error_message(err)}", file=sys.stderr, flush=True)
            sys.exit(1)
        if world_size > 1:
            # Rank 0 still writes checkpoints after the others leave the loop: all ranks leave
            # together, and a rank past this barrier knows that every rank finished its training.
            dist.barrier()
        if completed is not None:
            completed.value = 1
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def run_ranks(worker, world_size, *worker_args):
    """worker(rank, *worker_args, completed) in world_size spawned processes; TrainingError naming
    the process when one fails. A process that dies after `completed` was set (by a rank past the
    final barrier: every output is written) does not fail the run: gloo's teardown can abort a rank
    whose peer closed its connections first ("terminate called without an active exception",
    SIGABRT: once in CI, once in a local .ci/run on 2 loaded cores), after the job was done; a warning names it."""
    completed = torch.multiprocessing.get_context("spawn").Value("b", 0)
    try:
        torch.multiprocessing.spawn(worker, args=(*worker_args, completed), nprocs=world_size, join=True)
    except torch.multiprocessing.ProcessExitedException as err:
        how = f"signal {err.signal_name}" if err.signal_name else f"exit code {err.exit_code}"
        what = f"training process {err.error_index} of {world_size}"
        if not completed.value:
            raise TrainingError(f"{what} failed ({how}): see the messages above") from None
        print(
            f"train.py: WARNING: {what} ended with {how} while shutting down, after every process had "
            "finished its training and every output was written: the run is complete",
            file=sys.stderr,
            flush=True,
        )


def _train(rank, world_size, ngpu, args):
    config = args["config"]
    opts = config["training"]
    threads = args.get("num_threads") or opts["num_threads"] or max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(threads)
    if ngpu > 0:
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    Trainer(
        config, args["train_dir"], args["valid_dir"], args["exp_dir"], device, rank, world_size, args.get("record")
    ).run()


def train(config_path, train_dir, valid_dir, exp_dir, ngpu=0, num_procs=1, num_threads=0, num_spk=0, overrides=()):
    """Train into exp_dir (resuming from its last.pt). num_procs > 1 runs DDP: one process per GPU
    when ngpu > 0, else CPU processes over gloo. Under torchrun the environment decides.
    num_threads > 0 overrides the config's training.num_threads (the recipe's share of the cores).
    overrides: "section.key=value" strings set in the config as read (train.py --set,
    config.set_value); num_spk > 0 is model.num_spk=C (a recipe's --num-spk), applied before them.
    A config that leaves model.num_bins out takes the features' (n_fft / 2 + 1 of the training
    data's STFT). exp_dir/config.yaml records the config so made, which a resumed run reads as it is."""
    if num_spk and num_spk < 2:
        raise TrainingError(f"--num-spk {num_spk}: a mixture has 2 or more sources (0: model.num_spk of the config)")
    overrides = configs.num_spk_override(num_spk) + list(overrides)
    stft = features.data_stft(train_dir)
    config = load_config(config_path, overrides, stft.num_bins)
    init = configs.init_checkpoint(config, exp_dir)
    if init and not os.path.isfile(init) and not os.path.isfile(os.path.join(exp_dir, "last.pt")):
        raise TrainingError(
            f"{config_path}: init_from: {config['init_from']}: {init} not found: train "
            f"{config['init_from']} first (steps/train_chains.sh trains a chain in order)"
        )
    check_exp_dir(exp_dir)
    # One writer per exp dir (steps/train.sh holds the lock for its whole job, log included, and says so
    # in COCKTAIL_EXP_LOCK); under torchrun rank 0 holds it for every rank.
    lock = None
    if os.environ.get("RANK", "0") == "0" and not provenance.held_by_parent(exp_dir):
        try:
            lock = provenance.ExpLock(exp_dir)
        except provenance.ProvenanceError as err:
            raise TrainingError(str(err)) from None
        if lock.former:
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} train.py: {provenance.taken_over(exp_dir, lock.former)}")
    try:
        return _train_locked(
            config, config_path, overrides, stft, train_dir, valid_dir, exp_dir, ngpu, num_procs, num_threads
        )
    finally:
        if lock is not None:
            lock.release()


def config_text(config_path, overrides, stft):
    """What exp/<system>/config.yaml says: the file at config_path as it is when neither the overrides
    nor the features' num_bins change it; else its leading comment, a line naming the file and the
    changes, and the config they make, as YAML (each key's comment is in the file named)."""
    with open(config_path, encoding="utf-8") as f:
        text = f.read()
    written = configs.read_config(config_path)
    made = configs.read_config(config_path, overrides, stft.num_bins)
    if made == written:
        return text
    changes = list(overrides)
    if "num_bins" not in configs.read_config(config_path, overrides).get("model", {}):
        changes.append(f"model.num_bins={stft.num_bins} (the features')")
    header = "".join(line for line in text.splitlines(keepends=True)[: _leading_comment(text)])
    return (
        header
        + f"# made by nnet/train.py from {config_path} with {', '.join(changes)}\n"
        + yaml.safe_dump(made, sort_keys=False)
    )


def _leading_comment(text):
    """The number of lines of the comment block at the top of a YAML text."""
    lines = text.splitlines()
    count = 0
    while count < len(lines) and lines[count].startswith("#"):
        count += 1
    return count


def _train_locked(config, config_path, overrides, stft, train_dir, valid_dir, exp_dir, ngpu, num_procs, num_threads):
    copy = os.path.join(exp_dir, "config.yaml")
    record = provenance.training_record(config, train_dir, valid_dir, exp_dir, stft.to_dict())
    rank0 = os.environ.get("RANK", "0") == "0"
    if os.path.isfile(os.path.join(exp_dir, "last.pt")):
        # A resume continues the run as it was recorded: never a config (or data) the weights did not see.
        record = check_resume(record, config_path, train_dir, valid_dir, exp_dir)
        if not os.path.isfile(copy):  # lost: the config checked equal to the recorded one
            with datafiles.atomic_write(copy, encoding="utf-8") as dst:
                dst.write(config_text(config_path, overrides, stft))
    else:  # a fresh start: config.yaml and provenance.yaml say what this run is made of
        text = config_text(config_path, overrides, stft)  # read before the write: config_path may be the copy
        with datafiles.atomic_write(copy, encoding="utf-8") as dst:
            dst.write(text)
        if rank0:
            try:
                provenance.write_record(exp_dir, record)
            except OSError as err:
                raise TrainingError(
                    f"{exp_dir}: cannot write {provenance.RECORD} ({err}): free space and run again"
                ) from None
    args = {
        "config": config,
        "train_dir": train_dir,
        "valid_dir": valid_dir,
        "exp_dir": exp_dir,
        "num_threads": num_threads,
        "record": record,
    }
    if ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError(
            "--ngpu > 0 but torch sees no GPU: install a CUDA build of torch "
            "(COCKTAIL_TORCH in setup.sh) or train with --ngpu 0"
        )
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:  # torchrun
        _worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), ngpu, args)
        return config
    world_size = max(num_procs, ngpu, 1)
    if world_size == 1:
        _train(0, 1, ngpu, args)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        run_ranks(_worker, world_size, world_size, ngpu, args)
    return config


def check_resume(record, config_path, train_dir, valid_dir, exp_dir):
    """The recorded provenance of the run in exp_dir if `record` (what this call would train from)
    matches it; else TrainingError naming every key and file that differs."""
    retrain = "train it again with --retrain true (steps/train_chains.sh; it keeps this run in <exp>/old/)"
    try:
        recorded = provenance.read_record(exp_dir)
    except provenance.ProvenanceError as err:
        raise TrainingError(str(err)) from None
    if recorded is None:
        raise TrainingError(
            f"{exp_dir} holds last.pt but no {provenance.RECORD} (started by an older cocktail): what it was "
            f"trained from is unknown: move {exp_dir} aside and train again, or {retrain}"
        )
    configs_differ = provenance.config_differences(recorded["config"], record["config"])
    differences = provenance.training_differences(recorded, record, train_dir, valid_dir)
    if differences:
        data_differ = len(differences) > len(configs_differ)
        what = "config and data" if configs_differ and data_differ else "config" if configs_differ else "data"
        source = f"another config than {config_path}" if configs_differ else "other inputs than it is given now"
        raise TrainingError(
            f"{exp_dir} was trained from {source}: {'; '.join(differences)}: a resume continues the run "
            f"recorded in {exp_dir}/{provenance.RECORD}: restore the {what}, or {retrain}"
        )
    return {k: v for k, v in recorded.items() if k not in ("written", "host")}


def check_exp_dir(exp_dir):
    """Before any training: the experiment dir is writable, and a run without last.pt to resume
    from does not start afresh over the best.pt of an earlier one."""
    try:
        os.makedirs(exp_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=exp_dir):
            pass
    except OSError as err:
        raise TrainingError(
            f"{exp_dir}: cannot write in the experiment directory ({err.strerror}): choose a writable one"
        ) from None
    if os.path.exists(os.path.join(exp_dir, "last.pt")):
        return
    earlier = [n for n in ("best.pt", "history.tsv", ".finished") if os.path.exists(os.path.join(exp_dir, n))]
    if earlier:
        raise TrainingError(
            f"{exp_dir} holds {', '.join(earlier)} of an earlier run but no last.pt to resume "
            f"from: a fresh start would overwrite them; move {exp_dir} aside "
            "(steps/train_chains.sh --retrain true keeps it in <exp>/old/) or restore last.pt"
        )
