"""tests/conftest.py: subprocesses import this checkout's nnet, not another one on their path."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_subprocess_imports_this_checkouts_nnet_before_another_on_its_path(tmp_path):
    decoy = tmp_path / "other_checkout" / "nnet"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    # what a reused .venv's editable install of another checkout does: another nnet on the path
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "") + os.pathsep + str(decoy.parent)}
    run = subprocess.run([sys.executable, "-m", "nnet.config", "keys"], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr  # the decoy has no nnet.config
    run = subprocess.run(
        [sys.executable, "-c", "import nnet; print(nnet.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.stdout.strip() == os.path.join(ROOT, "nnet", "__init__.py")
