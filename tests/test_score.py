"""steps/score.sh end to end on tiny data dirs of real wav files, and utils/show_results.py."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import synth
from nnet import datafiles, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = "utt\tSDR\tSIR\tSAR\tSDRi\tSI-SNR\tSI-SNRi\tPESQ\tSTOI\tfloored"


def run(script, *args):
    interpreter = sys.executable if script.endswith(".py") else "bash"
    return subprocess.run([interpreter, script, *args], cwd=ROOT, capture_output=True, text=True)


def score(data, sep, out, *options):
    return run(os.path.join(ROOT, "steps/score.sh"), *options, data, sep, out)


def make_separated(data, out, seed=0):
    """Estimates: the other speaker's reference, a little leakage and noise (swapped order)."""
    rng = np.random.default_rng(seed)
    refs = [datafiles.read_table(os.path.join(data, f"spk{c}.scp")) for c in (1, 2)]
    for c, (own, other) in enumerate(((1, 0), (0, 1)), 1):
        table = {}
        for utt in refs[0]:
            s_own, rate = datafiles.read_wav(refs[own][utt])
            s_other, _ = datafiles.read_wav(refs[other][utt])
            est = s_own + 0.1 * s_other + 0.003 * rng.standard_normal(len(s_own))
            table[utt] = os.path.join(out, f"s{c}", f"{utt}.wav")
            datafiles.write_wav(table[utt], est, rate)
        datafiles.write_table(os.path.join(out, f"spk{c}.scp"), table)
    return out


def read_tsv(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[0], {line.split("\t")[0]: [float(v) for v in line.split("\t")[1:-1]] for line in lines[1:]}, lines


def read_result(path):
    return {k: float(v) for k, v in datafiles.read_table(path).items()}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("score"))
    data = synth.make_data_dir(os.path.join(root, "corpus"), num_utts=3)
    sep = make_separated(data, os.path.join(root, "sep"))
    dirs = {
        "nj1": os.path.join(root, "score_nj1"),
        "nj2": os.path.join(root, "score_nj2"),
        "mix": os.path.join(root, "score_mix"),
    }
    for name, options, separated in (
        ("nj1", ["--nj", "1"], sep),
        ("nj2", ["--nj", "2"], sep),
        ("mix", ["--mixture", "true", "--nj", "1"], "-"),
    ):
        result = score(data, separated, dirs[name], *options)
        assert result.returncode == 0, result.stdout + result.stderr
    return data, sep, dirs


def test_nj1_and_nj2_write_the_same_tables(scored):
    data, _, dirs = scored
    with open(os.path.join(dirs["nj1"], "per_utt.tsv")) as a, open(os.path.join(dirs["nj2"], "per_utt.tsv")) as b:
        assert a.read() == b.read()
    with open(os.path.join(dirs["nj1"], "result.txt")) as a, open(os.path.join(dirs["nj2"], "result.txt")) as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(os.path.join(dirs["nj2"], "log"))) == ["score.1.log", "score.2.log"]
    # no part tables left; provenance.yaml: what it was scored on (nnet/provenance.py)
    assert sorted(os.listdir(dirs["nj2"])) == ["log", "per_utt.tsv", "provenance.yaml", "result.txt"]


def test_per_utt_table_and_result(scored):
    data, sep, dirs = scored
    header, rows, lines = read_tsv(os.path.join(dirs["nj1"], "per_utt.tsv"))
    assert header == HEADER
    utts = sorted(datafiles.read_table(os.path.join(data, "wav.scp")))
    assert list(rows) == utts and len(lines) == 4
    for line in lines[1:]:
        assert all(len(v.split(".")[1]) == 4 for v in line.split("\t")[1:-1]), line
        assert line.endswith("\t-"), line  # no metric at its floor
    values = np.array(list(rows.values()))
    assert np.all(values[:, 0] > 15) and np.all(values[:, 3] > 15)  # SDR, SDRi of clean estimates
    assert np.all((values[:, 6] >= -0.5) & (values[:, 6] <= 4.65)) and np.all((values[:, 7] > 0) & (values[:, 7] <= 1))

    # The table holds what nnet.metrics computes from the same files (estimates swapped).
    utt = utts[1]
    refs = np.stack(
        [datafiles.read_wav(datafiles.read_table(os.path.join(data, f"spk{c}.scp"))[utt])[0] for c in (1, 2)]
    )
    mix = datafiles.read_wav(datafiles.read_table(os.path.join(data, "wav.scp"))[utt])[0]
    ests = [datafiles.read_wav(datafiles.read_table(os.path.join(sep, f"spk{c}.scp"))[utt])[0] for c in (1, 2)]
    expected = metrics.score_utterance(refs, ests, mix, 8000, utt)
    assert expected["perm"] == (1, 0)
    np.testing.assert_allclose(rows[utt], [expected[m] for m in metrics.METRICS], atol=6e-5)

    result = read_result(os.path.join(dirs["nj1"], "result.txt"))
    assert list(result) == list(metrics.METRICS) + ["num_utts"] + [f"floored_{m}" for m in metrics.METRICS]
    np.testing.assert_allclose([result[m] for m in metrics.METRICS], values.mean(axis=0), atol=1e-4)
    assert result["num_utts"] == 3
    assert all(result[f"floored_{m}"] == 0 for m in metrics.METRICS)


