"""The training loop of every system (DC, uPIT, chimera++ and the DL-DEF chain): the Trainer, one
code path for CPU, one GPU and several processes (DistributedDataParallel; nnet/launcher.py starts
them). Every epoch ends with last.pt, holding everything needed to resume (model, optimizer,
scheduler, RNG, history), so a resumed run ends with the same weights as an uninterrupted one;
best.pt keeps the weights of the lowest validation loss (nnet/checkpoints.py stores both). For
chimera++ that loss is the MI loss alone (Wang et al. 2018, Sec. 5.1: "although the model is
trained using a combination of deep clustering loss and MI loss, we only use the MI loss during
validation for model selection"); the learning-rate halving and early stopping follow the same
figure. history.tsv has each loss term (dc, mi, ...) per epoch, train and valid, after the fixed
columns. A config's init_from starts the model from another system's weights (nnet/init_from.py).
"""

import math
import os
import sys
import time

import torch
import torch.distributed as dist
from nnet import (
    checkpoints,
    config as configs,
    datafiles,
    dsp,
    features,
    history,
    init_from,
    losses,
    models,
    training_data,
)
from nnet.training_error import TrainingError


def check_same_stft(train_dir, train_stft, valid_dir):
    """Validation features must come from the STFT of the training features (the model, its CMVN and
    its targets are those of train_dir's stft.conf)."""
    valid_stft = features.data_stft(valid_dir)
    if valid_stft != train_stft:
        mine, theirs = valid_stft.to_dict(), train_stft.to_dict()
        differ = ", ".join(
            f"{k}: {v} in {valid_dir}, {theirs[k]} in {train_dir}" for k, v in mine.items() if v != theirs[k]
        )
        raise TrainingError(
            f"{valid_dir}/stft.conf and {train_dir}/stft.conf describe different STFTs ({differ}): the features of "
            "both sets must come from one STFT: re-make the features of one with the other's --stft-conf "
            "(steps/make_feats.sh, stage 2)"
        )


