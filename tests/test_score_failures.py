"""Issue 9 case 2 and its neighbours: scoring cannot be gamed by silence, and input it cannot score
stops it with the utterance and the file named, leaving no result that looks complete."""

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import soundfile

import synth
from nnet import datafiles, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RATE = 8000
FLOOR = {"SDR": -150.0, "SIR": -150.0, "SAR": -150.0, "SI-SNR": -150.0, "PESQ": 1.0, "STOI": 0.0}  # documented


def run(script, *args):
    interpreter = sys.executable if script.endswith(".py") else "bash"
    return subprocess.run([interpreter, os.path.join(ROOT, script), *args], cwd=ROOT, capture_output=True, text=True)


def utterance(seed=0, seconds=1.2):
    rng = np.random.default_rng(seed)
    refs = np.stack([synth.voice(rng, seconds, RATE, f0) for f0 in (120, 230)])
    return refs, refs + 0.1 * refs[::-1] + 0.003 * rng.standard_normal(refs.shape)


def score(refs, ests, utt="u", pesq_stoi=False):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", metrics.MetricWarning)
        return metrics.score_utterance(refs, ests, refs.sum(0), RATE, utt, pesq_stoi=pesq_stoi)


@pytest.mark.fault
def test_a_silent_estimate_scores_the_floor_not_nan():
    """An all-zero estimate for one source: that source scores each metric's floor, the utterance is scored."""
    refs, ests = utterance()
    good = score(refs, ests, pesq_stoi=True)
    ests[1] = 0.0
    with pytest.warns(metrics.MetricWarning, match="utterance 'u_sil': estimate 2 silent"):
        result = metrics.score_utterance(refs, ests, refs.sum(0), RATE, "u_sil")
    assert result["perm"] == (0, 1)
    sdr, _, _ = metrics.bss_eval_pairs(refs, ests[:1])
    assert result["SDR"] == pytest.approx((sdr[0, 0] + FLOOR["SDR"]) / 2, abs=1e-6)
    assert result["SI-SNR"] == pytest.approx((metrics.si_snr(refs[0], ests[0]) + FLOOR["SI-SNR"]) / 2, abs=1e-9)
    assert metrics.FLOORS == FLOOR
    assert result["PESQ"] < good["PESQ"] and result["STOI"] < good["STOI"]
    assert all(np.isfinite(result[m]) for m in metrics.METRICS)
    assert result["floored"] == metrics.METRICS
    assert good["floored"] == ()
    assert result["SDR"] < -60 and result["SDRi"] < -60 and good["SDR"] > 15


@pytest.mark.fault
def test_silence_for_a_source_never_beats_the_mixture():
    """One source silent, the other one well separated: the utterance scores far below the unprocessed mixture."""
    refs, ests = utterance(1)
    mix = refs.sum(0)
    result = score(refs, np.stack([ests[0], np.zeros_like(mix)]))
    mixture = score(refs, np.stack([mix, mix]))
    assert mixture["floored"] == () and -5 < mixture["SDR"] < 5
    assert result["SDR"] < mixture["SDR"] - 50 and result["SDRi"] < -50 and result["SI-SNRi"] < -50


@pytest.mark.fault
def test_a_scaled_copy_of_the_mixture_scores_exactly_the_mixture():
    """An estimate at 1 % of the mixture's level: SDRi 0, no reward and no penalty (the metrics are scale invariant)."""
    refs, _ = utterance(2)
    mix = refs.sum(0)
    quiet = score(refs, np.stack([0.01 * mix, 0.01 * mix]))
    mixture = score(refs, np.stack([mix, mix]))
    assert quiet["SDR"] == pytest.approx(mixture["SDR"], abs=1e-6)
    assert quiet["SDRi"] == pytest.approx(0.0, abs=1e-6) and quiet["SI-SNRi"] == pytest.approx(0.0, abs=1e-9)
    assert quiet["floored"] == ()


