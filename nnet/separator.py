"""Separation with a trained system: masks from the MI head, or from k-means on the DC embeddings
(optionally refined by matched run-time inference), then phase from the mixture, Griffin-Lim or
MISI. The same code runs on CPU and GPU.
"""

import itertools

import numpy as np
import torch

from nnet import config as configs, dsp, inference, losses, models, pack

PHASES = ("mixture", "griffin-lim", "misi")
HEADS = ("mi", "dc")


class Separator:
    """A trained system loaded from <exp-dir>/best.pt or a model pack (weights, CMVN, STFT and config
    travel in best.pt; nnet/pack.py). head, phase, matched_inference and matched_steps left None take a
    pack's meta.yaml (or an unpacked pack's), else the code's defaults (the MI head when the model has one,
    mixture phase, k-means alone); the pack's matched inference only with the pack's own head."""

    def __init__(
        self,
        exp_dir,
        device="cpu",
        head=None,
        phase=None,
        iters=inference.MISI_ITERATIONS,
        matched_inference=None,
        checkpoint="best.pt",
        matched_steps=None,
        noise_source=False,
    ):
        ckpt, meta = pack.load_system(exp_dir, checkpoint)
        meta = meta or {}  # an exp dir has no meta.yaml: every default is the code's
        self.device = torch.device(device)
        self.config = ckpt["config"]
        self.model = models.build_model(self.config["model"]).to(self.device).eval()
        self.model.load_state_dict(ckpt["model"])
        self.stft = dsp.StftConfig(**ckpt["stft"])
        self.mean = ckpt["cmvn_mean"].to(self.device)
        self.std = ckpt["cmvn_std"].to(self.device)
        kind = self.config["model"]["type"]
        has = configs.MODELS[kind].heads
        # unless told otherwise: what a pack's meta.yaml says, else the MI head when there is one
        self.head = head or meta.get("head") or has[0]
        phase = phase or meta.get("phase") or "mixture"
        # a pack's matched inference refines its own head's k-means: another --head gets k-means alone
        if matched_inference is None:
            matched_inference = bool(meta.get("matched_inference")) and self.head == meta.get("head")
        if matched_steps is None:
            matched_steps = meta.get("matched_steps", inference.MATCHED_STEPS)
        problem = configs.inference_problem(kind, self.head, matched_inference, matched_steps)
        if problem:
            raise ValueError(f"{exp_dir}: {problem}")
        if phase not in PHASES:
            raise ValueError(f"unknown phase '{phase}': use one of {', '.join(PHASES)}")
        if iters < 0 or (phase != "mixture" and iters < 1):  # 0 iterations would leave the mixture phase
            raise ValueError(
                f"--iters {iters}: the {phase} phase needs 1 or more iterations (Wang et al. use 5)"
                if phase != "mixture"
                else f"--iters {iters}: iterations must be 0 or more"
            )
        self.phase, self.iters, self.matched = phase, iters, matched_inference
        # the mixture holds noise besides the speakers: MISI gives it a source of its own
        self.noise_source = noise_source
        self.matched_steps = matched_steps
        self.num_spk = self.config["model"].get("num_spk", models.DEFAULT_NUM_SPK)

    @property
    def sample_rate(self):
        return self.stft.sample_rate

    def summary(self):
        """What the options and a pack's meta.yaml resolved to, e.g. "mi head, griffin-lim phase": the log
        line of separate.py and the record of a separated dir (utils/separation_jobs.sh)."""
        refined = f" + {self.matched_steps} steps of matched inference" if self.matched else ""
        noise = " (+ a noise source)" if self.noise_source and self.phase == "misi" else ""
        return f"{self.head} head{refined}, {self.phase} phase{noise}"

    @torch.no_grad()
    def _network(self, mix_spec):
        feats = dsp.log_magnitude(mix_spec)[None]
        lengths = torch.tensor([feats.shape[1]])
        return self.model((feats - self.mean) / self.std, lengths)

    def masks(self, mix_spec):
        """(T, F) complex mixture STFT -> (C, T, F) masks."""
        outputs = self._network(mix_spec)
        if self.head == "mi":
            return outputs["masks"][0]
        emb = outputs["emb"].flatten(1, 2)  # (1, T*F, D)
        valid = torch.ones(1, mix_spec.shape[0], dtype=torch.bool, device=self.device)
        # only bins within 40 dB of the mixture's loudest vote: W_VA's run-time stand-in
        voting = losses.mixture_activity(mix_spec[None], valid).flatten(1)
        labels, _ = inference.kmeans(emb, self.num_spk, weights=voting)
        assignment = torch.nn.functional.one_hot(labels, self.num_spk).to(emb.dtype)
        if self.matched:
            loss_cfg = self.config["loss"]
            kind = loss_cfg.get("dc_weights", "none")
            # the training weights; W_VA needs the clean sources, so its mixture stand-in here
            weights = voting if kind == "va" else losses.dc_weights(mix_spec[None], None, valid, kind).flatten(1)
            assignment = inference.matched_inference(
                emb,
                labels,
                weights,
                loss_cfg.get("dc_objective", "classic"),
                steps=self.matched_steps,
                num_clusters=self.num_spk,
            )
        return assignment[0].T.reshape(self.num_spk, *mix_spec.shape)

    def separate(self, mixture):
        """(samples,) float array at self.sample_rate -> (C, samples) float32 estimates."""
        mix = torch.as_tensor(np.asarray(mixture, dtype=np.float32), device=self.device)
        mix_spec = dsp.stft(mix, self.stft)
        masks = self.masks(mix_spec).float()
        length = mix.shape[-1]
        if self.phase == "mixture":
            estimates = dsp.istft(masks * mix_spec, self.stft, length)
        elif self.phase == "griffin-lim":
            estimates = inference.griffin_lim(masks * mix_spec.abs(), self.stft, length, self.iters, init_spec=mix_spec)
        else:
            estimates = inference.misi(
                mix_spec, masks * mix_spec.abs(), self.stft, length, self.iters, noise_source=self.noise_source
            )
        return estimates.cpu().numpy()


