"""The data-dir tools of utils/, run as commands: validate, fix, split, subset, filter_scp, spk2utt."""

import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile

from nnet import datadir, datafiles

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = [
    "validate_data_dir.py",
    "fix_data_dir.py",
    "split_data.py",
    "subset_data_dir.py",
    "filter_scp.py",
    "utt2spk_to_spk2utt.py",
]
# Speaker pairs and their utterances: ids are prefixed by the pair, as in the recipes.
UTTS = {
    "f1_m1": ["f1_m1_a", "f1_m1_b", "f1_m1_c"],
    "f2_m1": ["f2_m1_a"],
    "f2_m2": ["f2_m2_a", "f2_m2_b"],
    "m3_f1": ["m3_f1_a"],
}
ALL_UTTS = sorted(u for utts in UTTS.values() for u in utts)


def run(tool, *args, cwd=None, stdin=None):
    """Run utils/<tool> with the venv python, without PYTHONPATH: the script finds nnet itself."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["LC_ALL"] = "C"
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "utils", tool), *map(str, args)],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture
def data(tmp_path):
    """A valid data dir tmp_path/data with real wav files: 7 utterances, 4 speakers."""
    rng = np.random.default_rng(0)
    d = tmp_path / "data"
    d.mkdir()
    tables = {n: [] for n in ("wav.scp", "spk1.scp", "spk2.scp", "utt2spk", "utt2num_samples")}
    for utt in ALL_UTTS:
        n = 400 + 10 * len(tables["utt2spk"])
        for kind, table in (("mix", "wav.scp"), ("s1", "spk1.scp"), ("s2", "spk2.scp")):
            path = tmp_path / "wav" / kind / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            soundfile.write(path, 0.1 * rng.standard_normal(n), 8000, subtype="PCM_16")
            tables[table].append(f"{utt} {path}")
        tables["utt2spk"].append(f"{utt} {utt.rsplit('_', 1)[0]}")
        tables["utt2num_samples"].append(f"{utt} {n}")
    for name, lines in tables.items():
        write(d / name, lines)
    write(d / "spk2utt", [f"{spk} {' '.join(utts)}" for spk, utts in sorted(UTTS.items())])
    return d


def validate(d, *options, cwd=None):
    return run("validate_data_dir.py", *options, d, cwd=cwd)


def line_number(path, key):
    return [line.split()[0] for line in lines_of(path)].index(key) + 1


# ---------------------------------------------------------------- every tool: usage
@pytest.mark.parametrize("tool", TOOLS)
def test_help_prints_the_usage_and_wrong_arguments_fail(tool):
    helped = run(tool, "--help")
    assert helped.returncode == 0
    assert f"utils/{tool}" in helped.stdout and "usage:" in helped.stdout
    for wrong_args in (["--no-such-option", "a", "b", "c"], ["a", "b", "c", "d"]):
        wrong = run(tool, *wrong_args)
        assert wrong.returncode == 2
        assert f"utils/{tool}" in wrong.stderr and f"{tool}: error: " in wrong.stderr
        assert wrong.stdout == ""


# ---------------------------------------------------------------- validate_data_dir.py
def test_validate_accepts_a_good_dir(data):
    result = validate(data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1
    assert "is valid: 7 utterances, 4 speakers" in result.stdout


def test_validate_unsorted_key(data):
    lines = lines_of(data / "wav.scp")
    lines[2], lines[3] = lines[3], lines[2]  # f1_m1_c f2_m1_a -> swapped
    write(data / "wav.scp", lines)
    result = validate(data)
    assert result.returncode == 1
    assert (
        f"{data}/wav.scp:4: key 'f1_m1_c' is not sorted (after 'f2_m1_a'); run utils/fix_data_dir.py {data}"
    ) in result.stderr.splitlines()


def test_validate_reports_every_problem_with_its_line(data):
    spk1 = lines_of(data / "spk1.scp")
    write(data / "spk1.scp", spk1[:2] + [spk1[1].replace(".wav", "_again.wav")] + spk1[2:])
    num_samples = lines_of(data / "utt2num_samples")
    num_samples[0] = "f1_m1_a 0"
    num_samples[4] = "f2_m2_a -3"
    num_samples[5] = "f2_m2_b 1.5"
    num_samples[6] = "m3_f1_a abc"
    write(data / "utt2num_samples", num_samples)
    wav = lines_of(data / "wav.scp")
    write(data / "wav.scp", wav[:3] + [""] + wav[3:6] + ["m3_f1_a"])
    errors = validate(data).stderr.splitlines()
    assert (
        f"{data}/spk1.scp:3: duplicate key 'f1_m1_b' (first on line 2); run utils/fix_data_dir.py {data} "
        "(it keeps the first)" in errors
    )
    for lineno, utt, value in [(1, "f1_m1_a", "0"), (5, "f2_m2_a", "-3"), (6, "f2_m2_b", "1.5"), (7, "m3_f1_a", "abc")]:
        assert (
            f"{data}/utt2num_samples:{lineno}: value '{value}' of utterance '{utt}' is not a positive "
            "integer; regenerate utt2num_samples (data preparation stage)"
        ) in errors
    assert f"{data}/wav.scp:4: empty line; run utils/fix_data_dir.py {data}" in errors
    assert any(e.startswith(f"{data}/wav.scp:8: key 'm3_f1_a' has no value") for e in errors)
    assert errors[-1] == f"validate_data_dir.py: {data}: 7 problem(s) found"
    assert len(errors) == 8


def test_validate_missing_wav_file(data, tmp_path):
    missing = tmp_path / "wav" / "s2" / "f2_m2_a.wav"
    missing.unlink()
    result = validate(data)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"{data}/spk2.scp:5: file '{missing}' of utterance 'f2_m2_a' does not exist; check the path "
        "(relative paths are read from the current directory) or remove the utterance"
    )
    assert validate(data, "--no-check-files").returncode == 0


def test_validate_relative_paths(data, tmp_path):
    wav = lines_of(data / "wav.scp")
    wav[1] = "f1_m1_b wav/mix/f1_m1_b.wav"  # relative to the current directory
    write(data / "wav.scp", wav)
    assert validate(data, cwd=tmp_path).returncode == 0
    elsewhere = validate(data, cwd=data)
    assert elsewhere.returncode == 1
    assert f"{data}/wav.scp:2: file 'wav/mix/f1_m1_b.wav' of utterance 'f1_m1_b' does not exist" in elsewhere.stderr


@pytest.mark.fault
@pytest.mark.parametrize("options", [(), ("--no-check-files",)])
def test_a_kaldi_pipe_is_refused_naming_the_line_and_what_to_do(data, tmp_path, options):
    """`sox x.wav -t wav - |` in wav.scp passed validation and was later 'no such file': refused now,
    also by --no-check-files (utils/split_data.py's check), saying that pipes are not run."""
    wav = lines_of(data / "wav.scp")
    wav[0] = "f1_m1_a sox wav/mix/f1_m1_a.wav -t wav - |"
    write(data / "wav.scp", wav)
    result = validate(data, *options, cwd=tmp_path)
    assert result.returncode == 1
    assert (
        f"{data}/wav.scp:1: value 'sox wav/mix/f1_m1_a.wav -t wav - |' of utterance 'f1_m1_a' is a Kaldi pipe "
        "('<command> |'), which cocktail does not run: write the command's audio to a wav file first and list "
        "that file"
    ) in result.stderr


@pytest.mark.fault
def test_reading_a_kaldi_pipe_says_pipes_are_not_run():
    """A program that reads a table's value directly (scoring, separation) says the same, not 'no such file'."""
    with pytest.raises(datafiles.AudioError, match=r"^sox a.wav -t wav - \|: a Kaldi pipe \('<command> \|'\), which"):
        datafiles.read_wav("sox a.wav -t wav - |")


def test_validate_mismatched_keys(data):
    spk2 = lines_of(data / "spk2.scp")
    write(data / "spk2.scp", spk2[:4] + spk2[5:])  # drops f2_m2_a
    write(data / "utt2num_samples", lines_of(data / "utt2num_samples") + ["zz_extra 5"])
    errors = validate(data).stderr.splitlines()
    assert f"{data}/utt2spk:5: utterance 'f2_m2_a' is missing from spk2.scp; run utils/fix_data_dir.py {data}" in errors
    assert (
        f"{data}/utt2num_samples:8: utterance 'zz_extra' is not in utt2spk; run utils/fix_data_dir.py {data}" in errors
    )
    assert len(errors) == 3


def test_validate_inconsistent_spk2utt(data):
    write(
        data / "spk2utt",
        ["f1_m1 f1_m1_a f1_m1_c f1_m1_b", "f2_m1 f2_m1_a f2_m2_b", "f2_m2 f2_m2_a", "m3_f1 m3_f1_a zz_unknown"],
    )
    errors = validate(data).stderr.splitlines()
    fix = f"run utils/fix_data_dir.py {data}"
    assert errors[:-1] == [
        f"{data}/spk2utt:1: utterances of speaker 'f1_m1' are not sorted ('f1_m1_b' after 'f1_m1_c'); {fix}",
        f"{data}/spk2utt:2: utterance 'f2_m2_b' is listed under speaker 'f2_m1' but utt2spk gives 'f2_m2'; {fix}",
        f"{data}/spk2utt:4: utterance 'zz_unknown' of speaker 'm3_f1' is not in utt2spk; {fix}",
    ]
    write(data / "spk2utt", ["f1_m1 f1_m1_a f1_m1_b f1_m1_c", "f2_m2 f2_m2_a f2_m2_b", "m3_f1 m3_f1_a"])
    errors = validate(data).stderr.splitlines()
    assert errors[0] == f"{data}/utt2spk:4: speaker 'f2_m1' of utterance 'f2_m1_a' is not in spk2utt; {fix}"


def test_validate_required_files_and_feats(data, tmp_path):
    nowhere = validate(tmp_path / "nowhere")
    assert nowhere.returncode == 1 and f"{tmp_path}/nowhere: not a directory" in nowhere.stderr
    (data / "spk2utt").unlink()
    result = validate(data, "--no-check-files")
    assert result.stderr.splitlines()[0] == (
        f"{data}/spk2utt: missing; run utils/fix_data_dir.py {data} (it rebuilds spk2utt from utt2spk)"
    )
    assert run("utt2spk_to_spk2utt.py", data / "utt2spk").stdout == "".join(
        f"{spk} {' '.join(u)}\n" for spk, u in sorted(UTTS.items())
    )
    write(data / "spk2utt", run("utt2spk_to_spk2utt.py", data / "utt2spk").stdout.splitlines())
    assert validate(data).returncode == 0

    need = validate(data, "--need-feats")
    assert f"{data}/feats.scp: missing; run steps/make_feats.sh first" in need.stderr
    ark = tmp_path / "feats" / "raw.ark"
    ark.parent.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{ark},{ark}.scp") as writer:
        for u in ALL_UTTS:
            writer(u, np.zeros((3, 2), dtype=np.float32))
    good = lines_of(f"{ark}.scp")
    feats = list(good)
    feats[3] = f"{ALL_UTTS[3]} {ark}"  # no offset
    feats[5] = f"{ALL_UTTS[5]} {tmp_path}/gone.ark:12"
    write(data / "feats.scp", feats)
    errors = validate(data, "--need-feats").stderr.splitlines()
    assert errors[:2] == [
        f"{data}/feats.scp:4: value '{ark}' of utterance 'f2_m1_a' is not '<ark-file>:<offset>'; "
        "rerun steps/make_feats.sh",
        f"{data}/feats.scp:6: ark file '{tmp_path}/gone.ark' of utterance 'f2_m2_b' does not exist; "
        "rerun steps/make_feats.sh",
    ]
    assert validate(data, "--no-feats").returncode == 0
    write(data / "feats.scp", good)
    assert validate(data, "--need-feats").returncode == 0


# ---------------------------------------------------------------- split_data.py
def part_keys(split_dir, n):
    return [[line.split()[0] for line in lines_of(split_dir / str(i) / "utt2spk")] for i in range(1, n + 1)]


@pytest.mark.parametrize("n,sizes", [(1, [7]), (3, [3, 2, 2]), (4, [2, 2, 2, 1]), (7, [1] * 7)])
def test_split_sizes_and_contents(data, n, sizes):
    result = run("split_data.py", data, n)
    assert result.returncode == 0, result.stderr
    split = data / f"split{n}"
    parts = part_keys(split, n)
    assert [len(p) for p in parts] == sizes
    assert sum(parts, []) == ALL_UTTS  # contiguous chunks of the sorted keys
    for i, keys in enumerate(parts, 1):
        part = split / str(i)
        for name in ("wav.scp", "spk1.scp", "spk2.scp", "utt2num_samples"):
            whole = dict(line.split(maxsplit=1) for line in lines_of(data / name))
            assert lines_of(part / name) == [f"{k} {whole[k]}" for k in keys]
        checked = validate(part)
        assert checked.returncode == 0, checked.stderr
        assert f"{len(keys)} utterances" in checked.stdout


def test_split_near_equal_for_many_sizes():
    for total in range(1, 40):
        for n in range(1, total + 1):
            parts = datadir.split_evenly(list(range(total)), n)
            sizes = [len(p) for p in parts]
            assert len(parts) == n and sum(parts, []) == list(range(total))
            assert max(sizes) - min(sizes) <= 1


def test_split_per_speaker(data):
    assert run("split_data.py", "--per-spk", data, 3).returncode == 0
    spk_parts = [{u.rsplit("_", 1)[0] for u in keys} for keys in part_keys(data / "split3", 3)]
    assert spk_parts == [{"f1_m1", "f2_m1"}, {"f2_m2"}, {"m3_f1"}]
    assert lines_of(data / "split3" / "1" / "spk2utt") == ["f1_m1 f1_m1_a f1_m1_b f1_m1_c", "f2_m1 f2_m1_a"]
    too_many = run("split_data.py", "--per-spk", data, 5)
    assert too_many.returncode == 1
    assert "cannot split 4 speakers into 5 parts with --per-spk; use at most 4 parts" in too_many.stderr


def test_split_errors(data):
    too_many = run("split_data.py", data, 8)
    assert too_many.returncode == 1
    assert f"{data}: cannot split 7 utterances into 8 parts; use at most 7 parts" in too_many.stderr
    assert not (data / "split8").exists()
    assert "at least 1" in run("split_data.py", data, 0).stderr
    lines = lines_of(data / "spk1.scp")
    write(data / "spk1.scp", lines[1:] + lines[:1])
    broken = run("split_data.py", data, 2)
    assert broken.returncode == 1
    assert f"{data}/spk1.scp:7: key 'f1_m1_a' is not sorted (after 'm3_f1_a')" in broken.stderr
    assert not (data / "split2").exists()


def test_split_is_deterministic_and_reuses_an_up_to_date_split(data):
    assert "wrote" in run("split_data.py", data, 3).stderr
    first = {p: (data / "split3" / p).read_text() for p in ("1/wav.scp", "2/utt2spk", "3/spk2utt")}
    stamp = os.stat(data / "split3" / "1" / "wav.scp").st_mtime_ns
    again = run("split_data.py", data, 3)
    assert again.returncode == 0 and "reused" in again.stderr
    assert os.stat(data / "split3" / "1" / "wav.scp").st_mtime_ns == stamp

    def make_split_older():  # as if a source table changed after the split
        made = os.stat(data / "split3" / ".split_info").st_mtime - 5
        os.utime(data / "split3" / ".split_info", (made, made))

    make_split_older()
    assert "wrote" in run("split_data.py", data, 3).stderr
    assert {p: (data / "split3" / p).read_text() for p in first} == first
    assert "reused" in run("split_data.py", data, 3).stderr
    assert "wrote" in run("split_data.py", "--per-spk", data, 3).stderr  # made another way
    assert part_keys(data / "split3", 3)[0] == UTTS["f1_m1"] + UTTS["f2_m1"]

    ark = data / "feats.ark"
    ark.write_bytes(b"")
    write(data / "feats.scp", [f"{u} {ark}:{i}" for i, u in enumerate(ALL_UTTS)])
    old = os.stat(data / "split3" / ".split_info").st_mtime - 5
    os.utime(data / "feats.scp", (old, old))
    assert "wrote" in run("split_data.py", "--per-spk", data, 3).stderr  # a new table, even an old one
    assert lines_of(data / "split3" / "2" / "feats.scp") == [f"f2_m2_a {ark}:4", f"f2_m2_b {ark}:5"]
    (data / "cmvn").write_bytes(b"stats of the set")
    (data / "stft.conf").write_text("--frame-length-ms=32\n")
    assert "wrote" in run("split_data.py", "--per-spk", data, 3).stderr
    assert (data / "split3" / "3" / "cmvn").read_bytes() == b"stats of the set"
    assert (data / "split3" / "1" / "stft.conf").read_text() == "--frame-length-ms=32\n"
    assert "reused" in run("split_data.py", "--per-spk", data, 3).stderr
    assert [p for p in os.listdir(data) if p.startswith(".")] == []  # no temp dir left


# ---------------------------------------------------------------- fix_data_dir.py
def test_fix_keeps_the_intersection_and_backs_up(data):
    originals = {n: (data / n).read_text() for n in ("wav.scp", "spk1.scp", "utt2spk", "spk2utt")}
    spk1 = lines_of(data / "spk1.scp")
    write(data / "spk1.scp", spk1[:5] + spk1[6:])  # f2_m2_b has no reference 1
    wav = lines_of(data / "wav.scp")
    write(data / "wav.scp", list(reversed(wav)) + ["zz_only_here /x.wav", wav[0] + ".dup", ""])
    utt2spk = lines_of(data / "utt2spk")
    write(data / "utt2spk", utt2spk[:1] + ["f1_m1_a someone_else"] + utt2spk[1:])
    broken = {n: (data / n).read_text() for n in ("wav.scp", "spk1.scp", "utt2spk")}

    result = run("fix_data_dir.py", data)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert (
        f"fix_data_dir.py: {data}/wav.scp: dropped 2 line(s): line 9 (duplicate key 'f1_m1_a', kept line 7), "
        "line 10 (empty)" in out
    )
    assert f"fix_data_dir.py: {data}/utt2spk: dropped 1 line(s): line 2 (duplicate key 'f1_m1_a', kept line 1)" in out
    assert f"fix_data_dir.py: {data}: removed 1 utterance(s) missing from spk1.scp: 'f2_m2_b'" in out
    assert (
        f"fix_data_dir.py: {data}: removed 1 utterance(s) missing from utt2spk, spk1.scp, spk2.scp, "
        "utt2num_samples: 'zz_only_here'" in out
    )
    assert out[-1].endswith(f"now 6 utterances, 4 speakers; the previous files are in {data}/.backup/1")

    kept = [u for u in ALL_UTTS if u != "f2_m2_b"]
    assert validate(data).returncode == 0
    for name in ("wav.scp", "spk1.scp", "spk2.scp", "utt2spk", "utt2num_samples"):
        assert [line.split()[0] for line in lines_of(data / name)] == kept
    assert lines_of(data / "wav.scp") == [
        line for line in originals["wav.scp"].splitlines() if not line.startswith("f2_m2_b")
    ]
    assert "f2_m2 f2_m2_a" in lines_of(data / "spk2utt")
    backup = data / ".backup" / "1"
    # spk1.scp was already right: kept as it was, without backup
    assert sorted(os.listdir(backup)) == ["spk2.scp", "spk2utt", "utt2num_samples", "utt2spk", "wav.scp"]
    assert (data / "spk1.scp").read_text() == broken["spk1.scp"]
    assert {n: (backup / n).read_text() for n in ("wav.scp", "utt2spk")} == {
        n: broken[n] for n in ("wav.scp", "utt2spk")
    }
    assert (backup / "spk2utt").read_text() == originals["spk2utt"]

    nothing = run("fix_data_dir.py", data)
    assert nothing.returncode == 0
    assert nothing.stdout == f"fix_data_dir.py: {data}: nothing to fix (6 utterances, 4 speakers)\n"
    assert os.listdir(data / ".backup") == ["1"]

    fixed_wav = (data / "wav.scp").read_text()
    write(data / "wav.scp", list(reversed(lines_of(data / "wav.scp"))))
    assert run("fix_data_dir.py", data).returncode == 0
    assert sorted(os.listdir(data / ".backup")) == ["1", "2"]  # the first backup is kept
    assert os.listdir(data / ".backup" / "2") == ["wav.scp"]
    assert (data / "wav.scp").read_text() == fixed_wav
    assert (backup / "wav.scp").read_text() == broken["wav.scp"]


def test_fix_reports_what_it_cannot_repair(data):
    num_samples = lines_of(data / "utt2num_samples")
    num_samples[2] = "f1_m1_c 0"
    write(data / "utt2num_samples", num_samples)
    result = run("fix_data_dir.py", data)
    assert result.returncode == 1
    assert f"{data}/utt2num_samples:3: value '0' of utterance 'f1_m1_c' is not a positive integer" in result.stderr
    (data / "utt2spk").unlink()
    result = run("fix_data_dir.py", data)
    assert result.returncode == 1
    assert f"{data}/utt2spk: missing" in result.stderr
    write(data / "utt2spk", ["other_1 other"])
    result = run("fix_data_dir.py", data)
    assert result.returncode == 1 and "no utterance is in every table" in result.stderr
    assert not (data / ".backup").exists()


# ---------------------------------------------------------------- subset_data_dir.py
def subset_keys(d):
    return [line.split()[0] for line in lines_of(d / "utt2spk")]


def test_subset_variants(data, tmp_path):
    dest = tmp_path / "sub"
    (data / "cmvn").write_bytes(b"stats of the set")
    result = run("subset_data_dir.py", "--first", 3, data, dest)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"subset_data_dir.py: wrote 3 of 7 utterances (1 speakers) of {data} to {dest}\n"
    assert subset_keys(dest) == ALL_UTTS[:3]
    assert validate(dest).returncode == 0
    assert sorted(os.listdir(dest)) == [
        "cmvn",
        "spk1.scp",
        "spk2.scp",
        "spk2utt",
        "utt2num_samples",
        "utt2spk",
        "wav.scp",
    ]
    assert (dest / "cmvn").read_bytes() == b"stats of the set"

    assert run("subset_data_dir.py", "--last", 2, data, dest).returncode == 0
    assert subset_keys(dest) == ALL_UTTS[-2:]
    assert lines_of(dest / "spk2utt") == ["f2_m2 f2_m2_b", "m3_f1 m3_f1_a"]

    write(tmp_path / "utts", ["m3_f1_a", "f1_m1_b extra columns are ignored", "nobody"])
    result = run("subset_data_dir.py", "--utt-list", tmp_path / "utts", data, dest)
    assert result.returncode == 0
    assert "1 utterances of" in result.stderr and "'nobody'" in result.stderr
    assert subset_keys(dest) == ["f1_m1_b", "m3_f1_a"]
    assert validate(dest).returncode == 0

    write(tmp_path / "spks", ["f2_m1", "f2_m2"])
    assert run("subset_data_dir.py", "--spk-list", tmp_path / "spks", data, dest).returncode == 0
    assert subset_keys(dest) == ["f2_m1_a", "f2_m2_a", "f2_m2_b"]
    assert lines_of(dest / "spk2utt") == ["f2_m1 f2_m1_a", "f2_m2 f2_m2_a f2_m2_b"]


def test_subset_errors(data, tmp_path):
    too_many = run("subset_data_dir.py", "--first", 8, data, tmp_path / "sub")
    assert too_many.returncode == 1 and "asked for 8 utterances; " in too_many.stderr
    assert not (tmp_path / "sub").exists()
    same = run("subset_data_dir.py", "--first", 1, data, data)
    assert same.returncode == 1 and "is <src>" in same.stderr
    assert len(lines_of(data / "utt2spk")) == 7
    write(tmp_path / "none", ["nobody"])
    empty = run("subset_data_dir.py", "--spk-list", tmp_path / "none", data, tmp_path / "sub")
    assert empty.returncode == 1 and "no utterance" in empty.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    occupied = run("subset_data_dir.py", "--first", 1, data, tmp_path / "other")
    assert occupied.returncode == 1 and "exists and is not a data dir" in occupied.stderr
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    write(data / "utt2spk", list(reversed(lines_of(data / "utt2spk"))))
    broken = run("subset_data_dir.py", "--first", 1, data, tmp_path / "sub")
    assert broken.returncode == 1 and f"{data}/utt2spk:2: key" in broken.stderr


# ---------------------------------------------------------------- filter_scp.py, utt2spk_to_spk2utt.py
def test_filter_scp(tmp_path):
    write(tmp_path / "ids", ["b", "", "d whatever", "x"])
    write(tmp_path / "table", ["a x", "b y", "c x", "d z"])
    keep = run("filter_scp.py", tmp_path / "ids", tmp_path / "table")
    assert keep.returncode == 0 and keep.stdout == "b y\nd z\n"
    assert run("filter_scp.py", "--exclude", tmp_path / "ids", tmp_path / "table").stdout == "a x\nc x\n"
    assert run("filter_scp.py", "-f", 2, tmp_path / "ids", tmp_path / "table").stdout == "a x\nc x\n"
    piped = run("filter_scp.py", "--exclude", "-f", 2, tmp_path / "ids", stdin="a x\nb y\nc  z w\n")
    assert piped.stdout == "b y\nc  z w\n"
    short = run("filter_scp.py", "-f", 3, tmp_path / "ids", tmp_path / "table")
    assert short.returncode == 1
    assert f"{tmp_path}/table:1: 2 field(s), -f 3 needs 3" in short.stderr
    assert run("filter_scp.py", tmp_path / "missing", tmp_path / "table").returncode == 1


def test_utt2spk_to_spk2utt(tmp_path):
    made = run("utt2spk_to_spk2utt.py", stdin="b_2 b\na_1 a\nb_1 b\n")
    assert made.returncode == 0 and made.stdout == "a a_1\nb b_1 b_2\n"
    write(tmp_path / "utt2spk", ["u1 s", "u2 s", "u1 t"])
    dup = run("utt2spk_to_spk2utt.py", tmp_path / "utt2spk")
    assert dup.returncode == 1
    assert f"{tmp_path}/utt2spk:3: duplicate key 'u1'" in dup.stderr


def test_wav_to_num_samples_reads_each_header_in_wav_scp_order(tmp_path):
    """utils/wav_to_num_samples.py (data_prep.sh's utt2num_samples, without sox): each file's sample
    count, in the table's order; a file that is not audio is named with the table."""
    lengths = {"b_utt": 1234, "a_utt": 800, "c_utt": 16001}
    for utt, n in lengths.items():
        soundfile.write(tmp_path / f"{utt}.wav", np.zeros(n), 8000, subtype="PCM_16")
    write(tmp_path / "wav.scp", [f"{utt} {tmp_path}/{utt}.wav" for utt in lengths])
    proc = run("wav_to_num_samples.py", tmp_path / "wav.scp")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["b_utt 1234", "a_utt 800", "c_utt 16001"]
    (tmp_path / "a_utt.wav").write_text("not audio")
    proc = run("wav_to_num_samples.py", tmp_path / "wav.scp")
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"wav_to_num_samples.py: {tmp_path}/wav.scp: {tmp_path}/a_utt.wav" in proc.stderr, proc.stderr