@pytest.mark.fault
def test_a_near_silent_estimate_below_minus_100_dbfs_scores_the_floor():
    """An estimate of one 16-bit LSB click (RMS far below -100 dB FS) counts as silent: floor, not a lucky -9 dB."""
    refs, ests = utterance(3)
    ests[1] = 0.0
    ests[1, 5000] = 1 / 32768
    result = score(refs, ests, pesq_stoi=True)
    assert result["floored"] == metrics.METRICS
    assert result["SDR"] < -60 and result["SI-SNR"] < -60


@pytest.mark.fault
def test_a_constant_estimate_has_a_floor_si_snr_not_nan():
    """A DC-only estimate is zero once its mean is removed: its SI-SNR is the floor, not NaN."""
    refs, ests = utterance(4)
    ests[1] = 0.01
    result = score(refs, ests)
    assert np.isfinite(result["SI-SNR"]) and "SI-SNR" in result["floored"] and "SI-SNRi" in result["floored"]
    assert result["SI-SNR"] == pytest.approx((metrics.si_snr(refs[0], ests[0]) + FLOOR["SI-SNR"]) / 2, abs=1e-9)
    assert "SDR" not in result["floored"]


@pytest.mark.fault
@pytest.mark.parametrize("bad,named", [("reference", "reference 2 is silent"), ("mixture", "the mixture is silent")])
def test_a_silent_reference_or_mixture_is_an_error_naming_the_utterance(bad, named):
    """A silent reference (or mixture) is a corpus error: ScoreError naming the utterance and the signal."""
    refs, ests = utterance(5)
    mix = refs.sum(0)
    if bad == "reference":
        refs[1] = 0.0
    else:
        mix = np.zeros_like(mix)
    with pytest.raises(metrics.ScoreError, match=f"utterance 'utt_z': {named}"):
        metrics.score_utterance(refs, ests, mix, RATE, "utt_z")


@pytest.mark.fault
def test_an_estimate_of_another_length_is_an_error_naming_it():
    """An estimate shorter than its reference: ScoreError naming the utterance, the estimate and both lengths."""
    refs, ests = utterance(6)
    with pytest.raises(
        metrics.ScoreError,
        match=f"utterance 'utt_l': estimate 2 has {refs.shape[1] - 40} samples, the references {refs.shape[1]}",
    ) as err:
        metrics.score_utterance(refs, [ests[0], ests[1, :-40]], refs.sum(0), RATE, "utt_l")
    assert err.value.signal == "estimate 2"


# --- steps/score.sh and utils/show_results.py on real files --------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    data = synth.make_data_dir(str(root), num_utts=3, seconds=(1.0, 1.2))
    return data, sorted(datafiles.read_table(os.path.join(data, "wav.scp")))


def write_estimates(data, sep, changes=None):
    """Estimates = the references plus 10 % leakage; changes[(utt, c)] replaces samples (or None: no file)."""
    changes = changes or {}
    refs = [datafiles.read_table(os.path.join(data, f"spk{c}.scp")) for c in (1, 2)]
    for c in (1, 2):
        table = {}
        for utt in refs[0]:
            own, other = (datafiles.read_wav(refs[i][utt], dtype="float64")[0] for i in ((c - 1), 2 - c))
            table[utt] = os.path.join(sep, f"s{c}", utt + ".wav")
            samples = changes.get((utt, c), own + 0.1 * other)
            if samples is not None:
                datafiles.write_wav(table[utt], samples, RATE)
        datafiles.write_table(os.path.join(sep, f"spk{c}.scp"), table)
    return sep


def stale_score_dir(path):
    os.makedirs(path)
    with open(os.path.join(path, "result.txt"), "w") as f:
        f.write("SDR 99\n")  # a stale result must not survive a failed run
    return path