class Trainer:
    def __init__(self, config, train_dir, valid_dir, exp_dir, device, rank=0, world_size=1, record=None):
        self.config, self.exp_dir, self.device = config, exp_dir, device
        self.rank, self.world_size = rank, world_size
        self.record = record  # what this run is made from (nnet/provenance.py), kept in the checkpoints
        self.opts = config["training"]
        self.stft = features.data_stft(train_dir)
        check_same_stft(train_dir, self.stft, valid_dir)
        stats = features.read_cmvn(os.path.join(train_dir, "cmvn"))
        mean, std = features.cmvn_mean_std(stats)
        self.mean, self.std = torch.from_numpy(mean).to(device), torch.from_numpy(std).to(device)
        self.train_set = training_data.SeparationSet(train_dir, self.stft, self.opts["segment_frames"])
        self.valid_set = training_data.SeparationSet(valid_dir, self.stft, None)
        if self.opts["dynamic_mixing"]:  # as many segments (steps) per epoch as the static set
            self.train_set = training_data.DynamicMixingSet(
                os.path.join(train_dir, "sources"),
                self.stft,
                self.opts["segment_frames"],
                self.train_set.num_spk,
                len(self.train_set),
                self.opts["seed"],
            )
        num_spk = config["model"].get("num_spk")
        for data in (self.train_set, self.valid_set):
            if num_spk is not None and data.num_spk != num_spk:  # C sources: masks, permutations, clusters
                raise TrainingError(
                    f"{data.data_dir} has {data.num_spk} references (spk1.scp .. spk{data.num_spk}.scp) but "
                    f"model.num_spk is {num_spk}: set model.num_spk: {data.num_spk} in the config, or train "
                    f"with --num-spk {data.num_spk} (run.sh --num-spk {data.num_spk})"
                )
        num_bins = config["model"].get("num_bins")  # the features' unless the config (or --set) says otherwise
        if num_bins != self.stft.num_bins:  # F: the features' bins follow the sample rate and the STFT
            raise TrainingError(
                f"{train_dir}: its features have {self.stft.num_bins} bins ({self.stft.sample_rate} Hz, "
                f"{self.stft.n_fft}-point FFT) but model.num_bins is {num_bins}: leave model.num_bins out of the "
                f"config (training takes the features') or set it to {self.stft.num_bins}"
            )
        torch.manual_seed(self.opts["seed"])
        self.model = models.build_model(config["model"]).to(device)
        init = configs.init_checkpoint(config, exp_dir)
        if init and not os.path.isfile(os.path.join(exp_dir, "last.pt")):  # a resumed run has its own
            init_from.load_initial_weights(self.model, config["model"], init)
            self.log(f"started from {init} (init_from: {config['init_from']})")
        self.objective = losses.build_objective(config["loss"])
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=self.opts["lr"], weight_decay=self.opts["weight_decay"])
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=self.opts["lr_factor"], patience=self.opts["lr_patience"]
        )
        self.net = self.model
        if world_size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.state = {"epoch": 0, "best_valid": math.inf, "bad_epochs": 0, "history": [], "finished": False}

    # -- one batch ------------------------------------------------------------------------------
    def _forward(self, batch):
        feats, waves, lengths = (t.to(self.device, non_blocking=True) for t in batch)
        spec = dsp.stft(waves, self.stft, center=False)  # (B, 1 + C, T, F)
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
            dataset,
            batch_sampler=batches,
            collate_fn=training_data.collate,
            num_workers=self.opts["num_workers"],
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
        )

    def train_epoch(self, epoch):
        self.net.train()
        if isinstance(self.train_set, training_data.DynamicMixingSet):
            self.train_set.set_epoch(epoch)
        batches = training_data.shuffled_batches(
            len(self.train_set), self.opts["batch_size"], self.opts["seed"], epoch, self.rank, self.world_size
        )
        total, frames, start, terms = 0.0, 0, time.time(), dict.fromkeys(self.objective.terms, 0.0)
        show_progress = self.rank == 0 and sys.stderr.isatty()
        for step, (indices, batch) in enumerate(zip(batches, self._loader(self.train_set, batches)), 1):
            loss, n, stats = self._forward(batch)
            _check_finite(
                loss,
                batch,
                [self.train_set.segments[i][0] for i in indices],
                self.train_set,
                f"epoch {epoch} step {step}",
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.opts["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.opts["grad_clip"])
            self.optimizer.step()
            total += loss.item() * n
            frames += n
            _add_terms(terms, stats, n)
            if show_progress:
                print(
                    f"\repoch {epoch} step {step}/{len(batches)} loss {total / frames:.4f}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        if show_progress:
            print(file=sys.stderr)
        total, frames, terms = self._sum_over_ranks(total, frames, terms)
        return total / frames, frames, time.time() - start, {k: v / frames for k, v in terms.items()}

    @torch.no_grad()
    def validate(self):
        """(model selection loss, {term: mean}) over the validation set: the MI term alone for
        chimera++ (Sec. 5.1), the training objective otherwise."""
        self.net.eval()
        batches = training_data.length_sorted_batches(self.valid_set, self.opts["valid_batch_size"])
        batches = batches[self.rank :: self.world_size]
        total, frames, terms = 0.0, 0, dict.fromkeys(self.objective.terms, 0.0)  # a rank may have no batch
        for indices, batch in zip(batches, self._loader(self.valid_set, batches)):
            loss, n, stats = self._forward(batch)
            _check_finite(loss, batch, [self.valid_set.segments[i][0] for i in indices], self.valid_set, "validation")
            total += loss.item() * n
            frames += n
            _add_terms(terms, stats, n)
        total, frames, terms = self._sum_over_ranks(total, frames, terms)
        terms = {k: v / max(frames, 1) for k, v in terms.items()}
        selection = terms["mi"] if self.objective.selects_on == "mi" else total / max(frames, 1)
        return selection, terms

    def _sum_over_ranks(self, total, frames, terms):
        if self.world_size == 1:
            return total, frames, terms
        names = list(terms)  # the objective's terms, the same on every rank
        sums = torch.tensor([total, float(frames)] + [terms[k] for k in names], dtype=torch.float64, device=self.device)
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
            "cmvn_mean": self.mean.cpu(),
            "cmvn_std": self.std.cpu(),
            "stft": self.stft.to_dict(),
            "config": self.config,
            **({"provenance": self.record} if self.record is not None else {}),
            **self.state,
            "history": [row.saved() for row in self.state["history"]],
        }

    def resume(self, path):
        ckpt = checkpoints.load(path, self.device, self.exp_dir)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["cpu_rng"].cpu())
        if self.device.type == "cuda" and ckpt["cuda_rng"]:
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["cuda_rng"]])
        self.state = {k: ckpt[k] for k in self.state}
        self.state["history"] = [history.Epoch.from_saved(row) for row in ckpt["history"]]

    def save(self, improved):
        """last.pt, best.pt when improved (nnet/checkpoints.py), then history.tsv and loss.png."""
        checkpoints.save(self.exp_dir, self.checkpoint(), improved)
        write_history(self.exp_dir, self.state["history"])

    def check_best_pt(self):
        """best.pt holds the best epoch of last.pt's history, or is repaired (checkpoints.check_best)."""
        repaired = checkpoints.check_best(self.exp_dir, self.state["history"], self.state["epoch"], self.checkpoint)
        if repaired:
            self.log(repaired)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, after_epoch=None):
        """Train until the epochs or early stopping end it. after_epoch(trainer), when given, is
        called once each epoch is saved; a true result stops the training there, unfinished
        (bench/learning_curve.py scores the test set after each epoch and stops at its budget)."""
        last = os.path.join(self.exp_dir, "last.pt")
        if os.path.isfile(last):
            self.resume(last)
            self.log(f"resumed from {last} after epoch {self.state['epoch']}")
            if self.rank == 0:
                self.check_best_pt()
        if self.state["finished"]:
            self.log("training had already finished; nothing to do")
            if self.rank == 0:  # a failed write may have left it behind last.pt
                write_history(self.exp_dir, self.state["history"])
            self._mark_finished()
            return
        self.log(
            f"{sum(p.numel() for p in self.model.parameters())} parameters, "
            f"{len(self.train_set)} training segments, {len(self.valid_set)} validation utterances, "
            f"device {self.device}, {self.world_size} process(es) x {torch.get_num_threads()} CPU thread(s)"
        )
        while self.state["epoch"] < self.opts["epochs"]:
            epoch = self.state["epoch"] + 1
            train_loss, frames, seconds, train_terms = self.train_epoch(epoch)
            valid_loss, valid_terms = self.validate()
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step(valid_loss)
            if 0 < self.opts["lr_decay_from"] <= epoch:  # a fixed budget's annealing, on top of the plateau rule
                for group in self.optimizer.param_groups:
                    group["lr"] *= self.opts["lr_factor"]
            improved = valid_loss < self.state["best_valid"]
            self.state["best_valid"] = min(valid_loss, self.state["best_valid"])
            self.state["bad_epochs"] = 0 if improved else self.state["bad_epochs"] + 1
            self.state["epoch"] = epoch
            terms = {f"train_{k}": v for k, v in train_terms.items()}
            terms |= {f"valid_{k}": v for k, v in valid_terms.items()}
            self.state["history"].append(
                history.Epoch(epoch, train_loss, valid_loss, lr, seconds, frames / seconds, terms)
            )
            stop = self.state["bad_epochs"] >= self.opts["early_stop_patience"]
            self.state["finished"] = stop or epoch >= self.opts["epochs"]
            term_text = "".join(f" {k} {v:.4f}" for k, v in terms.items())
            self.log(
                f"epoch {epoch} train_loss {train_loss:.4f} valid_loss {valid_loss:.4f}"
                + (" (mi alone: model selection)" if self.objective.selects_on == "mi" else "")
                + f" lr {lr:.2e} seconds {seconds:.1f} frames_per_s {frames / seconds:.0f}{term_text}"
                + (" *best*" if improved else "")
            )
            if self.rank == 0:
                self.save(improved)
            if after_epoch is not None and after_epoch(self) and not stop:
                self.log(f"stopped after epoch {epoch} by the caller")
                return
            if stop:
                self.log(f"early stop: no better validation loss for {self.state['bad_epochs']} epochs")
                break
        self.log(f"done: best validation loss {self.state['best_valid']:.4f}")
        if self.state["finished"]:
            self._mark_finished()

    def _mark_finished(self):
        """run.sh's stage 3 skips a system with this marker; an interrupted one resumes instead."""
        if self.rank == 0:
            with datafiles.atomic_write(os.path.join(self.exp_dir, ".finished")) as f:
                f.write(f"epoch {self.state['epoch']} best_valid {self.state['best_valid']:.6f}\n")

    def log(self, message):
        if self.rank == 0:
            print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} train.py: {message}", flush=True)


