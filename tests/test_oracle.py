"""Oracle masks: definitions, and separation far above the mixture through steps/separate_oracle.sh."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnet import datafiles, metrics
from nnet.oracle_masks import oracle_masks
from synth import make_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mask_definitions():
    gen = torch.Generator().manual_seed(0)
    src = torch.complex(torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)).to(torch.complex128)
    mix = src.sum(0)
    ibm = oracle_masks(mix, src, "ibm")
    assert torch.equal(ibm.sum(0), torch.ones(5, 7, dtype=ibm.dtype))
    assert torch.equal(ibm[0] == 1, src[0].abs() >= src[1].abs())
    irm = oracle_masks(mix, src, "irm")
    assert torch.allclose(irm[0], src[0].abs() / (src[0].abs() + src[1].abs()))
    psm = oracle_masks(mix, src, "psm")
    phase_diff = torch.angle(src[0]) - torch.angle(mix)
    expected = (src[0].abs() * torch.cos(phase_diff) / mix.abs()).clamp(0, 1)
    assert torch.allclose(psm[0], expected)
    with pytest.raises(ValueError, match="unknown mask 'iam'"):
        oracle_masks(mix, src, "iam")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_dir(str(tmp_path_factory.mktemp("oracle")), num_utts=3, seconds=(1.2, 1.5))


@pytest.mark.parametrize("kind", ["ibm", "irm", "psm"])
def test_oracle_separation_is_far_above_the_mixture(tmp_path, data, kind):
    out = tmp_path / "sep"
    run = subprocess.run(
        ["bash", os.path.join(ROOT, "steps/separate_oracle.sh"), "--nj", "2", "--mask", kind, data, str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    mixtures = datafiles.read_table(os.path.join(data, "wav.scp"))
    assert list(datafiles.read_table(out / "spk1.scp")) == list(mixtures)
    for utt, path in mixtures.items():
        mix, rate = datafiles.read_wav(path)
        refs = np.stack(
            [datafiles.read_wav(datafiles.read_table(os.path.join(data, f"spk{c}.scp"))[utt])[0] for c in (1, 2)]
        )
        ests = np.stack([datafiles.read_wav(datafiles.read_table(out / f"spk{c}.scp")[utt])[0] for c in (1, 2)])
        assert ests.shape == refs.shape
        score = metrics.score_utterance(refs, ests, mix, rate, utt, pesq_stoi=False)
        assert score["SDRi"] > 8.0, (kind, utt, score)
        assert score["SI-SNRi"] > 8.0, (kind, utt, score)


def test_missing_reference_is_named(tmp_path, data):
    broken = tmp_path / "data"
    subprocess.run(["cp", "-r", data, str(broken)], check=True)
    os.unlink(broken / "spk2.scp")
    os.unlink(broken / "spk1.scp")
    run = subprocess.run(
        [
            "bash",
            os.path.join(ROOT, "steps/separate_oracle.sh"),
            "--nj",
            "1",
            "--mask",
            "irm",
            str(broken),
            str(tmp_path / "sep"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    log = (tmp_path / "sep" / "log" / "separate_oracle.1.log").read_text()
    assert "no spk1.scp/spk2.scp: oracle masks need the reference sources" in log
    # the job's error reaches the terminal, not only "read the log" (utils/job_errors.sh)
    expected = f"steps/separate_oracle.sh: separate_oracle.py: {broken}/split1/1: no spk1.scp/spk2.scp: oracle masks"
    assert expected in run.stderr
    assert not (tmp_path / "sep" / "spk1.scp").exists()


@pytest.mark.fault
@pytest.mark.parametrize("table", ["wav.scp", "spk2.scp"])
def test_truncated_wav_is_named_with_its_utterance(tmp_path, data, table):
    """A mixture or reference wav cut short: the job fails naming table, utterance and file; no spk1.scp."""
    broken = tmp_path / "data"
    subprocess.run(["cp", "-r", data, str(broken)], check=True)
    entries = dict(line.split() for line in open(broken / table))
    utt = sorted(entries)[1]
    cut = tmp_path / "cut.wav"
    subprocess.run(["cp", entries[utt], str(cut)], check=True)  # the module's files are shared: cut a copy
    os.truncate(cut, 44 + 2 * 50)
    entries[utt] = str(cut)
    (broken / table).write_text("".join(f"{u} {p}\n" for u, p in sorted(entries.items())))
    run = subprocess.run(
        [
            "bash",
            os.path.join(ROOT, "steps/separate_oracle.sh"),
            "--nj",
            "1",
            "--mask",
            "irm",
            str(broken),
            str(tmp_path / "sep"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    log = (tmp_path / "sep" / "log" / "separate_oracle.1.log").read_text()
    assert f"{table}: utterance '{utt}': {cut}: truncated" in log
    assert f"steps/separate_oracle.sh: separate_oracle.py: {broken}/split1/1/{table}: utterance '{utt}'" in run.stderr
    assert not (tmp_path / "sep" / "spk1.scp").exists()


def test_the_noise_of_a_noisy_corpus_is_a_source_of_the_ideal_masks(tmp_path, data, kind="irm"):
    """LibriMix's mix_both: mixture = s1 + s2 + noise, noise1.scp beside spk1/2.scp. The ideal masks
    count the noise as one more source (a bin it dominates is nobody's), so they beat the masks of the
    speakers alone by a wide margin; noise1.scp taken away, the same run gives those."""
    noisy = tmp_path / "noisy"
    subprocess.run(["cp", "-r", data, str(noisy)], check=True)
    rng = np.random.default_rng(4)
    noise_table, mix_table = {}, {}
    for utt, path in datafiles.read_table(noisy / "wav.scp").items():
        mix, rate = datafiles.read_wav(path, dtype="float64")
        noise = rng.normal(0, 0.1, len(mix))
        noise_table[utt], mix_table[utt] = str(tmp_path / f"{utt}.noise.wav"), str(tmp_path / f"{utt}.mix.wav")
        datafiles.write_wav(noise_table[utt], noise, rate)
        datafiles.write_wav(mix_table[utt], mix + noise, rate)
    datafiles.write_table(noisy / "wav.scp", mix_table)
    datafiles.write_table(noisy / "noise1.scp", noise_table)

    def mean_sdri(data_dir, out):
        run = subprocess.run(
            ["bash", os.path.join(ROOT, "steps/separate_oracle.sh"), "--nj", "1", "--mask", kind, data_dir, str(out)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr
        assert not (out / "spk3.scp").exists()  # the noise is not an output
        sdri = []
        for utt, path in mix_table.items():
            mix, rate = datafiles.read_wav(path)
            refs = np.stack([datafiles.read_wav(datafiles.read_table(noisy / f"spk{c}.scp")[utt])[0] for c in (1, 2)])
            ests = np.stack([datafiles.read_wav(datafiles.read_table(out / f"spk{c}.scp")[utt])[0] for c in (1, 2)])
            sdri.append(metrics.score_utterance(refs, ests, mix, rate, utt, pesq_stoi=False)["SDRi"])
        return np.mean(sdri)

    with_noise = mean_sdri(str(noisy), tmp_path / "with")
    os.unlink(noisy / "noise1.scp")
    without = mean_sdri(str(noisy), tmp_path / "without")
    assert with_noise > without + 3, (with_noise, without)


@pytest.mark.fault
def test_the_lists_of_a_separated_dir_count_its_source_folders(tmp_path, data):
    """python3 -m nnet.separated_dir (the last step of separate.sh and separate_oracle.sh, no torch):
    spk<c>.scp for each folder s1..sC; a missing file or a dir without s1/ is named, with no list."""
    from nnet import separated_dir

    utts = list(datafiles.read_table(os.path.join(data, "wav.scp")))
    out = tmp_path / "sep"
    for c in (1, 2, 3):
        for utt in utts:
            datafiles.write_wav(out / f"s{c}" / f"{utt}.wav", np.zeros(10), 8000)
    assert separated_dir.collect(data, str(out)) == len(utts)
    assert [sorted(datafiles.read_table(out / f"spk{c}.scp")) for c in (1, 2, 3)] == [sorted(utts)] * 3
    os.unlink(out / "s2" / f"{utts[1]}.wav")
    with pytest.raises(FileNotFoundError, match=f"1 separated files missing, e.g. utterance '{utts[1]}'"):
        separated_dir.collect(data, str(out))
    run = subprocess.run(
        [sys.executable, "-m", "nnet.separated_dir", data, str(tmp_path / "empty")], capture_output=True, text=True
    )
    assert run.returncode == 1 and "no s1/ folder: the separation jobs wrote nothing" in run.stderr
