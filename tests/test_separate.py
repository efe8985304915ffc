"""Separation with trained systems: steps/separate.sh (nj independence, heads, phases) and
separate_wav.py on a recording of another sample rate."""

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import yaml

from nnet import datafiles, dsp, inference, losses
from nnet.pack import PackError
from nnet.separator import Separator, separate_in_chunks
from synth import make_featured_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny chimera++ trained for two epochs on synthetic data, and a test data dir."""
    root = tmp_path_factory.mktemp("sep")
    dirs = {}
    for name, count, seed in (("tr", 4, 0), ("cv", 2, 1), ("tt", 3, 2)):
        dirs[name] = make_featured_data_dir(root / name, num_utts=count, seed=seed, seconds=(0.8, 1.1))
    config = {
        "model": {
            "type": "chimera",
            "num_bins": 129,
            "num_spk": 2,
            "layers": 1,
            "units": 16,
            "emb_dim": 8,
            "mask_activation": "sigmoid",
        },
        "loss": {
            "type": "chimera",
            "dc_objective": "classic",
            "dc_weights": "mr",
            "mi_target": "tpsa",
            "mi_norm": "l1",
            "alpha": 0.5,
        },
        "training": {"segment_frames": 50, "batch_size": 4, "epochs": 2, "num_workers": 0, "num_threads": 1},
    }
    (root / "c.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            PYTHON,
            os.path.join(ROOT, "nnet/bin/train.py"),
            str(root / "c.yaml"),
            dirs["tr"],
            dirs["cv"],
            str(root / "exp"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return root / "exp", dirs["tt"]


def separate_dir(exp, data, out, *options):
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), *options, str(exp), data, str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    return {
        c: {utt: datafiles.read_wav(path)[0] for utt, path in datafiles.read_table(out / f"spk{c}.scp").items()}
        for c in (1, 2)
    }


def failed_separation(exp, data, out, *options):
    """Runs separate.sh (one job) expecting it to fail: no spk1.scp; returns its jobs' logs and its stderr."""
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), "--nj", "1", *options, str(exp), str(data), str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert not (out / "spk1.scp").exists()
    return "".join(p.read_text() for p in (out / "log").glob("*.log")), run.stderr


@pytest.mark.parametrize("options", [(), ("--head", "dc", "--matched-inference", "true"), ("--phase", "misi")])
def test_nj_does_not_change_the_wavs(tmp_path, trained, options):
    exp, data = trained
    one = separate_dir(exp, data, tmp_path / "nj1", "--nj", "1", *options)
    two = separate_dir(exp, data, tmp_path / "nj2", "--nj", "2", *options)
    utts = list(datafiles.read_table(os.path.join(data, "wav.scp")))
    for c in (1, 2):
        assert list(one[c]) == list(two[c]) == utts
        for utt in utts:
            mix = datafiles.read_wav(datafiles.read_table(os.path.join(data, "wav.scp"))[utt])[0]
            assert one[c][utt].shape == mix.shape
            np.testing.assert_array_equal(one[c][utt], two[c][utt])


def test_misi_estimates_sum_to_the_mixture(trained):
    exp, data = trained
    separator = Separator(str(exp), phase="misi", iters=3)
    utt, path = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).items()))
    mix, _ = datafiles.read_wav(path)
    estimates = separator.separate(mix)
    assert estimates.shape == (2, len(mix))
    np.testing.assert_allclose(estimates.sum(0), mix, atol=1e-5)


def test_mi_masks_and_dc_head_masks_are_valid(trained):
    exp, data = trained
    mix, _ = datafiles.read_wav(next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values())))
    for head in ("mi", "dc"):
        separator = Separator(str(exp), head=head)
        masks = separator.masks(dsp.stft(torch.from_numpy(mix), separator.stft))
        assert masks.shape[0] == 2 and masks.min() >= 0
        if head == "dc":  # hard k-means assignment: one source per bin
            assert torch.equal(masks.sum(0), torch.ones_like(masks[0]))