def add_options(parser):
    """The separation options of nnet.bin.separate and nnet.bin.separate_wav; unset ones take a pack's
    meta.yaml (Separator), so that a pack separates as it was scored unless told otherwise."""
    parser.add_argument("--head", choices=HEADS, help="default: a pack's (meta.yaml), else mi when the model has it")
    parser.add_argument("--phase", choices=PHASES, help="default: a pack's (meta.yaml), else mixture")
    parser.add_argument("--iters", type=int, default=inference.MISI_ITERATIONS, help="Griffin-Lim / MISI iterations")
    parser.add_argument(
        "--matched-inference",
        choices=("true", "false"),
        help="refine k-means (dc head) by matched run-time inference (default: a pack's, else false)",
    )
    parser.add_argument(
        "--matched-steps",
        type=int,
        help=f"its Adam steps (default: a pack's, else {inference.MATCHED_STEPS}; the paper gives no number)",
    )


def options_of(args):
    """Separator's keyword arguments from the options of add_options()."""
    matched = None if args.matched_inference is None else args.matched_inference == "true"
    return dict(
        head=args.head, phase=args.phase, iters=args.iters, matched_inference=matched, matched_steps=args.matched_steps
    )


def separate_in_chunks(separate, mixture, chunk, overlap):
    """Separate a long recording chunk by chunk, so that memory stays bounded by the chunk length.

    separate: (samples,) -> (C, samples) estimates of one chunk. Chunks of `chunk` samples start
    every chunk - overlap samples. Each chunk's sources come out in an arbitrary order (the
    permutation problem, across chunks), so chunk k+1's order is the one whose estimates correlate
    best with chunk k's over the `overlap` samples both cover; there the two are cross-faded
    linearly. A recording no longer than one chunk is separated whole.
    """
    mixture = np.asarray(mixture)
    total = len(mixture)
    if chunk <= 0 or total <= chunk:
        return separate(mixture)
    if not 0 < overlap < chunk:
        raise ValueError(f"the overlap ({overlap} samples) must be above 0 and below the chunk ({chunk} samples)")
    hop = chunk - overlap
    out = None
    for start in range(0, total - overlap, hop):
        est = np.asarray(separate(mixture[start : start + chunk]), dtype=np.float64)
        if out is None:  # float32, the estimates' own precision: half the memory of the whole output
            out = np.zeros((est.shape[0], total), dtype=np.float32)
            out[:, : est.shape[1]] = est
            continue
        shared = out[:, start : start + overlap]  # the previous chunk's estimates over the overlap
        n = shared.shape[1]

        def agreement(order):
            return sum(_correlation(shared[c], est[p, :n]) for c, p in enumerate(order))

        est = est[list(max(itertools.permutations(range(est.shape[0])), key=agreement))]
        fade = np.linspace(0.0, 1.0, n + 2)[1:-1]  # neither end weighs 0 or 1 twice
        out[:, start : start + n] = shared * (1 - fade) + est[:, :n] * fade
        out[:, start + n : start + est.shape[1]] = est[:, n:]
    return out


def _correlation(a, b):
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0