def _add_terms(terms, stats, weight):
    """Accumulate the objective's per-term stats (Objective.terms) weighted by frames."""
    for key in terms:
        terms[key] += stats[key] * weight


def _check_finite(loss, batch, utts, dataset, where):
    """Stop on a non-finite loss, naming the batch's utterances; blame the inputs when they are
    not finite (no learning rate fixes NaN features), the learning rate only when they are."""
    if torch.isfinite(loss):
        return
    feats, waves, _ = batch
    scp = os.path.join(dataset.data_dir, "feats.scp")
    bad_feats = [u for u, f in zip(utts, feats) if not torch.isfinite(f).all()]
    bad_waves = [u for u, w in zip(utts, waves) if not torch.isfinite(w).all()]
    if bad_feats:
        raise TrainingError(
            f"{where}: the loss is {loss.item()}: the features of utterance(s) {_quoted(bad_feats)} "
            f"of {scp} hold NaN or inf: re-create them (steps/make_feats.sh, stage 2) or "
            "remove the utterance(s) from the data dir (utils/subset_data_dir.py)"
        )
    if bad_waves:
        raise TrainingError(
            f"{where}: the loss is {loss.item()}: the waveforms of utterance(s) "
            f"{_quoted(bad_waves)} (wav.scp, spk*.scp of {dataset.data_dir}) hold NaN or inf: "
            "fix or remove those files"
        )
    raise TrainingError(
        f"{where}: the loss is {loss.item()} on utterance(s) {_quoted(utts)} of {scp}; their "
        "features are finite: lower training.lr or training.grad_clip (e.g. 1.0) in the config"
    )


def _quoted(utts):
    return ", ".join(f"'{u}'" for u in dict.fromkeys(utts))


def write_history(exp_dir, rows):
    try:
        history.write(exp_dir, rows)
    except OSError as err:
        raise TrainingError(
            f"{exp_dir}: cannot write history.tsv or loss.png ({err.strerror}): is the disk full "
            "or the directory read-only? Free space and run again"
        ) from None
