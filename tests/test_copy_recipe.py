"""Issue 26, item 6: utils/copy_recipe.sh starts a recipe for a new corpus with what configures a
run (run.sh, cmd.sh, conf/) and the links to the shared code, and leaves behind what belongs to the
source's corpus: its outputs, RESULTS.md and pretrained/."""

import filecmp
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPY = os.path.join(ROOT, "utils", "copy_recipe.sh")


def copy(src, dest):
    return subprocess.run([COPY, str(src), str(dest)], capture_output=True, text=True)


def test_a_copy_takes_the_configuration_and_links_and_leaves_the_source_results(tmp_path):
    source = tmp_path / "mini"
    result = copy(os.path.join(ROOT, "egs", "mini_2mix"), source)
    assert result.returncode == 0, result.stderr
    # the published results (a run's RESULTS.md is untracked) and the demo model stay with the source
    # (after the main job, README's quick start, the run's outputs are listed too)
    left = result.stdout.split("left behind in ", 1)[1].split(": ", 1)[1].split()
    assert {"RESULTS.published.md", "pretrained"} <= set(left), result.stdout
    # a source that has been run: its outputs, results and model stay with it
    for name in ("data/tr", "exp/chimerapp", "feats", "corpus", "downloads", "pretrained"):
        (source / name).mkdir(parents=True)
    (source / "RESULTS.md").write_text("| chimerapp | tt | 5.41 |\n")
    (source / "pretrained" / "mini_chimerapp.zip").write_bytes(b"PK")
    dest = tmp_path / "mycorpus"
    result = copy(source, dest)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(dest)) == ["cmd.sh", "conf", "local", "path.sh", "run.sh", "steps", "utils"]
    for name in ("path.sh", "steps", "utils", "local"):
        assert os.path.islink(dest / name) and os.path.realpath(dest / name) == os.path.join(ROOT, name)
    assert filecmp.cmp(source / "run.sh", dest / "run.sh", shallow=False) and os.access(dest / "run.sh", os.X_OK)
    left = result.stdout.split("left behind in")[1]
    assert all(name in left.split() for name in ("RESULTS.md", "corpus", "data", "downloads", "exp", "feats"))
    help_text = subprocess.run(["./run.sh", "--help"], cwd=dest, capture_output=True, text=True)
    assert help_text.returncode == 0 and "--stage 0" in help_text.stdout, help_text.stderr


def test_linked_configs_become_the_copys_own_files(tmp_path):
    """egs/librimix/conf/tuning links to egs/wsj0_2mix's configs: a copy edited through such a link
    would change that recipe; the copy gets the files instead."""
    dest = tmp_path / "noisy"
    result = copy(os.path.join(ROOT, "egs", "librimix"), dest)
    assert result.returncode == 0, result.stderr
    tuning = dest / "conf" / "tuning"
    assert tuning.is_dir() and not tuning.is_symlink()
    wsj0 = os.path.join(ROOT, "egs", "wsj0_2mix", "conf", "tuning")
    assert sorted(os.listdir(tuning)) == sorted(os.listdir(wsj0))
    assert not any(os.path.islink(tuning / name) for name in os.listdir(tuning))


def test_an_existing_destination_or_a_source_that_is_no_recipe_is_refused(tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    result = copy(os.path.join(ROOT, "egs", "mini_2mix"), dest)
    assert result.returncode == 1 and f"{dest} exists: give a new dir (nothing was copied)" in result.stderr
    assert os.listdir(dest) == ["mine.txt"]
    result = copy(tmp_path / "nothing", tmp_path / "new")
    assert result.returncode == 1 and f"{tmp_path}/nothing/run.sh not found" in result.stderr
    assert not (tmp_path / "new").exists() and [p for p in os.listdir(tmp_path) if p.startswith(".")] == []
