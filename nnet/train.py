"""The training loop of every system: DC, uPIT, chimera++ and the DL-DEF chain.

One code path for CPU, one GPU and several processes (DistributedDataParallel, launched by
torchrun or spawned here). Every epoch ends with an atomic `last.pt` holding everything needed to
resume (model, optimizer, scheduler, RNG, history); a resumed run ends with the same weights as an
uninterrupted one. `best.pt` keeps the weights of the lowest validation loss, which for chimera++
is the MI loss alone (Wang et al. 2018, Sec. 5.1: "although the model is trained using a
combination of deep clustering loss and MI loss, we only use the MI loss during validation for
model selection"); the learning-rate halving and early stopping follow the same figure.
history.tsv has each loss term (dc, mi, ...) per epoch, train and valid, after the fixed columns.
"""
import math
import os
import shutil
import socket
import sys
import time

import torch
import torch.distributed as dist
import yaml

from nnet import data, features, io, losses, models, signal

TRAINING_DEFAULTS = {
    "segment_frames": 400,    # training segment length in frames (the seeds: 400)
    "batch_size": 32,         # segments per step (per process under DDP)
    "valid_batch_size": 8,    # whole utterances per validation step
    "epochs": 100,            # upper bound; early stopping usually ends sooner
    "optimizer": "adam",
    "lr": 1.0e-3,
    "weight_decay": 0.0,
    "lr_factor": 0.5,         # the learning rate is multiplied by this ...
    "lr_patience": 2,         # ... after this many epochs without a better validation loss
    "early_stop_patience": 6, # stop after this many epochs without a better validation loss
    "grad_clip": 5.0,         # max global gradient norm (0: off)
    "num_workers": 2,         # data loader processes
    "seed": 777,
    "amp": False,             # bf16 autocast on GPU (ignored on CPU)
    "num_threads": 0,         # torch CPU threads per process (0: cores / processes)
}


def load_config(path):
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    for section in ("model", "loss"):
        if not isinstance(config.get(section), dict):
            raise ValueError(f"{path}: missing section '{section}:'")
    unknown = set(config.get("training") or {}) - set(TRAINING_DEFAULTS)
    if unknown:
        raise ValueError(f"{path}: unknown training keys {sorted(unknown)}; known: {sorted(TRAINING_DEFAULTS)}")
    config["training"] = {**TRAINING_DEFAULTS, **(config.get("training") or {})}
    return config


def stft_config_of(data_dir, sample_rate):
    conf = os.path.join(data_dir, "stft.conf")  # written by steps/make_feats.sh
    return signal.read_stft_conf(conf if os.path.isfile(conf) else None, sample_rate)


def first_sample_rate(data_dir):
    path = next(iter(io.read_table(os.path.join(data_dir, "wav.scp")).values()))
    return io.read_wav(path)[1]


