"""utils/show_convergence.py: the verdict of each system's history.tsv."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "epoch\ttrain_loss\tvalid_loss\tlr\tseconds\tframes_per_s\n"


def write_history(exp, system, losses):
    (exp / system).mkdir(parents=True)
    rows = "".join(f"{e}\t1.0\t{v}\t2.0e-03\t10.0\t100.0\n" for e, v in enumerate(losses, 1))
    (exp / system / "history.tsv").write_text(HEADER + rows)


def test_verdicts_of_three_histories(tmp_path):
    exp = tmp_path / "exp"
    write_history(exp, "a_overfits", [0.30, 0.25, 0.24, 0.245, 0.25])  # best at epoch 3 of 5; epoch 5 = epoch 2
    write_history(exp, "b_flat", [0.30, 0.25, 0.2400, 0.2395, 0.2390, 0.2385])  # -0.63% over 3 epochs
    write_history(exp, "c_improving", [0.30, 0.28, 0.26, 0.24, 0.22])  # -21% over 3 epochs (0.22 against 0.28)
    run = subprocess.run(
        [sys.executable, str(ROOT / "utils/show_convergence.py"), "--exp", str(exp)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in run.stdout.splitlines()[2:]
    }
    assert rows["a_overfits"] == ["5", "3", "0.3000 / 0.2500", "+0.00%", "best before the last"]
    assert rows["b_flat"] == ["6", "6", "0.3000 / 0.2385", "-0.63%", "flat"]
    assert rows["c_improving"] == ["5", "5", "0.3000 / 0.2200", "-21.43%", "still improving"]
