"""The mini recipe through every stage at a tiny size (few utterances, one epoch per system), run
as a user runs a copied recipe: its own dir with links to the top level, ./run.sh."""

import datetime
import os
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "egs", "mini_2mix")
TINY_CORPUS = (
    "--num-tr 8 --num-cv 4 --num-tt 4 --num-speakers-tr 4 --num-speakers-tt 2 "
    "--utts-per-speaker 4 --min-seconds 1 --max-seconds 2"
)


def tiny_configs(src, dst, num_spk=2):
    """The recipe's configs, one epoch on small networks, model.num_spk = num_spk."""
    os.makedirs(dst)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".yaml"):  # conf/tuning/README.md
            continue
        with open(os.path.join(src, name)) as f:
            config = yaml.safe_load(f)
        model = config["model"]
        model["num_spk"] = num_spk
        for key in ("units", "dc_units"):
            if key in model:
                model[key] = 16
        for key in ("layers", "dc_layers"):
            if key in model:
                model[key] = 1
        if "emb_dim" in model:
            model["emb_dim"] = 4
        config["training"].update(epochs=1, batch_size=4, segment_frames=100, num_workers=0)
        with open(os.path.join(dst, name), "w") as f:
            yaml.safe_dump(config, f)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    work = tmp_path_factory.mktemp("mycorpus")
    for name in ("run.sh", "cmd.sh", "conf"):
        src = os.path.join(RECIPE, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, work / name)
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(os.path.join(ROOT, name), work / name)
    tiny_configs(os.path.join(RECIPE, "conf", "tuning"), str(work / "tiny"))
    return work