class Trainer:
    def __init__(self, config, train_dir, valid_dir, exp_dir, device, rank=0, world_size=1, init=None):
        self.config, self.exp_dir, self.device = config, exp_dir, device
        self.rank, self.world_size = rank, world_size
        self.opts = config["training"]
        rate = first_sample_rate(train_dir)
        self.stft = stft_config_of(train_dir, rate)
        stats = features.read_cmvn(os.path.join(train_dir, "cmvn"))
        mean, std = features.cmvn_mean_std(stats)
        self.mean, self.std = torch.from_numpy(mean).to(device), torch.from_numpy(std).to(device)
        self.train_set = data.SeparationSet(train_dir, self.stft, self.opts["segment_frames"])
        self.valid_set = data.SeparationSet(valid_dir, self.stft, None)
        torch.manual_seed(self.opts["seed"])
        self.model = models.build_model(config["model"]).to(device)
        if init:
            load_initial_weights(self.model, config["model"], init)
        self.objective = losses.build_objective(config["loss"])
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.opts["lr"], weight_decay=self.opts["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=self.opts["lr_factor"], patience=self.opts["lr_patience"])
        self.net = self.model
        if world_size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.state = {"epoch": 0, "best_valid": math.inf, "bad_epochs": 0, "history": [], "finished": False}

    # -- one batch ------------------------------------------------------------------------------
    def _forward(self, batch):
        feats, waves, lengths = (t.to(self.device, non_blocking=True) for t in batch)
        spec = signal.stft(waves, self.stft, center=False)  # (B, 1 + C, T, F)
        valid = torch.arange(feats.shape[1], device=self.device)[None, :] < lengths[:, None]
        targets = {"mix_spec": spec[:, 0], "src_spec": spec[:, 1:], "lengths": lengths, "valid": valid}
        normalized = (feats - self.mean) / self.std * valid[..., None]
        use_amp = self.opts["amp"] and self.device.type == "cuda"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
            outputs = self.net(normalized, lengths.cpu())
        outputs = {k: v.float() for k, v in outputs.items()}
        loss, stats = self.objective(outputs, targets)
        return loss, int(lengths.sum()), stats

    def _loader(self, dataset, batches):
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=batches, collate_fn=data.collate,
            num_workers=self.opts["num_workers"], pin_memory=self.device.type == "cuda",
            persistent_workers=False)

    def train_epoch(self, epoch):
        self.net.train()
        batches = data.shuffled_batches(len(self.train_set), self.opts["batch_size"], self.opts["seed"],
                                        epoch, self.rank, self.world_size)
        total, frames, start, terms = 0.0, 0, time.time(), dict.fromkeys(self.objective.terms, 0.0)
        show_progress = self.rank == 0 and sys.stderr.isatty()
        for step, batch in enumerate(self._loader(self.train_set, batches), 1):
            loss, n, stats = self._forward(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{self.exp_dir}: epoch {epoch} step {step}: loss is {loss.item()}; "
                                         "lower training.lr or raise training.grad_clip's strictness")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.opts["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts["grad_clip"])
            self.optimizer.step()
            total += loss.item() * n
            frames += n
            _add_terms(terms, stats, n)
            if show_progress:
                print(f"\repoch {epoch} step {step}/{len(batches)} loss {total / frames:.4f}",
                      end="", file=sys.stderr, flush=True)
        if show_progress:
            print(file=sys.stderr)
        total, frames, terms = self._sum_over_ranks(total, frames, terms)
        return total / frames, frames, time.time() - start, {k: v / frames for k, v in terms.items()}

    @torch.no_grad()
    def validate(self):
        """(model selection loss, {term: mean}) over the validation set: the MI term alone for
        chimera++ (Sec. 5.1), the training objective otherwise."""
        self.net.eval()
        batches = data.length_sorted_batches(self.valid_set, self.opts["valid_batch_size"])
        batches = batches[self.rank::self.world_size]
        total, frames, terms = 0.0, 0, dict.fromkeys(self.objective.terms, 0.0)  # a rank may have no batch
        for batch in self._loader(self.valid_set, batches):
            loss, n, stats = self._forward(batch)
            total += loss.item() * n
            frames += n
            _add_terms(terms, stats, n)
        total, frames, terms = self._sum_over_ranks(total, frames, terms)
        terms = {k: v / max(frames, 1) for k, v in terms.items()}
        selection = terms["mi"] if self.objective.kind == "chimera" else total / max(frames, 1)
        return selection, terms

    def _sum_over_ranks(self, total, frames, terms):
        if self.world_size == 1:
            return total, frames, terms
        names = list(terms)  # the objective's terms, the same on every rank
        sums = torch.tensor([total, float(frames)] + [terms[k] for k in names], dtype=torch.float64,
                            device=self.device)
        dist.all_reduce(sums)
        return sums[0].item(), int(sums[1].item()), dict(zip(names, sums[2:].tolist()))

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "cpu_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "cmvn_mean": self.mean.cpu(), "cmvn_std": self.std.cpu(),
            "stft": self.stft.to_dict(),
            "config": self.config,
            **self.state,
        }

    def resume(self, path):
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["cpu_rng"].cpu())
        if self.device.type == "cuda" and ckpt["cuda_rng"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["cuda_rng"]])
        self.state = {k: ckpt[k] for k in self.state}

    def save(self, improved):
        ckpt = self.checkpoint()
        save_atomic(ckpt, os.path.join(self.exp_dir, "last.pt"))
        if improved:
            best = {k: ckpt[k] for k in ("model", "cmvn_mean", "cmvn_std", "stft", "config", "epoch")}
            save_atomic(best, os.path.join(self.exp_dir, "best.pt"))
        write_history(self.exp_dir, self.state["history"])

    # -- the loop -------------------------------------------------------------------------------
    def run(self):
        last = os.path.join(self.exp_dir, "last.pt")
        if os.path.isfile(last):
            self.resume(last)
            self.log(f"resumed from {last} after epoch {self.state['epoch']}")
        if self.state["finished"]:
            self.log("training had already finished; nothing to do")
            self._mark_finished()
            return
        self.log(f"{sum(p.numel() for p in self.model.parameters())} parameters, "
                 f"{len(self.train_set)} training segments, {len(self.valid_set)} validation utterances, "
                 f"device {self.device}, {self.world_size} process(es) x {torch.get_num_threads()} CPU thread(s)")
        while self.state["epoch"] < self.opts["epochs"]:
            epoch = self.state["epoch"] + 1
            train_loss, frames, seconds, train_terms = self.train_epoch(epoch)
            valid_loss, valid_terms = self.validate()
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step(valid_loss)
            improved = valid_loss < self.state["best_valid"]
            self.state["best_valid"] = min(valid_loss, self.state["best_valid"])
            self.state["bad_epochs"] = 0 if improved else self.state["bad_epochs"] + 1
            self.state["epoch"] = epoch
            self.state["history"].append([epoch, train_loss, valid_loss, lr, seconds, frames / seconds,
                                          {f"train_{k}": v for k, v in train_terms.items()}
                                          | {f"valid_{k}": v for k, v in valid_terms.items()}])
            stop = self.state["bad_epochs"] >= self.opts["early_stop_patience"]
            self.state["finished"] = stop or epoch >= self.opts["epochs"]
            term_text = "".join(f" {k} {v:.4f}" for k, v in self.state["history"][-1][6].items())
            self.log(f"epoch {epoch} train_loss {train_loss:.4f} valid_loss {valid_loss:.4f}"
                     + (" (mi alone: model selection)" if self.objective.kind == "chimera" else "")
                     + f" lr {lr:.2e} seconds {seconds:.1f} frames_per_s {frames / seconds:.0f}{term_text}"
                     + (" *best*" if improved else ""))
            if self.rank == 0:
                self.save(improved)
            if stop:
                self.log(f"early stop: no better validation loss for {self.state['bad_epochs']} epochs")
                break
        self.log(f"done: best validation loss {self.state['best_valid']:.4f}")
        if self.state["finished"]:
            self._mark_finished()

    def _mark_finished(self):
        """run.sh's stage 3 skips a system with this marker; an interrupted one resumes instead."""
        if self.rank == 0:
            with io.atomic_write(os.path.join(self.exp_dir, ".finished")) as f:
                f.write(f"epoch {self.state['epoch']} best_valid {self.state['best_valid']:.6f}\n")

    def log(self, message):
        if self.rank == 0:
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} train.py: {message}", flush=True)


