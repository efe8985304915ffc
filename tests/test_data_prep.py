"""local/data_prep.sh on a small wsj0-2mix style tree written here."""

import subprocess
from pathlib import Path

import numpy as np

from nnet import datadir, datafiles

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "local" / "data_prep.sh"
MIXTURES = {
    "tr": {
        "40na010x_1.9857_01xo030b_-1.9857": 1200,
        "01xo030b_0.31_22ga010f_-0.31": 900,
        "22ga010f_2.1_40na010y_-2.1": 1000,
    },
    "cv": {"40na010z_0.5_01xo030c_-0.5": 700},
    "tt": {"445c0201_1.2_053a0101_-1.2": 800, "053a0101_0.7_445c0202_-0.7": 650},
}


def make_corpus(root, mixtures=MIXTURES):
    rng = np.random.default_rng(0)
    for subset, names in mixtures.items():
        for name, length in names.items():
            for kind in ("mix", "s1", "s2"):
                datafiles.write_wav(root / subset / kind / f"{name}.wav", 0.1 * rng.standard_normal(length), 8000)
    (root / "tr" / "mix" / ".tmp.unfinished.wav").write_bytes(b"")  # an interrupted write: ignored
    lists = lists_of(root)
    lists.mkdir(parents=True, exist_ok=True)
    for subset, names in mixtures.items():  # the mix lists the corpus was made from (one line each)
        (lists / f"mix_2_spk_{subset}.txt").write_text("".join(f"wsj0/{name}.wv1 0 wsj0/x.wv1 0\n" for name in names))
    return root


def lists_of(root):
    return root.parent / (root.name + "_mixlists")


