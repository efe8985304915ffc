"""Issue 26, items 4 and 5: a metric at its floor is explained where the messages say (a STOI below 0
clipped to 0 has its warning in the scoring log, and the notes name each cause), and steps/score.sh
scores a hand-made data dir of wav.scp and spk*.scp alone, as its help says."""

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import synth
from nnet import datafiles, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 8000


def run(script, *args):
    interpreter = sys.executable if script.endswith(".py") else "bash"
    return subprocess.run([interpreter, os.path.join(ROOT, script), *args], cwd=ROOT, capture_output=True, text=True)


def against_the_envelope(reference, rng):
    """Noise loud where the reference is quiet: short-time envelopes that move against the
    reference's, so STOI (a mean envelope correlation) comes out below 0."""
    envelope = np.convolve(np.abs(reference), np.ones(400) / 400, mode="same")
    return 0.3 * rng.standard_normal(len(reference)) * (envelope.max() - envelope) / envelope.max()


def test_a_stoi_below_zero_is_clipped_with_a_warning_that_gives_the_value():
    import pystoi

    rng = np.random.default_rng(0)
    reference = synth.voice(rng, 2.0, RATE, 120)
    estimate = against_the_envelope(reference, rng)
    raw = pystoi.stoi(reference, estimate, RATE)
    assert raw < -0.1  # the case of the issue: a negative STOI, not a silent estimate
    with pytest.warns(metrics.MetricWarning, match=rf"'u7': STOI {raw:.4f} is below 0.*floor, 0.0"):
        assert metrics.stoi_score(reference, estimate, RATE, "u7") == 0.0
    # a STOI of 0 or more is pystoi's, without a warning
    closer = reference + 0.01 * estimate
    with warnings.catch_warnings():
        warnings.simplefilter("error", metrics.MetricWarning)
        assert metrics.stoi_score(reference, closer, RATE) == pystoi.stoi(reference, closer, RATE) > 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    data = synth.make_data_dir(str(root), num_utts=3, seconds=(1.4, 1.6))
    return data, sorted(datafiles.read_table(os.path.join(data, "wav.scp")))


def write_estimates(data, sep, replace=None):
    """Estimates: each reference with 10 % of the other; replace[(utt, c)] gives other samples."""
    refs = [datafiles.read_table(os.path.join(data, f"spk{c}.scp")) for c in (1, 2)]
    for c in (1, 2):
        table = {}
        for utt in refs[0]:
            own, other = (datafiles.read_wav(refs[i][utt], dtype="float64")[0] for i in (c - 1, 2 - c))
            table[utt] = os.path.join(sep, f"s{c}", utt + ".wav")
            datafiles.write_wav(table[utt], (replace or {}).get((utt, c), own + 0.1 * other), RATE)
        datafiles.write_table(os.path.join(sep, f"spk{c}.scp"), table)
    return sep


def test_a_negative_stoi_is_named_in_the_log_the_summary_and_results_md(corpus, tmp_path):
    """RESULTS.md once said 'STOI 5' were 'a silent estimate, or PESQ failing' and the summary sent
    the reader to warnings in log/ that were not there: the cause was STOI below 0, clipped."""
    data, utts = corpus
    reference = datafiles.read_wav(datafiles.read_table(os.path.join(data, "spk2.scp"))[utts[1]], dtype="float64")[0]
    noise = against_the_envelope(reference, np.random.default_rng(1))
    sep = write_estimates(data, str(tmp_path / "sep"), {(utts[1], 2): noise})
    out = tmp_path / "exp" / "sys" / "score_tt"
    result = run("steps/score.sh", "--nj", "1", data, sep, str(out))
    assert result.returncode == 0, result.stderr
    summary = datafiles.read_table(out / "result.txt")
    assert summary["floored_STOI"] == "1" and summary["floored_SDR"] == "0"  # STOI alone: not silence
    said = result.stdout + result.stderr
    assert "1 with a metric at its floor" in said and "a STOI below 0 clipped: STOI" in said
    assert f"{out}/log/score.*.log has a warning with the cause" in said
    log = (out / "log" / "score.1.log").read_text()
    assert f"utterance '{utts[1]}': STOI -" in log and "is below 0" in log  # where the summary says
    md = tmp_path / "RESULTS.md"
    result = run("utils/show_results.py", "--exp", str(tmp_path / "exp"), "--out", str(md))
    assert result.returncode == 0, result.stderr
    text = md.read_text()
    assert "a STOI below 0 clipped to 0 (STOI alone)" in text and "a silent estimate (every metric" in text
    assert "PESQ failing on an estimate (PESQ alone)" in text and "- sys tt (3 utterances): STOI 1" in text


def test_score_sh_scores_a_data_dir_of_wav_scp_and_spk_scp_alone(corpus, tmp_path):
    """score.sh's help: <data-dir> has wav.scp and spk1..N.scp. A hand-made dir of those three
    tables (unsorted, as a user may write them) is scored like the full data dir, and left as it is."""
    data, utts = corpus
    handmade = tmp_path / "handmade"
    handmade.mkdir()
    for name in ("wav.scp", "spk1.scp", "spk2.scp"):
        lines = open(os.path.join(data, name)).read().splitlines()
        (handmade / name).write_text("\n".join(reversed(lines)) + "\n")
    before = sorted(os.listdir(handmade))
    sep = write_estimates(data, str(tmp_path / "sep"))
    result = run("steps/score.sh", "--nj", "2", str(handmade), sep, str(tmp_path / "score"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "No such file" not in result.stderr
    assert sorted(os.listdir(handmade)) == before  # nothing written into the user's dir
    assert f"{handmade} has no utt2spk or spk2utt: scoring a copy" in result.stdout
    full = run("steps/score.sh", "--nj", "2", data, sep, str(tmp_path / "score_full"))
    assert full.returncode == 0, full.stderr
    got = (tmp_path / "score" / "per_utt.tsv").read_text()
    assert got == (tmp_path / "score_full" / "per_utt.tsv").read_text() and len(got.splitlines()) == 4

    # a bad table is named in the copy, and the user is sent to their own dir to correct it
    (handmade / "spk2.scp").write_text("".join(f"{u} /x.wav\n" for u in utts[:2]))
    shutil.rmtree(tmp_path / "score")
    result = run("steps/score.sh", "--nj", "1", str(handmade), sep, str(tmp_path / "score"))
    assert result.returncode == 1
    assert f"holds copies of {handmade}'s tables: correct the tables named above in {handmade}" in result.stderr
    assert not (tmp_path / "score" / "result.txt").exists()