def test_matched_steps_reach_the_matched_inference(tmp_path, trained):
    """--matched-steps is the number of Adam steps: the DC head's masks equal matched_inference's with
    that many steps (here one that differs from the default), and separate.sh passes it on."""
    exp, data = trained
    mix, _ = datafiles.read_wav(next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values())))
    plain = Separator(str(exp), head="dc")
    mix_spec = dsp.stft(torch.from_numpy(mix), plain.stft)
    emb = plain._network(mix_spec)["emb"].flatten(1, 2)
    valid = torch.ones(1, mix_spec.shape[0], dtype=torch.bool)
    voting = losses.mixture_activity(mix_spec[None], valid).flatten(1)
    labels, _ = inference.kmeans(emb, 2, weights=voting)
    weights = losses.dc_weights(mix_spec[None], None, valid, "mr").flatten(1)  # the model's W_MR
    by_steps = {
        steps: inference.matched_inference(emb, labels, weights, "classic", steps=steps, num_clusters=2)
        for steps in (3, inference.MATCHED_STEPS)
    }
    assert not torch.equal(by_steps[3], by_steps[inference.MATCHED_STEPS])  # the count matters here
    for steps, expected in by_steps.items():
        separator = Separator(str(exp), head="dc", matched_inference=True, matched_steps=steps)
        masks = separator.masks(mix_spec)
        torch.testing.assert_close(masks, expected[0].T.reshape(2, *mix_spec.shape))
    with pytest.raises(ValueError, match="matched run-time inference steps must be 0 or more, got -1"):
        Separator(str(exp), head="dc", matched_inference=True, matched_steps=-1)
    separate_dir(exp, data, tmp_path / "out", "--nj", "1", "--variant", "rti", "--matched-steps", "3")
    log = (tmp_path / "out" / "log" / "separate.1.log").read_text()
    assert "--matched-steps 3" in log and "dc head + 3 steps of matched inference" in log


def test_wrong_head_and_missing_model_are_errors(tmp_path, trained):
    exp, data = trained
    with pytest.raises(FileNotFoundError, match="best.pt not found: train the system first"):
        Separator(str(tmp_path))
    with pytest.raises(ValueError, match="matched run-time inference refines k-means on the DC head"):
        Separator(str(exp), head="mi", matched_inference=True)
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), str(tmp_path / "none"), data, str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "best.pt not found" in run.stderr
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate.sh"), "--variant", "rtii", str(exp), data, str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0 and "--variant 'rtii': use rti, gl or misi" in run.stderr
    assert not (tmp_path / "out").exists()