@pytest.mark.fault
def test_result_counts_the_utterances_scored_and_those_at_the_floor(corpus, tmp_path):
    """One utterance with a silent estimate: scored at the floor, counted in result.txt and the summary."""
    data, utts = corpus
    length = len(datafiles.read_wav(datafiles.read_table(os.path.join(data, "spk1.scp"))[utts[1]])[0])
    sep = write_estimates(data, str(tmp_path / "sep"), {(utts[1], 2): np.zeros(length)})
    out = str(tmp_path / "score")
    result = run("steps/score.sh", "--nj", "2", data, sep, out)
    assert result.returncode == 0, result.stderr
    assert "3 utterances scored, 1 with a metric at its floor" in result.stdout + result.stderr
    log = "".join(open(os.path.join(out, "log", f"score.{n}.log")).read() for n in (1, 2))
    assert f"utterance '{utts[1]}': estimate 2 silent" in log
    summary = datafiles.read_table(os.path.join(out, "result.txt"))
    assert summary["num_utts"] == "3" and summary["floored_SDR"] == "1" and summary["floored_PESQ"] == "1"
    assert not any(key.startswith("nan_") for key in summary)
    with open(os.path.join(out, "per_utt.tsv")) as f:
        lines = f.read().splitlines()
    assert lines[0].endswith("\tSTOI\tfloored")
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert rows[utts[1]][-1] == ",".join(metrics.METRICS) and rows[utts[0]][-1] == "-"
    sdr = [float(rows[utt][1]) for utt in utts]
    assert sdr[1] < -60 and float(summary["SDR"]) == pytest.approx(np.mean(sdr), abs=1e-4)

    exp = tmp_path / "exp"
    shutil.copytree(out, exp / "sys" / "score_tt")
    md = tmp_path / "RESULTS.md"
    result = run("utils/show_results.py", "--exp", str(exp), "--out", str(md))
    assert result.returncode == 0, result.stderr
    text = md.read_text()
    assert "| system | set | SDR | SDRi | SI-SNRi | SIR | SAR | PESQ | STOI | utts |" in text
    assert f"| sys | tt | {float(summary['SDR']):.2f} |" in text and text.count(" | 3 |") == 1
    assert "- sys tt (3 utterances): SDR 1, SIR 1, SAR 1, SDRi 1, SI-SNR 1, SI-SNRi 1, PESQ 1, STOI 1" in text


@pytest.mark.fault
def test_a_silent_reference_stops_scoring_naming_the_utterance_and_file(corpus, tmp_path):
    """A silent reference wav: score.sh exits 1, the log names the utterance and the file, no result.txt is left."""
    data, utts = corpus
    bad = str(tmp_path / "data")
    shutil.copytree(data, bad, ignore=shutil.ignore_patterns("split*"))
    spk2 = datafiles.read_table(os.path.join(bad, "spk2.scp"))
    length = len(datafiles.read_wav(spk2[utts[0]])[0])
    spk2[utts[0]] = str(tmp_path / "silent.wav")
    datafiles.write_wav(spk2[utts[0]], np.zeros(length), RATE)
    datafiles.write_table(os.path.join(bad, "spk2.scp"), spk2)
    out = stale_score_dir(str(tmp_path / "score"))
    result = run("steps/score.sh", "--nj", "1", "--mixture", "true", bad, "-", out)
    assert result.returncode != 0
    log = open(os.path.join(out, "log", "score.1.log")).read()
    assert f"utterance '{utts[0]}': reference 2 is silent" in log and f"{tmp_path}/silent.wav" in log
    assert sorted(os.listdir(out)) == ["log"]


