"""egs/mini_2mix/local/seed_claims.py: the verdict of each claim from two seeds' scores."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "egs", "mini_2mix", "local", "seed_claims.py")


def write_scores(exp, sdr_by_row):
    """exp/<system>/score_<set>[_<variant>]/result.txt for {(row, set): SDR}."""
    for (row, test_set), sdr in sdr_by_row.items():
        system, _, variant = row.partition(" +")
        folder = os.path.join(exp, system, f"score_{test_set}" + (f"_{variant}" if variant else ""))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "result.txt"), "w", encoding="utf-8") as f:
            f.write(f"SDR {sdr}\nSDRi {sdr - 0.25}\nnum_utts 100\n")


def claims(*args):
    """{claim: [cells]} of the printed table."""
    proc = subprocess.run(
        [sys.executable, SCRIPT, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ROOT},
        check=True,
    )
    rows = [line.strip("|").split("|") for line in proc.stdout.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_every_claim_needs_both_seeds_when_a_second_exp_is_given(tmp_path):
    first, second = str(tmp_path / "exp"), str(tmp_path / "exp2")
    # DEF > uPIT: +0.55 with one seed, -0.62 with the other (the 9d1710f run's figures)
    write_scores(first, {("def", "tt"): 4.75, ("upit", "tt"): 4.20, ("def", "cv"): 6.98, ("upit", "cv"): 7.53})
    write_scores(second, {("def", "tt"): 4.80, ("upit", "tt"): 5.42})
    # chimera++ > MI alone: positive with both
    write_scores(first, {("chimerapp", "tt"): 5.41, ("mi_sigmoid_tpsa_l1", "tt"): 4.18})
    write_scores(second, {("chimerapp", "tt"): 3.34, ("mi_sigmoid_tpsa_l1", "tt"): 2.50})
    # DEF > DC: negative with both
    write_scores(first, {("def_dc", "tt"): 5.92})
    write_scores(second, {("def_dc", "tt"): 5.22})
    table = claims("--exp", first, "--second-exp", second)
    assert table["DEF > uPIT"] == [
        "def vs upit",
        "4.75 vs 4.20",
        "+0.55",
        "-0.55",
        "-0.62",
        "not held: the seeds disagree",
    ]
    assert table["chimera++ > MI alone"][2:] == ["+1.23", "", "+0.84", "yes, with both seeds"]
    assert table["DEF > DC (its own DC network, k-means)"][2:] == ["-1.17", "", "-0.42", "no, with both seeds"]
    assert table["MISI > Griffin-Lim"] == ["chimerapp +misi vs chimerapp +gl", "", "", "", "", "not run"]


def test_one_seed_flags_small_margins_only(tmp_path):
    exp = str(tmp_path / "exp")
    write_scores(exp, {("dc_w_mr +rti", "tt"): 6.57, ("dc_w_mr", "tt"): 6.40, ("chimerapp", "tt"): 5.41})
    write_scores(exp, {("mi_sigmoid_tpsa_l1", "tt"): 4.18})
    table = claims("--exp", exp)
    assert table["run-time inference > k-means (W, W_MR)"][2:] == [
        "+0.17",
        "",
        "",
        "yes (under 0.3 dB: needs a second seed)",
    ]
    assert table["chimera++ > MI alone"][2:] == ["+1.23", "", "", "yes"]
    assert table["chimera++ > DC alone (W, W_MR)"][2:] == ["-0.99", "", "", "no"]


def test_suffix_compares_the_converged_systems(tmp_path):
    """--suffix _long reads <system>_long's rows (variants too), not the budget systems' beside them."""
    exp = str(tmp_path / "exp")
    write_scores(exp, {("dc_w_mr_long +rti", "tt"): 6.10, ("dc_w_mr_long", "tt"): 6.50, ("dc_w_mr", "tt"): 3.00})
    write_scores(exp, {("dc_w_mr +rti", "tt"): 4.00, ("chimerapp_long", "tt"): 7.00})
    table = claims("--exp", exp, "--suffix", "_long")
    assert table["run-time inference > k-means (W, W_MR)"] == [
        "dc_w_mr_long +rti vs dc_w_mr_long",
        "6.10 vs 6.50",
        "-0.40",
        "",
        "",
        "no",
    ]
    assert table["chimera++ > DC alone (W, W_MR)"][:3] == ["chimerapp_long vs dc_w_mr_long", "7.00 vs 6.50", "+0.50"]
    assert table["chimera++ > MI alone"] == ["chimerapp_long vs mi_sigmoid_tpsa_l1_long", "", "", "", "", "not run"]