def test_separate_wav_resamples_another_rate(tmp_path, trained):
    """A 16 kHz recording through an 8 kHz model: dsp.resample there and back, the input's length."""
    exp, data = trained
    mix8k, rate = datafiles.read_wav(next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values())))
    datafiles.write_wav(tmp_path / "talk.wav", dsp.resample(mix8k, 8000, 16000), 16000)
    mix16k, _ = datafiles.read_wav(tmp_path / "talk.wav")
    run = subprocess.run(
        [
            PYTHON,
            os.path.join(ROOT, "nnet/bin/separate_wav.py"),
            "--model",
            str(exp),
            str(tmp_path / "talk.wav"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    estimates = Separator(str(exp)).separate(dsp.resample(mix16k, 16000, 8000))
    expected = dsp.resample(estimates, 8000, 16000)[:, : len(mix16k)]
    for c in (1, 2):
        est, est_rate = datafiles.read_wav(tmp_path / "out" / f"talk_s{c}.wav")
        assert est_rate == 16000 and len(est) == len(mix16k)
        assert np.abs(est).max() > 0
        np.testing.assert_allclose(est, expected[c - 1], rtol=0, atol=1.01 / 32768)  # within one 16-bit step


def test_separate_wav_resamples_each_chunk_of_a_long_recording(tmp_path, trained):
    """A 16 kHz recording in chunks of 0.5 s (0.2 s overlap) through an 8 kHz model: the whole length
    comes back at 16 kHz, and before the first overlap it is the first 0.5 s separated alone
    (resampled to 8 kHz and back), so no chunk is cut at the model's rate from a whole resampled copy."""
    exp, data = trained
    mix8k, _ = datafiles.read_wav(next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values())))
    datafiles.write_wav(tmp_path / "talk.wav", dsp.resample(mix8k, 8000, 16000), 16000)
    mix16k, _ = datafiles.read_wav(tmp_path / "talk.wav")
    assert len(mix16k) > 16000 * 0.8  # at least two chunks
    options = ["--chunk-seconds", "0.5", "--overlap-seconds", "0.2"]
    run = subprocess.run(
        [PYTHON, os.path.join(ROOT, "nnet/bin/separate_wav.py"), "--model", str(exp), *options]
        + [str(tmp_path / "talk.wav"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    first = mix16k[:8000]  # 0.5 s at 16 kHz
    alone = dsp.resample(Separator(str(exp)).separate(dsp.resample(first, 16000, 8000)), 8000, 16000)
    for c in (1, 2):
        est, est_rate = datafiles.read_wav(tmp_path / "out" / f"talk_s{c}.wav")
        assert est_rate == 16000 and len(est) == len(mix16k)
        np.testing.assert_allclose(est[:4800], alone[c - 1, :4800], rtol=0, atol=1.01 / 32768)


def test_a_model_with_broken_embeddings_fails_naming_the_utterance(tmp_path, trained):
    """A model whose weights are NaN (a diverged training) gives NaN embeddings: k-means refuses
    them (they used to cluster into one-source masks that score like a real result); separate.sh
    fails naming the utterance and writes no spk1.scp."""
    exp, data = trained
    broken = tmp_path / "exp"
    shutil.copytree(exp, broken)
    ckpt = torch.load(broken / "best.pt", weights_only=True)
    ckpt["model"] = {
        k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in ckpt["model"].items()
    }
    torch.save(ckpt, broken / "best.pt")
    utt = sorted(line.split()[0] for line in open(os.path.join(data, "wav.scp")))[0]
    logs, stderr = failed_separation(broken, data, tmp_path / "out", "--head", "dc")
    assert f"utterance '{utt}' ({broken}): the embeddings of utterance(s) [0] of the batch are not finite" in logs
    # the job's error reaches the terminal, not only "read the log" (utils/job_errors.sh)
    assert f"steps/separate.sh: separate.py: {data}/split1/1/wav.scp: utterance '{utt}' ({broken}): " in stderr


@pytest.mark.fault
def test_truncated_mixture_is_named_with_its_utterance(tmp_path, trained):
    """A mixture wav cut short: separate.sh fails naming wav.scp, utterance and file; no spk1.scp."""
    exp, data = trained
    broken = tmp_path / "data"
    shutil.copytree(data, broken)
    entries = dict(line.split() for line in open(broken / "wav.scp"))
    utt = sorted(entries)[0]
    cut = tmp_path / "cut.wav"
    shutil.copy(entries[utt], cut)  # the module's files are shared: cut a copy
    os.truncate(cut, 44 + 2 * 50)
    entries[utt] = str(cut)
    (broken / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(entries.items())))
    logs, stderr = failed_separation(exp, broken, tmp_path / "out")
    assert f"wav.scp: utterance '{utt}': {cut}: truncated" in logs  # the job's split of {broken}/wav.scp
    assert f"steps/separate.sh: separate.py: {broken}/split1/1/wav.scp: utterance '{utt}': {cut}: truncated" in stderr


@pytest.mark.fault
@pytest.mark.skipif(torch.cuda.is_available(), reason="the error of a machine whose torch sees no GPU")
@pytest.mark.parametrize("program", ["separate.py", "separate_wav.py"])
def test_use_gpu_without_a_gpu_is_an_error_in_both_programs(tmp_path, trained, program):
    """--use-gpu true where torch sees no GPU: exit 1 with the same message, nothing written (no silent CPU run)."""
    exp, data = trained
    wav = datafiles.read_table(os.path.join(data, "wav.scp"))
    if program == "separate.py":
        args = ["--use-gpu", "true", str(exp), data, str(tmp_path / "out")]
    else:
        args = ["--model", str(exp), "--use-gpu", "true", next(iter(wav.values())), str(tmp_path / "out")]
    run = subprocess.run([PYTHON, os.path.join(ROOT, "nnet/bin", program), *args], capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f"{program}: --use-gpu true but torch sees no GPU: install a CUDA build or use --use-gpu false"
    )
    assert not (tmp_path / "out").exists()


def pack_model(exp, out_zip, cwd, *options):
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "utils/pack_model.sh"), *options, str(exp), str(out_zip)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )
    assert run.returncode == 0, run.stderr
    return out_zip


def test_a_pack_separates_as_its_exp_dir(tmp_path, trained):
    """utils/pack_model.sh: one zip with best.pt, config.yaml, the system's RESULTS rows (those scored on
    its estimates) and meta.yaml; steps/separate.sh and separate_wav.py given the pack write the same wavs
    as given the exp dir."""
    exp, data = trained
    exp = shutil.copytree(exp, tmp_path / "exp")  # the system 'exp', separated and scored here
    for sep, options in (("separate_tt", []), ("separate_tt_misi", ["--variant", "misi"])):
        separate_dir(exp, data, exp / sep, "--nj", "1", *options)
        score_dir = exp / sep.replace("separate", "score")
        run = subprocess.run(["bash", os.path.join(ROOT, "steps/score.sh"), "--nj", "1", data, exp / sep, score_dir])
        assert run.returncode == 0
    results = ["--exp", str(tmp_path), "--out", str(tmp_path / "RESULTS.md")]
    run = subprocess.run([PYTHON, os.path.join(ROOT, "utils/show_results.py"), *results], capture_output=True)
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    table = [line for line in lines if line.startswith(("| system |", "|---", "| exp"))]
    assert [line.split(" | ")[0] for line in table[2:]] == ["| exp", "| exp +misi"]
    with open(tmp_path / "RESULTS.md", "a") as f:  # rows of other systems stay behind, 'expert' too
        f.write("| mixture | tt | 0.2 | 0.0 |\n| expert | tt | 1.0 | 0.8 |\n")
    packed = pack_model(
        exp, tmp_path / "exp.zip", tmp_path, "--license", "synthetic tones: no licence", "--citation", "ours, 2026"
    )
    with zipfile.ZipFile(packed) as z:
        assert sorted(z.namelist()) == ["RESULTS.md", "best.pt", "config.yaml", "meta.yaml"]
        assert z.read("RESULTS.md").decode() == "\n".join(table) + "\n"
        assert z.read("best.pt") == (exp / "best.pt").read_bytes()
        assert z.read("config.yaml") == (exp / "config.yaml").read_bytes()
        meta = yaml.safe_load(z.read("meta.yaml"))
    assert {k: meta[k] for k in ("format", "system", "sample_rate", "num_spk", "model_type", "head", "phase")} == {
        "format": 1,
        "system": "exp",
        "sample_rate": 8000,
        "num_spk": 2,
        "model_type": "chimera",
        "head": "mi",
        "phase": "mixture",
    }
    assert meta["training_corpus"] == tmp_path.name  # the default: the dir it was packed from
    assert meta["license"] == "synthetic tones: no licence" and meta["citation"] == "ours, 2026"
    assert meta["torch"] == torch.__version__ and meta["python"].count(".") == 2
    assert len(meta["commit"].split("-")[0]) == 40 and meta["created"].endswith("UTC")
    assert meta["sha256_best_pt"] == hashlib.sha256((exp / "best.pt").read_bytes()).hexdigest()
    from_dir = separate_dir(exp, data, tmp_path / "dir", "--nj", "1", "--phase", "misi")
    from_pack = separate_dir(packed, data, tmp_path / "pack", "--nj", "1", "--phase", "misi")
    for c in (1, 2):
        assert list(from_pack[c]) == list(from_dir[c])
        for utt in from_dir[c]:
            np.testing.assert_array_equal(from_pack[c][utt], from_dir[c][utt])
    wav = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    for model, out in ((exp, "w_dir"), (packed, "w_pack")):
        run = subprocess.run(
            [PYTHON, "-m", "nnet.bin.separate_wav", "--model", str(model), wav, str(tmp_path / out)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
    name = os.path.splitext(os.path.basename(wav))[0]
    for c in (1, 2):
        np.testing.assert_array_equal(
            datafiles.read_wav(tmp_path / "w_pack" / f"{name}_s{c}.wav")[0],
            datafiles.read_wav(tmp_path / "w_dir" / f"{name}_s{c}.wav")[0],
        )
    run = subprocess.run(
        [PYTHON, "-m", "nnet.bin.pack_model", "unpack", str(packed), str(tmp_path / "unpacked")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "unpacked" / "best.pt").read_bytes() == (exp / "best.pt").read_bytes()
    assert sorted(os.listdir(tmp_path / "unpacked")) == ["RESULTS.md", "best.pt", "config.yaml", "meta.yaml"]


def rewrite_pack(src, dst, **changes):
    """A copy of the pack src with members replaced (bytes), or meta.yaml keys changed (meta=dict)."""
    with zipfile.ZipFile(src) as z:
        members = {name: z.read(name) for name in z.namelist()}
    meta = yaml.safe_load(members["meta.yaml"])
    meta.update(changes.pop("meta", {}))
    members["meta.yaml"] = yaml.safe_dump(meta).encode()
    members.update(changes)
    with zipfile.ZipFile(dst, "w") as z:
        for name, data in members.items():
            if data is not None:
                z.writestr(name, data)
    return dst


@pytest.mark.fault
def test_a_pack_that_cannot_be_used_is_refused_by_name(tmp_path, trained):
    """A pack from a newer format, with a tampered best.pt, without meta.yaml, a damaged zip, a file that
    is not a pack, unpacking over a trained system: exit 1 naming the file and the remedy; nothing written."""
    exp, data = trained
    good = pack_model(exp, tmp_path / "good.zip", tmp_path)
    weights = bytearray((exp / "best.pt").read_bytes())
    weights[-100] ^= 1
    cases = {
        "future": (
            rewrite_pack(good, tmp_path / "future.zip", meta={"format": 3}),
            "pack format 3 was written by a newer cocktail; this one reads format 2 and older: update cocktail",
        ),
        "head": (
            rewrite_pack(good, tmp_path / "head.zip", meta={"head": "pit"}),
            "meta.yaml says head pit, its best.pt (a 'chimera' model) has mi and dc: the pack was edited or damaged",
        ),
        "matched_on_mi": (
            rewrite_pack(
                good, tmp_path / "matched_on_mi.zip", meta={"format": 2, "matched_inference": True, "matched_steps": 5}
            ),
            "meta.yaml says matched_inference True, matched_steps 5 on the mi head in format 2 (matched run-time "
            "inference needs true or false, 0 or more steps, the dc head and format 2): the pack was edited",
        ),
        "matched_in_format_1": (  # an older reader would run k-means alone on it: a pack that asks is format 2
            rewrite_pack(good, tmp_path / "matched_in_format_1.zip", meta={"head": "dc", "matched_inference": True}),
            "meta.yaml says matched_inference True, matched_steps 0 on the dc head in format 1",
        ),
        "matched_not_bool": (
            rewrite_pack(good, tmp_path / "matched_not_bool.zip", meta={"matched_inference": "no"}),
            "meta.yaml says matched_inference 'no', matched_steps 0 on the mi head in format 1",
        ),
        "tampered": (
            rewrite_pack(good, tmp_path / "tampered.zip", **{"best.pt": bytes(weights)}),
            "best.pt does not match the sha256 in meta.yaml: the pack is damaged",
        ),
        "no_meta": (
            rewrite_pack(good, tmp_path / "no_meta.zip", **{"meta.yaml": None}),
            "not a cocktail model pack (no meta.yaml)",
        ),
        "checkpoint": (tmp_path / "model.pt", "not a cocktail model pack (no best.pt, config.yaml, meta.yaml)"),
        "not_zip": (tmp_path / "model.txt", "neither an exp dir nor a model pack (zip)"),
        "truncated": (
            tmp_path / "truncated.zip",
            "damaged zip (File is not a zip file): download or copy the pack again",
        ),
    }
    (tmp_path / "truncated.zip").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])  # a download cut short
    shutil.copy(exp / "best.pt", tmp_path / "model.pt")  # torch's own zip, not a pack
    (tmp_path / "model.txt").write_text("weights\n")
    wav = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    for name, (model, message) in cases.items():
        for command in (
            ["nnet.bin.separate_wav", "--model", str(model), wav, str(tmp_path / f"out_{name}")],
            ["nnet.bin.separate", str(model), data, str(tmp_path / f"sep_{name}")],
        ):
            run = subprocess.run([PYTHON, "-m", *command], capture_output=True, text=True)
            assert run.returncode == 1, (name, run.stderr)
            assert f"{model}: {message}" in run.stderr, (name, run.stderr)
            assert "Traceback" not in run.stderr
        assert not (tmp_path / f"out_{name}").exists() and not (tmp_path / f"sep_{name}").exists()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-30])  # the zip's central directory cut off
    run = subprocess.run([PYTHON, "-m", "nnet.bin.pack_model", "show", str(cut)], capture_output=True, text=True)
    assert run.returncode == 1 and "cut.zip" in run.stderr and "Traceback" not in run.stderr
    target = tmp_path / "trained"
    shutil.copytree(exp, target)
    before = (target / "best.pt").read_bytes()
    run = subprocess.run(
        [PYTHON, "-m", "nnet.bin.pack_model", "unpack", str(good), str(target)], capture_output=True, text=True
    )
    assert run.returncode == 1 and f"{target}/best.pt exists: unpack into a new dir" in run.stderr
    assert (target / "best.pt").read_bytes() == before