def load_initial_weights(model, model_config, path):
    """Start from another system's weights along the DL-DEF chain: a DC checkpoint goes into the
    DC part of a DEF model; a checkpoint of the same model type is loaded whole."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    source_type = ckpt["config"]["model"]["type"]
    if model_config["type"] == "def" and source_type == "dc":
        model.dc.load_state_dict(ckpt["model"])
    elif source_type == model_config["type"]:
        model.load_state_dict(ckpt["model"])
    else:
        raise ValueError(f"{path}: a '{source_type}' model cannot initialize a '{model_config['type']}' "
                         "model (the chain is dc -> def -> def (joint) -> def (discriminative))")


def _add_terms(terms, stats, weight):
    """Accumulate the objective's per-term stats (Objective.terms) weighted by frames."""
    for key in terms:
        terms[key] += stats[key] * weight


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_history(exp_dir, history):
    with io.atomic_write(os.path.join(exp_dir, "history.tsv")) as f:
        names = list(history[-1][6]) if history and len(history[-1]) > 6 else []
        f.write("\t".join(["epoch", "train_loss", "valid_loss", "lr", "seconds", "frames_per_s"] + names) + "\n")
        for epoch, train, valid, lr, seconds, fps, *terms in history:
            extra = "".join(f"\t{terms[0].get(k, math.nan):.6f}" for k in names) if terms else ""
            f.write(f"{epoch}\t{train:.6f}\t{valid:.6f}\t{lr:.3e}\t{seconds:.2f}\t{fps:.1f}{extra}\n")
    plot_history(exp_dir, history)