def run_recipe(work, *args):
    return subprocess.run(
        ["./run.sh", "--nj", "2", "--tuning", "tiny", "--corpus_opts", TINY_CORPUS, *args],
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def full_run(recipe):
    """Every stage once; the other tests start from what it leaves. The open-speaker set only, to
    halve stages 4-5 (70 separation and scoring jobs with cv): cv takes the same code as tt, and
    test_sweep_alpha_trains_separates_and_scores_cv_per_alpha separates and scores cv."""
    return run_recipe(recipe, "--test_sets", "tt")


def started_and_finished(log_path):
    """The runner's '# Started at' / '# Finished at' times of a log."""
    stamps = [
        line.split(" at ", 1)[1].split(" with ")[0]
        for line in log_path.read_text().splitlines()
        if line.startswith(("# Started at", "# Finished at"))
    ]
    return [datetime.datetime.strptime(stamp, "%a %b %d %H:%M:%S %Z %Y") for stamp in stamps]


def test_every_stage_of_the_mini_recipe(recipe, full_run):
    run = full_run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for x, count in (("tr", 8), ("cv", 4), ("tt", 4)):
        assert len((recipe / "data" / x / "feats.scp").read_text().splitlines()) == count
    systems = [
        "oracle_ibm",
        "oracle_irm",
        "oracle_psm",
        "dc_w_mr",
        "dc_classic_mr",
        "mi_sigmoid_tpsa_l1",
        "upit",
        "chimerapp",
        "def_dc",
        "def",
        "def_joint",
        "dl_def",
    ]
    # the default --rti_systems and --phase_systems: separation variants of trained systems (Table 1's rows
    # "+ run-time inference", "+ Griffin-Lim", "+ MISI")
    variants = {"dc_w_mr": ["rti"], "dc_classic_mr": ["rti"], "def_dc": ["rti"], "chimerapp": ["gl", "misi"]}
    for system in systems:
        if not system.startswith("oracle_"):
            assert (recipe / "exp" / system / "best.pt").is_file(), system
            assert (recipe / "exp" / system / ".finished").is_file(), system
        for x in ("tt",):
            for suffix in [""] + ["_" + v for v in variants.get(system, [])]:
                separated = recipe / "exp" / system / f"separate_{x}{suffix}"
                assert len((separated / "spk1.scp").read_text().splitlines()) == 4, separated
                result = (recipe / "exp" / system / f"score_{x}{suffix}" / "result.txt").read_text()
                assert "num_utts 4" in result, (system, x, suffix, result)
    assert (recipe / "exp" / "dc_w_mr" / "separate_tt_rti" / "spk1.scp").is_file()
    assert (recipe / "exp" / "chimerapp" / "score_tt_misi" / "result.txt").is_file()
    assert not (recipe / "exp" / "chimerapp" / "score_cv").exists()  # --test_sets tt
    assert not (recipe / "exp" / "upit" / "separate_tt_rti").exists()  # not in --rti_systems
    for name, expected in (
        # run.sh's --rti_steps (50) reaches the matched inference
        ("dc_w_mr/separate_tt_rti", ["--matched-steps 50", "dc head + 50 steps of matched inference, mixture phase"]),
        ("chimerapp/separate_tt_gl", ["mi head, griffin-lim phase"]),
        ("chimerapp/separate_tt_misi", ["mi head, misi phase"]),
        ("chimerapp/separate_tt", ["mi head, mixture phase"]),
    ):
        log = (recipe / "exp" / name / "log" / "separate.1.log").read_text()
        assert all(text in log for text in expected), (name, expected, log)
    # the DEF chain started from its predecessors
    log = (recipe / "exp" / "def" / "log" / "train.log").read_text()
    assert "started from exp/def_dc/best.pt (init_from: def_dc)" in log
    # --train_jobs 2 (the default): two chains at once, each on half the cores
    threads = max(1, int(subprocess.run(["nproc"], capture_output=True, text=True).stdout) // 2)  # as run.sh
    for system in ("dc_w_mr", "upit", "chimerapp", "def_dc", "dl_def"):
        log = (recipe / "exp" / system / "log" / "train.log").read_text()
        assert f"--num-threads {threads}" in log.splitlines()[0], log.splitlines()[0]
        assert f"threads={threads}" in log, log[-300:]  # the runner's slots
        assert f"1 process(es) x {threads} CPU thread(s)" in log, log[:600]  # torch's
    # the first two chains of the default --systems (the DL-DEF chain, then upit) start together
    def_dc, upit = (
        started_and_finished(recipe / "exp" / system / "log" / "train.log") for system in ("def_dc", "upit")
    )
    assert upit[0] < def_dc[1] and def_dc[0] < upit[1], f"def_dc {def_dc} and upit {upit} did not train side by side"
    table = [line for line in (recipe / "RESULTS.md").read_text().splitlines() if line.startswith("| ")]
    assert table[0].startswith("| system | set | SDR | SDRi | SI-SNRi")
    # the |---| line does not start with "| "
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in table[1:]}
    labels = [label for label, _ in rows]
    assert list(rows)[0] == ("mixture", "tt") and labels[-1] == "upit"
    for x in ("tt",):
        assert {(system, x) for system in systems} <= set(rows), x
        for label in ("dc_w_mr +rti", "dc_classic_mr +rti", "def_dc +rti", "chimerapp +gl", "chimerapp +misi"):
            assert (label, x) in rows, (label, x)
    tt = [label for label, x in rows if x == "tt"]
    assert tt[tt.index("chimerapp") : tt.index("chimerapp") + 3] == ["chimerapp", "chimerapp +gl", "chimerapp +misi"]
    assert tt[tt.index("dc_w_mr") : tt.index("dc_w_mr") + 2] == ["dc_w_mr", "dc_w_mr +rti"]
    oracle_sdri = float(rows[("oracle_psm", "tt")].split("|")[4])
    assert oracle_sdri > 5.0, rows[("oracle_psm", "tt")]

    # stages re-run: finished systems are skipped, scoring redone with the same numbers
    again = run_recipe(recipe, "--stage", "3", "--stop-stage", "5", "--systems", "chimerapp", "--test_sets", "tt")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "exp/chimerapp finished training; skipped" in again.stdout
    for row in ("chimerapp", "tt"), ("chimerapp +misi", "tt"), ("chimerapp +gl", "tt"), ("dc_w_mr +rti", "tt"):
        assert rows[row] in (recipe / "RESULTS.md").read_text(), row


def test_chains_follow_init_not_the_list_order(recipe, full_run):
    run = run_recipe(recipe, "--stage", "3", "--stop-stage", "3", "--systems", "def def_dc def", "--retrain", "true")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.count("train_chains.sh: training def\n") == 1
    parent = started_and_finished(recipe / "exp" / "def_dc" / "log" / "train.log")
    child = started_and_finished(recipe / "exp" / "def" / "log" / "train.log")
    assert parent[1] <= child[0], (parent, child)
    assert sorted(name.split(".")[0] for name in os.listdir(recipe / "exp" / "old")) == ["def", "def_dc"]


def test_a_failed_chain_fails_stage_3(recipe, full_run):
    broken = recipe / "broken"
    shutil.copytree(recipe / "tiny", broken)
    (broken / "nosuch_loss.yaml").write_text((broken / "upit.yaml").read_text().replace("type: mi", "type: nosuch"))
    run = subprocess.run(
        ["./run.sh", "--stage", "3", "--stop-stage", "3", "--tuning", "broken", "--systems", "dc_w_mr nosuch_loss"],
        cwd=recipe,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 training chain(s) failed: see the errors above and exp/<system>/log/train.log" in run.stderr
    assert "nosuch" in (recipe / "exp" / "nosuch_loss" / "log" / "train.log").read_text()
    assert "exp/dc_w_mr finished training; skipped" in run.stdout


def test_unknown_system_and_option_are_errors(recipe, full_run):
    run = run_recipe(recipe, "--stage", "3", "--stop-stage", "3", "--systems", "nosuch")
    assert (
        run.returncode != 0 and "unknown system 'nosuch': there is no tiny/nosuch.yaml and no exp/nosuch" in run.stderr
    )
    run = run_recipe(recipe, "--stgae", "3")
    assert run.returncode != 0 and "--stgae" in run.stderr


def test_wsj0_2mix_recipe_on_a_prepared_tree(recipe, full_run, tmp_path):
    """egs/wsj0_2mix from stage 1 on a wsj0-2mix tree (the mini corpus has the same layout), the way
    a user with WSJ0 runs it after stage 0; --systems narrows the systems."""
    assert (recipe / "corpus" / "wav8k" / "min" / "tt" / "s2").is_dir()  # made by full_run
    work = tmp_path / "wsj0"
    os.makedirs(work)
    src = os.path.join(ROOT, "egs", "wsj0_2mix")
    for name in ("run.sh", "cmd.sh", "conf"):
        (shutil.copytree if name == "conf" else shutil.copy)(os.path.join(src, name), work / name)
    for name in ("path.sh", "steps", "utils", "local"):
        os.symlink(os.path.join(ROOT, name), work / name)
    tiny_configs(os.path.join(src, "conf", "tuning"), str(work / "tiny"))
    args = [
        "./run.sh",
        "--nj",
        "2",
        "--tuning",
        "tiny",
        "--wsj0_2mix",
        str(recipe / "corpus"),
        "--systems",
        "dc_w_mr chimerapp",
    ]

    # stage 1 checks the tree against its mix lists: without them it says where it looked
    run = subprocess.run(args + ["--stage", "1", "--stop-stage", "1"], cwd=work, capture_output=True, text=True)
    assert run.returncode == 1
    assert "downloads/mixlists/mix_2_spk_tr.txt not found: give --mixlists" in run.stderr
    assert not (work / "data" / "tr" / "wav.scp").exists()
    args += ["--mixlists", str(recipe / "corpus" / "mixlists")]

    # --ngpu 1 on a machine without a GPU (the default is 0 there): a clear error naming --ngpu 0,
    # before any training
    run = subprocess.run(
        args + ["--stage", "1", "--stop-stage", "3", "--ngpu", "1"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 1
    assert "--ngpu 1 but 0 GPU(s) visible here" in run.stderr and "with --ngpu 0 (run.sh's option" in run.stderr
    assert not (work / "exp" / "dc_w_mr").exists() and not (work / "exp" / "chimerapp").exists()
    assert len((work / "data" / "tt" / "feats.scp").read_text().splitlines()) == 4

    run = subprocess.run(
        args + ["--stage", "3", "--stop-stage", "5", "--ngpu", "0", "--test-sets", "tt"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [
        tuple(cell.strip() for cell in line.split("|")[1:3])
        for line in (work / "RESULTS.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| system")
    ]
    # the variants of the systems named in --systems only (tt alone: cv is scored alike, at twice the time)
    assert rows == [
        ("mixture", "tt"),
        ("chimerapp", "tt"),
        ("chimerapp +gl", "tt"),
        ("chimerapp +misi", "tt"),
        ("dc_w_mr", "tt"),
        ("dc_w_mr +rti", "tt"),
    ]
    for name in ("dc_w_mr/score_tt", "dc_w_mr/score_tt_rti", "chimerapp/score_tt_misi"):
        assert "num_utts 4" in (work / "exp" / name / "result.txt").read_text(), name
    assert not (work / "exp" / "dc_classic_mr").exists()  # in --rti_systems, not in --systems
    assert not (work / "exp" / "upit").exists()


def test_sweep_alpha_trains_separates_and_scores_cv_per_alpha(recipe, full_run):
    assert full_run.returncode == 0
    sweep = ["steps/sweep_alpha.sh", "--alphas", "0.2 0.7", "--epochs", "1", "--jobs", "2", "--nj", "2"]
    run = subprocess.run(
        sweep + ["tiny/chimerapp.yaml", "data/tr", "data/cv", "exp/sweep"],
        cwd=recipe,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line.split("\t") for line in (recipe / "exp" / "sweep" / "result.tsv").read_text().splitlines()]
    assert rows[0] == ["alpha", "cv_SDRi", "cv_SI-SNRi", "epochs", "best_valid_mi"]
    assert [row[0] for row in rows[1:]] == ["0.2", "0.7"]
    for alpha, sdri, _, epochs, _ in rows[1:]:
        config = yaml.safe_load((recipe / "exp" / "sweep" / f"alpha{alpha}" / "sweep.yaml").read_text())
        assert config["loss"]["alpha"] == float(alpha) and config["training"]["epochs"] == 1 == int(epochs)
        result = (recipe / "exp" / "sweep" / f"alpha{alpha}" / "score_cv" / "result.txt").read_text()
        assert f"SDRi {sdri}" in result and "num_utts 4" in result  # cv, never tt
    assert not list((recipe / "exp" / "sweep").glob("*/score_tt*"))
    run = subprocess.run(
        sweep + ["tiny/dc_w_mr.yaml", "data/tr", "data/cv", "exp/sweep_dc"],
        cwd=recipe,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode != 0 and "not a chimera++ config" in run.stderr


def copied_recipe(tmp_path, num_spk=2, source=RECIPE):
    """README's copy, literally, in a checkout-shaped dir: `cp -r egs/mini_2mix egs/mycorpus` beside
    links to the top level; tiny configs (model.num_spk = num_spk) in egs/mycorpus/tiny."""
    for name in ("path.sh", "steps", "utils", "local"):  # the top level a copied recipe's links reach
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    (tmp_path / "egs").mkdir()
    subprocess.run(["cp", "-r", source, str(tmp_path / "egs" / "mycorpus")], check=True)
    work = tmp_path / "egs" / "mycorpus"
    # a run of the source in this clone (README's quick start) is not the copy's: its corpus, data,
    # features, trained systems and results stay behind (stage 3 would refuse those systems anyway)
    for name in ("corpus", "data", "feats", "exp", "RESULTS.md"):
        shutil.rmtree(work / name) if (work / name).is_dir() else (work / name).unlink(missing_ok=True)
    tiny_configs(os.path.join(work, "conf", "tuning"), str(work / "tiny"), num_spk)
    return work


def write_corpus(root, names, num_spk, seed):
    """<root>/{tr,cv,tt}/{mix,s1..sN}/<name>.wav: N synthetic voices at spread pitches per mixture."""
    import numpy as np

    from nnet import datafiles
    from synth import voice

    rng = np.random.default_rng(seed)
    for subset, mixtures in names.items():
        for name in mixtures:
            sources = [voice(rng, 1.2, 8000, rng.uniform(90, 120) * 1.7**c) for c in range(num_spk)]
            peak = np.abs(sum(sources)).max()  # scaled as corpora are, so that the mixture is their sum
            sources = [s * min(1.0, 0.9 / peak) for s in sources]
            datafiles.write_wav(root / subset / "mix" / f"{name}.wav", sum(sources), 8000)
            for c, samples in enumerate(sources, 1):
                datafiles.write_wav(root / subset / f"s{c}" / f"{name}.wav", samples, 8000)


def run_copied(work, *options):
    run = subprocess.run(
        ["./run.sh", "--stage", "1", "--nj", "1", "--tuning", "tiny", "--test-sets", "tt", *options],
        cwd=work,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def test_a_copied_recipe_on_a_corpus_with_free_names(tmp_path):
    """README's "Copying a recipe to a new corpus", followed literally: stages 1-5 on
    <dir>/{tr,cv,tt}/{mix,s1,s2}/<any name>.wav with --speakers mixture --mixlists none (one small
    system; every table keyed by the file names)."""
    from nnet import datafiles

    work = copied_recipe(tmp_path)
    names = {"tr": [f"alice-bob-{i:04d}" for i in range(6)], "cv": ["carol.dave.1", "carol.dave.2"]}
    names["tt"] = ["Eve+Frank_take1", "0042"]
    write_corpus(tmp_path / "recordings", names, 2, seed=5)
    run_copied(
        work,
        *("--wav-dir", str(tmp_path / "recordings"), "--speakers", "mixture", "--mixlists", "none"),
        *("--systems", "oracle_irm chimerapp", "--rti-systems", "", "--phase-systems", ""),
    )
    for subset, mixtures in names.items():
        assert list(datafiles.read_table(work / "data" / subset / "wav.scp")) == sorted(mixtures)
        assert len((work / "data" / subset / "feats.scp").read_text().splitlines()) == len(mixtures)
    assert list(datafiles.read_table(work / "exp" / "chimerapp" / "separate_tt" / "spk1.scp")) == [
        "0042",
        "Eve+Frank_take1",
    ]
    assert (work / "exp" / "chimerapp" / "separate_tt" / "s2" / "Eve+Frank_take1.wav").is_file()
    results = (work / "RESULTS.md").read_text()
    assert "| chimerapp | tt |" in results and "| oracle_irm | tt |" in results
    assert "num_utts 2" in (work / "exp" / "chimerapp" / "score_tt" / "result.txt").read_text()


def test_three_speakers_run_stages_1_to_5(tmp_path):
    """A tiny wsj0-3mix-style corpus (MERL's 3-speaker names and mix_3_spk lists), --num-spk 3 and
    model.num_spk: 3: oracle masks, DC k-means with 3 clusters and matched inference, uPIT's 6
    permutations each write and score 3 sources per mixture (chimera++ adds no other C-dependent code)."""
    from nnet import datafiles

    work = copied_recipe(tmp_path, num_spk=3)
    spk = ("m01", "f02", "m03", "f04", "m05")
    names = {}
    for subset, count in (("tr", 6), ("cv", 2), ("tt", 2)):
        names[subset] = [
            f"{spk[i % 5]}a{i:04d}_1.2_{spk[(i + 1) % 5]}b{i:04d}_-0.4_{spk[(i + 2) % 5]}c{i:04d}_-0.8"
            for i in range(count)
        ]
    write_corpus(tmp_path / "wsj0-3mix", names, 3, seed=6)
    lists = tmp_path / "mixlists"
    lists.mkdir()
    for subset, mixtures in names.items():
        (lists / f"mix_3_spk_{subset}.txt").write_text(
            "".join(f"a{i} 1.2 b{i} -0.4 c{i} -0.8\n" for i in range(len(mixtures)))
        )
    run_copied(
        work,
        *("--wav-dir", str(tmp_path / "wsj0-3mix"), "--mixlists", str(lists), "--num-spk", "3"),
        *("--systems", "oracle_irm dc_w_mr upit", "--rti-systems", "dc_w_mr", "--phase-systems", ""),
    )
    tt = sorted(names["tt"])
    group = {n: "_".join(n.split("_")[c][:3] for c in (0, 2, 4)) for n in tt}  # m01_f02_m03
    assert datafiles.read_table(work / "data" / "tt" / "utt2spk") == {f"{group[n]}_{n}": group[n] for n in tt}
    for system in ("oracle_irm", "dc_w_mr", "upit"):
        for suffix in ("", "_rti") if system == "dc_w_mr" else ("",):
            separated = work / "exp" / system / f"separate_tt{suffix}"
            assert [len(datafiles.read_table(separated / f"spk{c}.scp")) for c in (1, 2, 3)] == [2, 2, 2], separated
            assert not (separated / "spk4.scp").exists()
            result = (work / "exp" / system / f"score_tt{suffix}" / "result.txt").read_text()
            assert "num_utts 2" in result, (system, result)
            assert sorted(os.listdir(separated / "s3")) == sorted(f"{group[n]}_{n}.wav" for n in tt)
    assert [line.split(" ")[0] for line in (work / "data" / "tt" / "spk3.scp").read_text().splitlines()] == sorted(
        datafiles.read_table(work / "data" / "tt" / "wav.scp")
    )