def test_a_pack_with_matched_inference_separates_as_its_exp_dir_with_rti(tmp_path, trained):
    """A pack made with --head dc --matched-inference true --matched-steps 3 (format 2) gives, without
    options, what the exp dir gives with the rti variant and 3 steps, in steps/separate.sh and in
    separate_wav.py, not the k-means masks alone; --matched-inference false and another --head turn
    it off, and the separated dir's record says which ran."""
    exp, data = trained
    packed = pack_model(
        exp, tmp_path / "rti.zip", tmp_path, "--head", "dc", "--matched-inference", "true", "--matched-steps", "3"
    )
    meta = yaml.safe_load(zipfile.ZipFile(packed).read("meta.yaml"))
    assert (meta["format"], meta["head"], meta["matched_inference"], meta["matched_steps"]) == (2, "dc", True, 3)
    # a head other than the model's first is format 2 too: a format-1 reader would refuse it as damaged
    head_only = pack_model(exp, tmp_path / "dc.zip", tmp_path, "--head", "dc")
    head_only = yaml.safe_load(zipfile.ZipFile(head_only).read("meta.yaml"))
    assert (head_only["format"], head_only["head"], "matched_inference" in head_only) == (2, "dc", False)
    assert (
        meta["inference"] == "k-means on the DC embeddings + 3 steps of matched run-time inference (Wang et al. 2018)"
    )
    rti = separate_dir(exp, data, tmp_path / "rti", "--nj", "1", "--variant", "rti", "--matched-steps", "3")
    kmeans = separate_dir(exp, data, tmp_path / "km", "--nj", "1", "--head", "dc")
    mi = separate_dir(exp, data, tmp_path / "mi", "--nj", "1")
    from_pack = separate_dir(packed, data, tmp_path / "pack", "--nj", "1")
    without = separate_dir(packed, data, tmp_path / "pack_km", "--nj", "1", "--matched-inference", "false")
    other_head = separate_dir(packed, data, tmp_path / "pack_mi", "--nj", "1", "--head", "mi")
    run = subprocess.run(
        [PYTHON, "-m", "nnet.bin.pack_model", "unpack", str(packed), str(tmp_path / "unpacked")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    unpacked = separate_dir(tmp_path / "unpacked", data, tmp_path / "unpacked_sep", "--nj", "1")
    differs = False
    for utt in rti[1]:
        for c in (1, 2):
            np.testing.assert_array_equal(from_pack[c][utt], rti[c][utt])
            np.testing.assert_array_equal(unpacked[c][utt], rti[c][utt])  # an unpacked pack keeps its defaults
            np.testing.assert_array_equal(without[c][utt], kmeans[c][utt])
            np.testing.assert_array_equal(other_head[c][utt], mi[c][utt])
        differs |= not np.array_equal(from_pack[1][utt], kmeans[1][utt])
    assert differs  # matched inference moved some estimate: the pack's default is not k-means alone
    how = yaml.safe_load((tmp_path / "pack" / "provenance.yaml").read_text())["how"]
    assert how.endswith("(dc head + 3 steps of matched inference, mixture phase)"), how
    how = yaml.safe_load((tmp_path / "pack_km" / "provenance.yaml").read_text())["how"]
    assert how.endswith("(dc head, mixture phase)"), how
    wav = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    name = os.path.splitext(os.path.basename(wav))[0]
    outputs = {}
    for out, model, options in (
        ("pack", packed, []),
        ("dir", exp, ["--head", "dc", "--matched-inference", "true", "--matched-steps", "3"]),
        ("km", exp, ["--head", "dc"]),
        ("pack_km", packed, ["--matched-inference", "false"]),
    ):
        run = subprocess.run(
            [PYTHON, "-m", "nnet.bin.separate_wav", "--model", str(model), *options, wav, str(tmp_path / f"w_{out}")],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        outputs[out] = [datafiles.read_wav(tmp_path / f"w_{out}" / f"{name}_s{c}.wav")[0] for c in (1, 2)]
    for c in (0, 1):
        np.testing.assert_array_equal(outputs["pack"][c], outputs["dir"][c])
        np.testing.assert_array_equal(outputs["pack_km"][c], outputs["km"][c])
    assert not np.array_equal(outputs["pack"][0], outputs["km"][0])
    # meta.yaml beside another model's best.pt (a dir trained again after unpacking) is refused, not applied
    weights = bytearray((tmp_path / "unpacked" / "best.pt").read_bytes())
    weights[-100] ^= 1
    (tmp_path / "unpacked" / "best.pt").write_bytes(bytes(weights))
    with pytest.raises(PackError, match=r"meta.yaml is not about .*best.pt \(sha256_best_pt differs\): unpack"):
        Separator(str(tmp_path / "unpacked"))


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--matched-inference", "true"],
            "refines k-means on the DC head; with the mi head it would do nothing: add --head dc",
        ),
        (["--head", "dc", "--matched-inference", "true", "--matched-steps", "-2"], "steps must be 0 or more, got -2"),
        (["--head", "dc", "--matched-steps", "50"], "--matched-steps 50 without --matched-inference true"),
    ],
)
def test_a_pack_that_asks_for_matched_inference_it_cannot_run_is_not_written(tmp_path, trained, options, message):
    exp, _ = trained
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "utils/pack_model.sh"), *options, str(exp), str(tmp_path / "p.zip")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "p.zip").exists()