@pytest.mark.fault
@pytest.mark.parametrize("case", ["shorter", "missing_wav", "nan_samples"])
def test_an_unscorable_estimate_stops_scoring_naming_the_utterance_and_file(corpus, tmp_path, case):
    """An estimate 40 samples short, a listed estimate wav that is missing, or NaN samples: exit 1 naming both."""
    data, utts = corpus
    utt = utts[2]
    path = str(tmp_path / "sep" / "s1" / f"{utt}.wav")
    ref = datafiles.read_wav(datafiles.read_table(os.path.join(data, "spk1.scp"))[utt], dtype="float64")[0]
    sep = write_estimates(
        data, str(tmp_path / "sep"), {(utt, 1): {"shorter": ref[:-40], "missing_wav": None, "nan_samples": ref}[case]}
    )
    if case == "nan_samples":
        samples = ref.astype(np.float32)
        samples[100] = np.nan
        soundfile.write(path, samples, RATE, subtype="FLOAT")
    out = stale_score_dir(str(tmp_path / "score"))
    result = run("steps/score.sh", "--nj", "1", data, sep, out)
    assert result.returncode != 0
    log = open(os.path.join(out, "log", "score.1.log")).read()
    expected = {
        "shorter": f"utterance '{utt}': estimate 1 has {len(ref) - 40} samples, the references {len(ref)}",
        "missing_wav": f"utterance '{utt}': estimate 1 file {path} (listed in {sep}/spk1.scp) does not exist",
        "nan_samples": f"utterance '{utt}': cannot read estimate 1 {path}",
    }[case]
    assert expected in log and path in log
    # the job's error reaches the terminal, not only "read the log" (utils/job_errors.sh)
    assert "steps/score.sh: score.py: " in result.stderr and expected in result.stderr
    assert case != "nan_samples" or "non-finite samples (NaN or inf), the first at sample 100" in log
    assert sorted(os.listdir(out)) == ["log"]


@pytest.mark.fault
def test_merge_refuses_a_part_table_with_nan(corpus, tmp_path):
    """A part table with a 'nan' value (an older scorer's output): merge exits 1 naming file:line, writes nothing."""
    data, utts = corpus
    part = tmp_path / "part.1.tsv"
    header = "\t".join(("utt",) + metrics.METRICS + ("floored",))
    part.write_text(header + "\n" + "".join(f"{utt}\t" + "\t".join(["1.0"] * 7 + ["nan"]) + "\t-\n" for utt in utts))
    result = run("nnet/bin/score.py", "merge", data, str(tmp_path), str(part))
    assert result.returncode != 0
    assert f"{part}:2: value 'nan' of STOI is not a finite number" in result.stderr
    assert not (tmp_path / "result.txt").exists() and not (tmp_path / "per_utt.tsv").exists()


@pytest.mark.fault
def test_show_results_refuses_a_result_with_skipped_nan_values(tmp_path):
    """A result.txt of the older scorer (NaNs skipped in its means): show_results exits 1 naming it, writes nothing."""
    score_dir = tmp_path / "exp" / "sys" / "score_tt"
    score_dir.mkdir(parents=True)
    values = "".join(f"{m} 1.0\n" for m in metrics.METRICS)
    (score_dir / "result.txt").write_text(values + "num_utts 3\n" + "".join(f"nan_{m} 1\n" for m in metrics.METRICS))
    out = tmp_path / "RESULTS.md"
    result = run("utils/show_results.py", "--exp", str(tmp_path / "exp"), "--out", str(out))
    assert result.returncode != 0
    assert f"{score_dir}/result.txt: no floored_SDR" in result.stderr and "re-run steps/score.sh" in result.stderr
    assert not out.exists()


@pytest.mark.fault
def test_stoi_of_a_too_short_signal_is_its_floor_with_a_warning_not_an_error():
    """0.02 s (160 samples): pystoi raised numpy's AxisError; score_utterance refuses such utterances
    before STOI (fewer than 4096 samples), and stoi_score itself scores the floor, saying why."""
    ref = np.random.default_rng(0).standard_normal(160)
    with pytest.warns(metrics.MetricWarning, match=r"utterance 'short': STOI failed \(AxisError: .*\) on 160 samples"):
        assert metrics.stoi_score(ref, ref + 0.1, RATE, "short") == FLOOR["STOI"]
    with pytest.raises(metrics.ScoreError, match="utterance 'short': 160 samples, fewer than the 4096"):
        score(ref[None].repeat(2, 0), [ref, ref], "short", pesq_stoi=True)