def plot_history(exp_dir, history):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [row[0] for row in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [row[1] for row in history], "o-", label="train")
    ax.plot(epochs, [row[2] for row in history], "s-", label="valid")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(os.path.basename(os.path.abspath(exp_dir)))
    ax.legend()
    ax.grid(alpha=0.3)
    tmp = os.path.join(exp_dir, ".loss.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, os.path.join(exp_dir, "loss.png"))


# -- process setup -----------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, ngpu, args):
    if world_size > 1:
        dist.init_process_group("nccl" if ngpu > 0 else "gloo", rank=rank, world_size=world_size)
    try:
        _train(rank, world_size, ngpu, args)
        if world_size > 1:
            # Rank 0 still writes checkpoints after the others leave the loop; a peer that tears
            # down its gloo pairs meanwhile can abort (seen once in CI: "terminate called without
            # an active exception", SIGABRT in rank 1). All ranks leave together on success.
            dist.barrier()
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def _train(rank, world_size, ngpu, args):
    config = load_config(args["config"])
    opts = config["training"]
    threads = args.get("num_threads") or opts["num_threads"] or max(1, (os.cpu_count() or 1) // world_size)
    torch.set_num_threads(threads)
    if ngpu > 0:
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    Trainer(config, args["train_dir"], args["valid_dir"], args["exp_dir"], device, rank, world_size,
            args.get("init")).run()


def train(config_path, train_dir, valid_dir, exp_dir, ngpu=0, num_procs=1, init=None, num_threads=0):
    """Train into exp_dir (resuming from its last.pt). num_procs > 1 runs DDP: one process per GPU
    when ngpu > 0, else CPU processes over gloo. Under torchrun the environment decides.
    num_threads > 0 overrides the config's training.num_threads (the recipe's share of the cores)."""
    os.makedirs(exp_dir, exist_ok=True)
    config = load_config(config_path)
    copy = os.path.join(exp_dir, "config.yaml")
    if os.path.abspath(config_path) != os.path.abspath(copy):
        with open(config_path, encoding="utf-8") as src, io.atomic_write(copy) as dst:
            shutil.copyfileobj(src, dst)
    args = {"config": copy, "train_dir": train_dir, "valid_dir": valid_dir, "exp_dir": exp_dir, "init": init,
            "num_threads": num_threads}
    if ngpu > 0 and not torch.cuda.is_available():
        raise RuntimeError("--ngpu > 0 but torch sees no GPU: install a CUDA build of torch "
                           "(COCKTAIL_TORCH in setup.sh) or train with --ngpu 0")
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:  # torchrun
        _worker(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), ngpu, args)
        return config
    world_size = max(num_procs, ngpu, 1)
    if world_size == 1:
        _train(0, 1, ngpu, args)
    else:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
        torch.multiprocessing.spawn(_worker, args=(world_size, ngpu, args), nprocs=world_size, join=True)
    return config
