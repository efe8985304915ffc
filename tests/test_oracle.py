"""Oracle masks: definitions, and separation far above the mixture through steps/separate_oracle.sh."""
import os
import subprocess

import numpy as np
import pytest
import torch

from nnet import io, masks, metrics
from synth import make_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mask_definitions():
    gen = torch.Generator().manual_seed(0)
    src = torch.complex(torch.randn(2, 5, 7, generator=gen), torch.randn(2, 5, 7, generator=gen)).to(torch.complex128)
    mix = src.sum(0)
    ibm = masks.oracle_masks(mix, src, "ibm")
    assert torch.equal(ibm.sum(0), torch.ones(5, 7, dtype=ibm.dtype))
    assert torch.equal(ibm[0] == 1, src[0].abs() >= src[1].abs())
    irm = masks.oracle_masks(mix, src, "irm")
    assert torch.allclose(irm[0], src[0].abs() / (src[0].abs() + src[1].abs()))
    psm = masks.oracle_masks(mix, src, "psm")
    phase_diff = torch.angle(src[0]) - torch.angle(mix)
    expected = (src[0].abs() * torch.cos(phase_diff) / mix.abs()).clamp(0, 1)
    assert torch.allclose(psm[0], expected)
    with pytest.raises(ValueError, match="unknown mask 'iam'"):
        masks.oracle_masks(mix, src, "iam")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data_dir(str(tmp_path_factory.mktemp("oracle")), num_utts=3, seconds=(1.2, 1.5))


@pytest.mark.parametrize("kind", ["ibm", "irm", "psm"])
def test_oracle_separation_is_far_above_the_mixture(tmp_path, data, kind):
    out = tmp_path / "sep"
    run = subprocess.run(["bash", os.path.join(ROOT, "steps/separate_oracle.sh"), "--nj", "2", "--mask", kind,
                          data, str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    mixtures = io.read_table(os.path.join(data, "wav.scp"))
    assert list(io.read_table(out / "spk1.scp")) == list(mixtures)
    for utt, path in mixtures.items():
        mix, rate = io.read_wav(path)
        refs = np.stack([io.read_wav(io.read_table(os.path.join(data, f"spk{c}.scp"))[utt])[0] for c in (1, 2)])
        ests = np.stack([io.read_wav(io.read_table(out / f"spk{c}.scp")[utt])[0] for c in (1, 2)])
        assert ests.shape == refs.shape
        score = metrics.score_utterance(refs, ests, mix, rate, utt, pesq_stoi=False)
        assert score["SDRi"] > 8.0, (kind, utt, score)
        assert score["SI-SNRi"] > 8.0, (kind, utt, score)


def test_missing_reference_is_named(tmp_path, data):
    broken = tmp_path / "data"
    subprocess.run(["cp", "-r", data, str(broken)], check=True)
    os.unlink(broken / "spk2.scp")
    os.unlink(broken / "spk1.scp")
    run = subprocess.run(["bash", os.path.join(ROOT, "steps/separate_oracle.sh"), "--nj", "1", "--mask", "irm",
                          str(broken), str(tmp_path / "sep")], capture_output=True, text=True)
    assert run.returncode != 0
    log = (tmp_path / "sep" / "log" / "separate_oracle.1.log").read_text()
    assert "no spk1.scp/spk2.scp: oracle masks need the reference sources" in log
    assert not (tmp_path / "sep" / "spk1.scp").exists()
