"""Issue 23: inputs that gave a wrong result with exit 0, refused now: a separation into its own data
dir, a speaker label that is a path, two data dirs of one name in one feats/, a test set named like a
variant, references that cannot be those of their mixture or are too short to score, a config that
cannot learn."""

import os
import shutil
import subprocess

import kaldiio
import numpy as np
import pytest
import yaml

import synth
from nnet import datafiles
from test_recipe_e2e import RECIPE
from test_train import ROOT, data, train, write_config  # noqa: F401 (data is a fixture)


def sh(*args, cwd=ROOT, timeout=300):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


# -- item 11: a config that cannot learn ------------------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.parametrize(
    "system, training, loss, message",
    [
        ("dc", {"lr": 0.0}, {}, "training.lr: 0.0 is not > 0 (default: 0.001)"),
        ("chimera", {}, {"alpha": 1.0}, "loss.alpha: 1.0 is not in [0, 1)"),
    ],
)
def test_a_config_that_cannot_learn_is_refused(tmp_path, data, system, training, loss, message):
    """lr 0 (nothing moves) and chimera alpha 1 (the MI head, which selects and separates, gets no gradient): exit 1."""
    path = tmp_path / "c.yaml"
    write_config(path, system, epochs=1, **training)
    config = yaml.safe_load(path.read_text())
    config["loss"].update(loss)
    path.write_text(yaml.safe_dump(config))
    proc = train(str(path), data, tmp_path / "exp", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"train.py: {path}: {message}" in proc.stderr
    assert not (tmp_path / "exp" / "last.pt").exists()


# -- items 4, 5: the data dir is not overwritten, labels do not become paths out of place -----------------------
@pytest.mark.fault
@pytest.mark.parametrize("script", ["separate.sh", "separate_oracle.sh"])
@pytest.mark.parametrize("where", ["same", "parent"])
def test_separating_into_the_data_dir_is_refused(tmp_path, script, where):
    """steps/separate.sh exp D D (or D's parent): exit 1 naming both dirs; D's references are untouched."""
    data = synth.make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    refs = {name: (tmp_path / "corpus" / "data" / name).read_bytes() for name in ("spk1.scp", "spk2.scp", "wav.scp")}
    out = data if where == "same" else os.path.dirname(data)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "best.pt").write_bytes(b"")  # never read: the dirs are refused first
    args = ["--mask", "irm", data, out] if script == "separate_oracle.sh" else [exp, data, out]
    proc = sh("bash", os.path.join(ROOT, "steps", script), "--nj", "1", *args)
    for name, content in refs.items():
        assert (tmp_path / "corpus" / "data" / name).read_bytes() == content, name
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"the output dir {out} is or contains the data dir {data}" in proc.stderr
    assert not os.path.exists(os.path.join(data, "s1"))


@pytest.mark.fault
def test_a_speaker_label_that_is_a_path_is_refused(tmp_path):
    """A --speakers line `<name> ../../../../escaped`: stage 1 exits 1 naming the file and line; an utterance
    id with '/' or '..' is refused where it would become a file name."""
    from nnet import datadir, separated_dir
    from test_data_failures import DATA_PREP, MIXTURES, corpus_with_lists

    src, _ = corpus_with_lists(tmp_path)
    speakers = tmp_path / "speakers.txt"
    names = [name for subset in MIXTURES.values() for name in subset]
    speakers.write_text(
        "".join(f"{name} {'../../../../escaped' if i == 1 else 'pair'}\n" for i, name in enumerate(names))
    )
    proc = sh(DATA_PREP, "--mixlists", "none", "--speakers", speakers, src, tmp_path / "data")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (f"{speakers}:2: speaker label '../../../../escaped' of {names[1]} holds '/' or '..'") in proc.stderr
    assert not (tmp_path / "data" / "tr").exists() and not (tmp_path.parent / "escaped").exists()
    for utt in ("../../x_utt", "a..b", "a/b"):
        with pytest.raises(ValueError, match="utterance id .* holds '/' or '..'"):
            separated_dir.source_wav(str(tmp_path / "sep"), utt, 1)
    manual = synth.make_data_dir(str(tmp_path / "manual"), num_utts=1)
    (tmp_path / "manual" / "data" / "utt2spk").write_text("a00_b00_mix000 ../evil\n")
    (tmp_path / "manual" / "data" / "spk2utt").write_text("../evil a00_b00_mix000\n")
    problems = [str(p) for p in datadir.check_data_dir(manual)[0]]
    assert any("speaker '../evil' of utterance 'a00_b00_mix000' holds '/' or '..'" in p for p in problems), problems