def test_chunks_are_put_in_one_source_order():
    """separate_in_chunks with a stand-in separator that returns a chunk's true sources in a random
    order: the output is the sources, in the first chunk's order, at every sample (cross-
    fades of equal signals change nothing); a recording shorter than a chunk is separated whole."""
    rng = np.random.default_rng(3)
    sources = rng.standard_normal((3, 10_007))
    where = {}

    def shuffled(chunk):
        start = where.setdefault("next", 0)
        order = rng.permutation(3)
        where["next"] = start + 1000 - 200  # chunk 1000, overlap 200: the next chunk's start
        return sources[order, start : start + len(chunk)]

    out = separate_in_chunks(shuffled, sources.sum(0), chunk=1000, overlap=200)
    first = [int(np.argmax([np.dot(out[c, :200], s[:200]) for s in sources])) for c in range(3)]
    assert sorted(first) == [0, 1, 2]
    np.testing.assert_allclose(out, sources[first].astype(np.float32), rtol=0, atol=1e-5)
    assert out.shape == sources.shape and out.dtype == np.float32
    calls = []
    whole = separate_in_chunks(lambda x: calls.append(len(x)) or np.stack([x, -x]), np.ones(900), 1000, 200)
    assert calls == [900] and whole.shape == (2, 900)
    with pytest.raises(ValueError, match="the overlap .1000 samples. must be above 0 and below the chunk"):
        separate_in_chunks(shuffled, np.ones(5000), 1000, 1000)