def prep(src, data, *options):
    return subprocess.run(
        [str(SCRIPT), "--mixlists", str(lists_of(src)), *options, str(src), str(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(path):
    return path.read_text().splitlines()


def test_data_prep_writes_valid_sorted_dirs(tmp_path):
    src = make_corpus(tmp_path / "wav8k" / "min")
    data = tmp_path / "data"
    result = prep(src, data)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in data.iterdir()) == ["cv", "tr", "tt"]  # no temporary dir left
    tr = data / "tr"
    expected_ids = [
        "01x_22g_01xo030b_0.31_22ga010f_-0.31",
        "22g_40n_22ga010f_2.1_40na010y_-2.1",
        "40n_01x_40na010x_1.9857_01xo030b_-1.9857",
    ]
    assert [line.split()[0] for line in lines(tr / "wav.scp")] == expected_ids  # C-sorted
    first = expected_ids[2]
    mixname = "40na010x_1.9857_01xo030b_-1.9857"
    assert f"{first} {src.resolve()}/tr/mix/{mixname}.wav" in lines(tr / "wav.scp")
    assert f"{first} {src.resolve()}/tr/s1/{mixname}.wav" in lines(tr / "spk1.scp")
    assert f"{first} {src.resolve()}/tr/s2/{mixname}.wav" in lines(tr / "spk2.scp")
    assert lines(tr / "utt2spk") == [f"{u} {u[:7]}" for u in expected_ids]
    assert lines(tr / "spk2utt") == [f"{u[:7]} {u}" for u in expected_ids]
    assert datafiles.read_table(tr / "utt2num_samples") == {
        "01x_22g_01xo030b_0.31_22ga010f_-0.31": "900",
        "22g_40n_22ga010f_2.1_40na010y_-2.1": "1000",
        first: "1200",
    }
    tt = data / "tt"
    assert lines(tt / "utt2spk") == [
        "053_445_053a0101_0.7_445c0202_-0.7 053_445",
        "445_053_445c0201_1.2_053a0101_-1.2 445_053",
    ]
    for subset in ("tr", "cv", "tt"):
        problems, num_utts, _ = datadir.check_data_dir(str(data / subset))
        assert problems == [] and num_utts == len(MIXTURES[subset])
        for name in ("wav.scp", "spk1.scp", "spk2.scp", "utt2spk", "spk2utt", "utt2num_samples"):
            keys = [line.split()[0] for line in lines(data / subset / name)]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)

    # re-run over an existing data dir: replaced by the same content
    before = {p.name: p.read_bytes() for p in tr.iterdir()}
    (tr / "feats.scp").write_text("stale\n")
    assert prep(src, data, "--sets", "tr").returncode == 0
    assert {p.name: p.read_bytes() for p in tr.iterdir()} == before


def test_data_prep_errors_name_what_is_missing(tmp_path):
    src = make_corpus(tmp_path / "wav8k" / "min", {"tr": MIXTURES["tr"], "cv": MIXTURES["cv"]})
    result = prep(src, tmp_path / "data")
    assert result.returncode == 1
    assert f"{src.resolve()}/tt/mix: no such directory" in result.stderr and "stage 0" in result.stderr
    assert not (tmp_path / "data").exists()  # checked before anything is written

    (src / "tr" / "s2" / "01xo030b_0.31_22ga010f_-0.31.wav").unlink()
    result = prep(src, tmp_path / "data", "--sets", "cv tr")
    assert result.returncode == 1
    assert f"{src.resolve()}/tr/s2/01xo030b_0.31_22ga010f_-0.31.wav is missing" in result.stderr
    assert not (tmp_path / "data" / "tr").exists() and (tmp_path / "data" / "cv" / "wav.scp").is_file()
    assert [p.name for p in (tmp_path / "data").iterdir() if p.name.startswith(".")] == []

    bad = make_corpus(tmp_path / "bad", {"tr": {"notamixture": 100}})
    result = prep(bad, tmp_path / "data2", "--sets", "tr")
    assert (
        result.returncode == 1
        and "notamixture.wav: name is not <utt1>_<snr1>_<utt2>_<snr2> (wsj0-2mix); "
        "for other names use --speakers mixture or --speakers <file>"
        in result.stderr
    )

    result = prep(tmp_path / "nowhere", tmp_path / "data3")
    assert result.returncode == 1 and "nowhere: no such directory" in result.stderr


def test_data_prep_spk2utt_lists_every_mixture_of_a_speaker_pair(tmp_path):
    """spk2utt comes from utils/utt2spk_to_spk2utt.py: one line per pair, its utterances sorted."""
    pair = {
        "40na010x_1.9857_01xo030b_-1.9857": 500,
        "40na010q_0.2_01xo030d_-0.2": 500,
        "01xo030b_0.31_22ga010f_-0.31": 500,
    }
    src = make_corpus(tmp_path / "wav8k" / "min", {"tr": pair})
    result = prep(src, tmp_path / "data", "--sets", "tr")
    assert result.returncode == 0, result.stderr
    assert lines(tmp_path / "data" / "tr" / "spk2utt") == [
        "01x_22g 01x_22g_01xo030b_0.31_22ga010f_-0.31",
        "40n_01x 40n_01x_40na010q_0.2_01xo030d_-0.2 40n_01x_40na010x_1.9857_01xo030b_-1.9857",
    ]
    tool = subprocess.run(
        [str(ROOT / "utils" / "utt2spk_to_spk2utt.py"), str(tmp_path / "data" / "tr" / "utt2spk")],
        capture_output=True,
        text=True,
    )
    assert tool.returncode == 0 and tool.stdout == (tmp_path / "data" / "tr" / "spk2utt").read_text()


FREE = {
    "tr": {"alice-bob-0001": 900, "alice-bob-0002": 800, "carol.dave.3": 700},
    "cv": {"Eve+Frank_take2": 600},
    "tt": {"0007": 500},
}


def test_any_names_with_speakers_per_mixture_or_from_a_file(tmp_path):
    """Free file names: --speakers mixture makes each mixture its own speaker pair (utterance = name);
    --speakers <file> takes '<name> <speaker>' lines (utterance <speaker>_<name>); --mixlists none
    leaves the count check out. A name missing from the file and a name with a space are errors."""
    src = make_corpus(tmp_path / "mine", FREE)
    result = prep(src, tmp_path / "data", "--speakers", "mixture", "--mixlists", "none")
    assert result.returncode == 0, result.stderr
    tr = tmp_path / "data" / "tr"
    names = sorted(FREE["tr"])
    assert lines(tr / "wav.scp") == [f"{n} {src.resolve()}/tr/mix/{n}.wav" for n in names]
    assert lines(tr / "spk2.scp") == [f"{n} {src.resolve()}/tr/s2/{n}.wav" for n in names]
    assert lines(tr / "utt2spk") == [f"{n} {n}" for n in names] and lines(tr / "spk2utt") == lines(tr / "utt2spk")
    assert lines(tmp_path / "data" / "cv" / "utt2num_samples") == ["Eve+Frank_take2 600"]

    speakers = tmp_path / "speakers.txt"
    speakers.write_text("alice-bob-0001 alice_bob\nalice-bob-0002 alice_bob\ncarol.dave.3 carol_dave\n0007 x\n")
    result = prep(src, tmp_path / "data2", "--speakers", str(speakers), "--mixlists", "none", "--sets", "tr tt")
    assert result.returncode == 0, result.stderr
    assert lines(tmp_path / "data2" / "tr" / "utt2spk") == [
        "alice_bob_alice-bob-0001 alice_bob",
        "alice_bob_alice-bob-0002 alice_bob",
        "carol_dave_carol.dave.3 carol_dave",
    ]
    assert lines(tmp_path / "data2" / "tr" / "spk2utt") == [
        "alice_bob alice_bob_alice-bob-0001 alice_bob_alice-bob-0002",
        "carol_dave carol_dave_carol.dave.3",
    ]
    problems, num_utts, _ = datadir.check_data_dir(str(tmp_path / "data2" / "tr"))
    assert problems == [] and num_utts == 3

    result = prep(src, tmp_path / "data3", "--speakers", str(speakers), "--mixlists", "none", "--sets", "cv")
    assert result.returncode == 1
    assert f'{src.resolve()}/cv/mix/Eve+Frank_take2.wav: no line "Eve+Frank_take2 <speaker>" in {speakers}' in (
        result.stderr
    )
    assert not (tmp_path / "data3" / "cv").exists()

    result = prep(src, tmp_path / "data4", "--speakers", str(tmp_path / "nofile"), "--mixlists", "none")
    assert result.returncode == 1 and "use wsj0-2mix, mixture, or a file of '<name> <speaker>' lines" in result.stderr

    spaced = make_corpus(tmp_path / "spaced", {"tr": {"alice bob 1": 300}})
    result = prep(spaced, tmp_path / "data5", "--speakers", "mixture", "--mixlists", "none", "--sets", "tr")
    assert result.returncode == 1
    assert "white space in a file name, which Kaldi tables cannot hold: rename it" in result.stderr
    assert "alice bob 1.wav" in result.stderr and not (tmp_path / "data5" / "tr").exists()

    # with lists, the count is still checked
    (lists_of(src) / "mix_2_spk_tr.txt").write_text("a 0 b 0\n")
    result = prep(src, tmp_path / "data6", "--speakers", "mixture", "--sets", "tr")
    assert result.returncode == 1 and "holds 3 mixtures" in result.stderr and "lists 1" in result.stderr