# -- item 6: feature archives are per data dir --------------------------------------------------------------------
@pytest.mark.fault
def test_data_dirs_of_one_basename_keep_their_own_features(tmp_path):
    """make_feats of a/data then b/data into one feats/: a/data's feats.scp still reads a/data's features."""
    a = synth.make_data_dir(str(tmp_path / "a"), num_utts=2, seed=1)
    b = synth.make_data_dir(str(tmp_path / "b"), num_utts=2, seed=2)
    feats = tmp_path / "feats"
    conf = os.path.join(RECIPE, "conf", "stft.conf")
    for d in (a, b):
        made = sh(
            "bash",
            os.path.join(ROOT, "steps/make_feats.sh"),
            "--nj",
            "1",
            "--stft-conf",
            conf,
            d,
            tmp_path / "log",
            feats,
        )
        assert made.returncode == 0, made.stderr
        if d == a:
            before = {utt: np.array(m) for utt, m in kaldiio.load_scp(os.path.join(a, "feats.scp")).items()}
    after = {utt: np.array(m) for utt, m in kaldiio.load_scp(os.path.join(a, "feats.scp")).items()}
    assert list(after) == list(before)
    for utt in before:
        np.testing.assert_array_equal(after[utt], before[utt])
    arks = {
        d: {v.rsplit(":", 1)[0] for v in datafiles.read_table(os.path.join(d, "feats.scp")).values()} for d in (a, b)
    }
    assert not arks[a] & arks[b]


# -- item 8: a test set named like a variant ------------------------------------------------------------------
@pytest.mark.fault
@pytest.mark.parametrize(
    "set_name, message",
    [
        ("tt_gl", "--test-sets: 'tt_gl' ends like the separation variant gl"),
        ("tt_small", "--test-sets: 'tt_small' has a '_', which separates a set from its variant"),
    ],
)
def test_a_test_set_named_like_a_variant_is_refused(tmp_path, set_name, message):
    """--test-sets tt_gl: refused before stage 4 (it would be the '+gl' row of set tt, and share separate_tt_gl);
    tt_small too (score_tt_small/ would stop every later RESULTS.md as an unknown variant of tt)."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(os.path.join(ROOT, name), recipe / name)
    synth.make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    (recipe / "data").mkdir()
    shutil.move(tmp_path / "corpus" / "data", recipe / "data" / set_name)
    proc = sh(
        "steps/separation_recipe.sh",
        *("--stage", "4", "--stop-stage", "5", "--nj", "1", "--systems", "oracle_irm", "--test-sets", set_name),
        cwd=recipe,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert message in proc.stderr
    assert not (recipe / "exp").exists() and not (recipe / "RESULTS.md").exists()


# -- item 10: what scoring takes from a data dir --------------------------------------------------------------
def broken_data(tmp_path, change):
    """A 2-utterance data dir whose tables or audio are changed by change(dir, tables)."""
    data = synth.make_data_dir(str(tmp_path / "corpus"), num_utts=2)
    tables = {name: datafiles.read_table(os.path.join(data, name)) for name in ("wav.scp", "spk1.scp", "spk2.scp")}
    change(data, tables)
    for name, table in tables.items():
        datafiles.write_table(os.path.join(data, name), table)
    return data, sorted(tables["wav.scp"])


def shorten(data, tables, length):
    """Every utterance `length` samples of two noises (never silent) and their sum, as 16-bit files."""
    rng = np.random.default_rng(length)
    for utt in tables["wav.scp"]:
        sources = [0.1 * rng.standard_normal(length) for _ in (1, 2)]
        for name, samples in (("spk1.scp", sources[0]), ("spk2.scp", sources[1]), ("wav.scp", sum(sources))):
            datafiles.write_wav(tables[name][utt], samples, 8000)
    datafiles.write_table(os.path.join(data, "utt2num_samples"), {utt: str(length) for utt in tables["wav.scp"]})


@pytest.mark.fault
@pytest.mark.parametrize(
    "case, message",
    [
        ("same_references", "references 1 and 2 are the same signal ({spk1}, {spk2})"),
        ("mixture_is_a_source", "the mixture {mix} is not the sum of its references"),
        ("400_samples", "400 samples, fewer than the 4096 that BSS Eval's 512-tap filters need with 2 references"),
        ("160_samples", "160 samples, fewer than the 4096 that BSS Eval's 512-tap filters need with 2 references"),
    ],
)
def test_data_that_cannot_be_scored_honestly_is_refused(tmp_path, case, message):
    """Identical references (SIR 150), a mixture that is one source (SDRi -60), utterances shorter than BSS Eval's
    filters (SAR 150; a pystoi traceback): exit 1 naming the utterance and files; no result.txt."""

    def change(data, tables):
        if case == "same_references":
            tables["spk2.scp"] = dict(tables["spk1.scp"])
        elif case == "mixture_is_a_source":
            tables["wav.scp"] = dict(tables["spk1.scp"])
        else:
            shorten(data, tables, int(case.split("_")[0]))

    data, utts = broken_data(tmp_path, change)
    out = tmp_path / "score"
    proc = sh("bash", os.path.join(ROOT, "steps/score.sh"), "--nj", "1", "--mixture", "true", data, "-", out)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    log = (out / "log" / "score.1.log").read_text()
    paths = {
        name: datafiles.read_table(os.path.join(data, name))[utts[0]] for name in ("wav.scp", "spk1.scp", "spk2.scp")
    }
    expected = message.format(mix=paths["wav.scp"], spk1=paths["spk1.scp"], spk2=paths["spk2.scp"])
    assert f"utterance '{utts[0]}': " in log and expected in log, log
    assert "Traceback" not in log
    assert not (out / "result.txt").exists()