def test_mixture_scores_zero_improvement(scored):
    _, _, dirs = scored
    header, rows, _ = read_tsv(os.path.join(dirs["mix"], "per_utt.tsv"))
    assert header == HEADER and len(rows) == 3
    values = np.array(list(rows.values()))
    assert np.all(values[:, 3] == 0) and np.all(values[:, 5] == 0)  # SDRi, SI-SNRi
    assert np.all(np.abs(values[:, 0]) < 6)  # two voices at similar levels
    result = read_result(os.path.join(dirs["mix"], "result.txt"))
    assert result["SDRi"] == 0 and result["num_utts"] == 3


def test_missing_estimate_fails_naming_utterance_and_scp(scored, tmp_path):
    data, sep, _ = scored
    broken = str(tmp_path / "sep")
    shutil.copytree(sep, broken)
    table = datafiles.read_table(os.path.join(broken, "spk2.scp"))
    missing = sorted(table)[0]
    del table[missing]
    datafiles.write_table(os.path.join(broken, "spk2.scp"), table)
    out = tmp_path / "score"
    out.mkdir()
    (out / "result.txt").write_text("SDR 99\n")  # a stale result must not survive a failed run
    result = score(data, broken, str(out), "--nj", "1")
    assert result.returncode != 0
    log = (out / "log" / "score.1.log").read_text()
    assert f"utterance '{missing}': no estimate 2 in {broken}/spk2.scp" in log
    assert not (out / "result.txt").exists() and not (out / "per_utt.tsv").exists()

    result = score(data, "-", str(out))  # '-' without --mixture true
    assert result.returncode != 0 and "needs --mixture true" in result.stderr