def separate_wav(exp, in_wav, out_dir, *options):
    return subprocess.run(
        [
            PYTHON,
            os.path.join(ROOT, "nnet/bin/separate_wav.py"),
            "--model",
            str(exp),
            *options,
            str(in_wav),
            str(out_dir),
        ],
        capture_output=True,
        text=True,
    )


@pytest.mark.fault
@pytest.mark.parametrize(
    "options, message",
    [
        (
            ("--phase", "misi", "--iters", "-3"),
            "--iters -3: the misi phase needs 1 or more iterations (Wang et al. use 5)",
        ),
        (("--phase", "griffin-lim", "--iters", "0"), "--iters 0: the griffin-lim phase needs 1 or more iterations"),
        (("--iters", "-3"), "--iters -3: iterations must be 0 or more"),
    ],
)
def test_separate_wav_refuses_iterations_its_phase_cannot_use(tmp_path, trained, options, message):
    exp, data = trained
    mix = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    run = separate_wav(exp, mix, tmp_path / "out", *options)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"separate_wav.py: {message}" in run.stderr


@pytest.mark.fault
def test_separate_wav_into_a_file_is_refused_naming_it(tmp_path, trained):
    exp, data = trained
    mix = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    (tmp_path / "out").write_text("not a dir")
    run = separate_wav(exp, mix, tmp_path / "out")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"separate_wav.py: {tmp_path}/out is a file, not a dir" in run.stderr


@pytest.mark.fault
def test_a_long_recording_name_separates_or_is_refused_naming_the_limit(tmp_path, trained):
    """A 240-character name used to fail on its temporary's name (14 bytes longer, over 255): it
    separates now; a name whose estimates cannot be named is refused before the model runs."""
    exp, data = trained
    mix = next(iter(datafiles.read_table(os.path.join(data, "wav.scp")).values()))
    fits = tmp_path / ("a" * 240 + ".wav")
    shutil.copy(mix, fits)
    run = separate_wav(exp, fits, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert sorted(os.listdir(tmp_path / "out")) == ["a" * 240 + "_s1.wav", "a" * 240 + "_s2.wav"]
    too_long = tmp_path / ("b" * 250 + ".wav")
    shutil.copy(mix, too_long)
    run = separate_wav(exp, too_long, tmp_path / "out")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert "bytes, over the file system's limit of 255: copy the input to a shorter name" in run.stderr
    assert f"separate_wav.py: the estimates of {too_long} would be named {'b' * 250}_s<c>.wav, 257 bytes" in run.stderr


def test_stage_4_separates_a_pack_with_the_phase_its_meta_names(tmp_path, trained):
    """steps/separate.sh without --phase takes the pack's phase (meta.yaml), as separate_wav.py does: a
    pack made with --phase griffin-lim gives the exp dir's Griffin-Lim estimates, not the mixture phase's;
    --phase still overrides it."""
    exp, data = trained
    packed = pack_model(exp, tmp_path / "gl.zip", tmp_path, "--phase", "griffin-lim")
    griffin_lim = separate_dir(exp, data, tmp_path / "gl", "--nj", "1", "--phase", "griffin-lim")
    mixture_phase = separate_dir(exp, data, tmp_path / "mix", "--nj", "1")
    from_pack = separate_dir(packed, data, tmp_path / "pack", "--nj", "1")
    overridden = separate_dir(packed, data, tmp_path / "pack_mix", "--nj", "1", "--phase", "mixture")
    for utt in griffin_lim[1]:
        for c in (1, 2):
            np.testing.assert_array_equal(from_pack[c][utt], griffin_lim[c][utt])
            np.testing.assert_array_equal(overridden[c][utt], mixture_phase[c][utt])
        assert not np.array_equal(from_pack[1][utt], mixture_phase[1][utt])
    log = (tmp_path / "pack" / "log" / "separate.1.log").read_text()
    assert "griffin-lim phase" in log
    # the record of what made the estimates names the phase the pack chose, not only the options given
    how = yaml.safe_load((tmp_path / "pack" / "provenance.yaml").read_text())["how"]
    assert how.endswith("(mi head, griffin-lim phase)"), how
    assert not (tmp_path / "pack" / "resolved.txt").exists()  # the jobs' note is in the record, not left beside it
    how = yaml.safe_load((tmp_path / "pack_mix" / "provenance.yaml").read_text())["how"]
    assert "--phase mixture" in how and how.endswith("(mi head, mixture phase)"), how