def test_three_sources_from_the_spk_scp_files_present(tmp_path):
    rng = np.random.default_rng(3)
    tables = {name: {} for name in ("wav.scp", "spk1.scp", "spk2.scp", "spk3.scp", "utt2spk")}
    sep_tables = {c: {} for c in (1, 2, 3)}
    for i in range(2):
        utt = f"a{i}_b{i}_c{i}_m{i}"
        sources = [0.6 * synth.voice(rng, 1.2, 8000, f0) for f0 in (110, 170, 250)]  # a mixture that does not clip
        datafiles.write_wav(tmp_path / "wav" / f"{utt}.wav", sum(sources), 8000)
        tables["wav.scp"][utt] = str(tmp_path / "wav" / f"{utt}.wav")
        tables["utt2spk"][utt] = f"a{i}_b{i}_c{i}"
        for c, s in enumerate(sources, 1):
            tables[f"spk{c}.scp"][utt] = str(tmp_path / f"s{c}" / f"{utt}.wav")
            datafiles.write_wav(tables[f"spk{c}.scp"][utt], s, 8000)
            sep_tables[c][utt] = str(tmp_path / "sep" / f"s{c}" / f"{utt}.wav")
            datafiles.write_wav(
                sep_tables[c][utt], s + 0.05 * sources[c % 3] + 0.003 * rng.standard_normal(len(s)), 8000
            )
    data = tmp_path / "data"
    for name, table in tables.items():
        datafiles.write_table(data / name, table)
    datafiles.write_table(data / "spk2utt", {spk: utt for utt, spk in tables["utt2spk"].items()})
    for c, table in sep_tables.items():
        datafiles.write_table(tmp_path / "sep" / f"spk{c}.scp", table)
    result = score(str(data), str(tmp_path / "sep"), str(tmp_path / "score"), "--nj", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    header, rows, _ = read_tsv(tmp_path / "score" / "per_utt.tsv")
    assert header == HEADER and len(rows) == 2
    assert all(v[0] > 15 for v in rows.values())  # 3-source SDR of estimates with 5 % leakage


def test_show_results_table(scored, tmp_path):
    _, _, dirs = scored
    exp = tmp_path / "recipe" / "exp"
    for system, test_set, source in (
        ("mixture", "tt", "mix"),
        ("sys_b", "tt", "nj1"),
        ("sys_a", "tt", "nj2"),
        ("sys_a", "cv", "nj1"),
    ):
        shutil.copytree(dirs[source], exp / system / f"score_{test_set}")
    (exp / "sys_a" / "separate_tt").mkdir()  # not a score dir: ignored
    result_file = exp / "sys_b" / "score_tt" / "result.txt"
    result_file.write_text(result_file.read_text().replace("floored_PESQ 0", "floored_PESQ 1"))

    result = run(os.path.join(ROOT, "utils/show_results.py"), str(tmp_path / "recipe"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "recipe" / "RESULTS.md").read_text()
    lines = text.splitlines()
    table_start = lines.index("| system | set | SDR | SDRi | SI-SNRi | SIR | SAR | PESQ | STOI | utts |")
    rows = [line.split(" | ")[:2] for line in lines[table_start + 2 : table_start + 6]]
    assert rows == [["| sys_a", "cv"], ["| mixture", "tt"], ["| sys_a", "tt"], ["| sys_b", "tt"]]  # by set
    mix = read_result(os.path.join(dirs["mix"], "result.txt"))
    cells = lines[table_start + 3].strip("| ").split(" | ")
    assert cells[2:] == [f"{mix[m]:.2f}" for m in ("SDR", "SDRi", "SI-SNRi", "SIR", "SAR", "PESQ")] + [
        f"{mix['STOI']:.3f}",
        "3",
    ]
    assert "- sys_b tt (3 utterances): PESQ 1\n" in text and text.count("utterances):") == 1
    for key in ("- date: `", "- python version: `", "- pytorch version: `", "- Git hash: `", "- CPU: `"):
        assert key in text
    assert [p for p in os.listdir(tmp_path / "recipe") if p.startswith(".tmp")] == []

    out = tmp_path / "other.md"
    result = run(os.path.join(ROOT, "utils/show_results.py"), "--exp", str(exp), "--out", str(out))
    assert result.returncode == 0 and "| sys_b | tt |" in out.read_text()

    result = run(os.path.join(ROOT, "utils/show_results.py"), "--exp", str(tmp_path / "none"), "--out", str(out))
    assert result.returncode != 0 and "run the scoring stage" in result.stderr


def fake_exp(scored, exp, score_dirs):
    """exp/<system>/<score dir>/ from a real score dir of the fixture, each with its own SDR
    (1.00, 2.00, ... in the order given) so that a row can be traced to its dir."""
    _, _, dirs = scored
    for n, (system, name) in enumerate(score_dirs, 1):
        shutil.copytree(dirs["nj1"], exp / system / name)
        result = exp / system / name / "result.txt"
        result.write_text(
            "".join(
                f"SDR {n}\n" if line.startswith("SDR ") else line + "\n" for line in result.read_text().splitlines()
            )
        )
        (exp / system / name.replace("score_", "separate_")).mkdir()  # not a score dir: ignored


def table_rows(results_md):
    """[(system label, set, SDR cell)] of the table of a RESULTS.md."""
    return [
        tuple(cell.strip() for cell in line.split("|")[1:4])
        for line in results_md.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| system |")
    ]


def test_show_results_variants_are_rows_after_their_system(scored, tmp_path):
    """score_<set>_{rti,gl,misi} (stage 4's run-time inference, Griffin-Lim and MISI separations of a
    trained system) are rows '<system> +<variant>' right after the system's row of the same set;
    a block of rows per set, the mixture first in each."""
    exp = tmp_path / "exp"
    fake_exp(
        scored,
        exp,
        [
            ("upit", "score_tt"),
            ("mixture", "score_tt"),
            ("mixture", "score_cv"),
            ("dc_w_mr", "score_tt_rti"),
            ("dc_w_mr", "score_tt"),
            ("dc_w_mr", "score_cv_rti"),
            ("dc_w_mr", "score_cv"),
            ("chimerapp", "score_tt_misi"),
            ("chimerapp", "score_tt_gl"),
            ("chimerapp", "score_tt"),
            ("chimerapp", "score_cv_misi"),
            ("chimerapp", "score_cv"),
            ("dc", "score_tt_rti"),
            ("dc", "score_tt"),
            ("dc_classic", "score_tt"),  # a name that extends another
            ("oracle_psm", "score_tt"),
        ],
    )
    out = tmp_path / "RESULTS.md"
    result = run(os.path.join(ROOT, "utils/show_results.py"), "--exp", str(exp), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert table_rows(out) == [
        ("mixture", "cv", "3.00"),
        ("chimerapp", "cv", "12.00"),
        ("chimerapp +misi", "cv", "11.00"),
        ("dc_w_mr", "cv", "7.00"),
        ("dc_w_mr +rti", "cv", "6.00"),
        ("mixture", "tt", "2.00"),
        ("chimerapp", "tt", "10.00"),
        ("chimerapp +gl", "tt", "9.00"),
        ("chimerapp +misi", "tt", "8.00"),
        ("dc", "tt", "14.00"),
        ("dc +rti", "tt", "13.00"),
        ("dc_classic", "tt", "15.00"),
        ("dc_w_mr", "tt", "5.00"),
        ("dc_w_mr +rti", "tt", "4.00"),
        ("oracle_psm", "tt", "16.00"),
        ("upit", "tt", "1.00"),
    ]


@pytest.mark.parametrize("name", ["score_tt_misi2", "score_tt_foo", "score_tt_rti_"])
def test_show_results_unknown_variant_is_an_error_naming_the_dir(scored, tmp_path, name):
    exp = tmp_path / "exp"
    fake_exp(scored, exp, [("mixture", "score_tt"), ("chimerapp", "score_tt"), ("chimerapp", name)])
    out = tmp_path / "RESULTS.md"
    result = run(os.path.join(ROOT, "utils/show_results.py"), "--exp", str(exp), "--out", str(out))
    assert result.returncode != 0
    assert f"{exp}/chimerapp/{name}: unknown variant" in result.stderr
    assert "one of rti, gl, misi" in result.stderr
    assert not out.exists()
