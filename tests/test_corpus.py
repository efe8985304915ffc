"""nnet/corpus.py (P.56 active level, mixing), local/create_wsj0_2mix.py, local/download_mixlists.sh and
local/make_mini_2mix.sh, on small data generated here."""

import importlib.util
import math
import os
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.optimize

from nnet import corpus, datafiles, dsp

ROOT = Path(__file__).resolve().parent.parent
LSB = 1 / 32768  # one step of a 16-bit wav read back as float


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create = load_script("create_wsj0_2mix")


# ---------------------------------------------------------------- activlev, worked out by hand
# Hand model of P.56 method B for a 1 kHz tone of amplitude A (power P = A^2/2) lasting T seconds with
# silence around it. The envelope (two cascaded one-pole smoothers, tau = 0.03 s) of |A sin| settles at
# mean|A sin| = 2A/pi; its step response is 1-(1+x)e^-x on the rise and (1+x)e^-x on the decay, x = t/tau.
# A sample is active from the rise through the threshold until the decay under it, plus the 0.2 s
# hangover. The threshold lies 15.9 dB (the margin) below the level ~ P, within one 3 dB bin either way
# (the crossing is interpolated between two thresholds), i.e. at a fraction r of the envelope plateau:
#   r = sqrt(10^-1.59 P / (2A/pi)^2) * 2^(+-1/4) = 0.178 * [0.84, 1.19], lowered a little more (0.97)
#   because the level is slightly under P.
# Active time = T + 0.2 + decay(r) - rise(r); the level is the energy P*T over it; the activity is the
# active time over the analysed length (the signal plus the 0.35 s of zeros activlev appends).
TAU = 0.03  # P.56 values, written out: the test must not take them from the code it checks
MARGIN_DB = 15.9
PADDING_S = 0.35


def rise_minus_decay_bounds():
    def step(x):
        return (1 + x) * math.exp(-x)

    def extra(r):  # decay - rise, seconds, for a threshold at a fraction r of the plateau
        rise = scipy.optimize.brentq(lambda x: 1 - step(x) - r, 0, 50) * TAU
        decay = scipy.optimize.brentq(lambda x: step(x) - r, 0, 50) * TAU
        return decay - rise

    nominal = math.sqrt(10 ** (-MARGIN_DB / 10) / (8 / math.pi**2))
    return extra(nominal * 2**0.25), extra(nominal * 2**-0.25 * 0.97)  # smaller r: longer tail


@pytest.mark.parametrize("rate", [8000, 16000])
def test_activlev_tone_with_silence(rate):
    amplitude, seconds, pad = 0.5, 4.0, 1.0
    t = np.arange(int(seconds * rate)) / rate
    tone = amplitude * np.sin(2 * np.pi * 1000 * t)  # 1 kHz: flat passband of the 200 Hz-5.5 kHz filter
    signal = np.concatenate([np.zeros(int(pad * rate)), tone, np.zeros(int(pad * rate))])
    level, activity = corpus.activlev(signal, rate)
    power = amplitude**2 / 2
    short, long = rise_minus_decay_bounds()  # about 0.066 and 0.085 s
    slack = 0.005  # seconds: the hangover's extra sample, the tone's on/off transients, float rounding
    active = (seconds + 0.2 + short - slack, seconds + 0.2 + long + slack)
    assert power * seconds / active[1] <= level <= power * seconds / active[0]
    analysed = seconds + 2 * pad + PADDING_S
    assert active[0] / analysed <= activity <= active[1] / analysed
    # the same tone without the silence around it has the same level
    level_alone, activity_alone = corpus.activlev(tone, rate)
    assert level_alone == pytest.approx(level, rel=1e-6)
    assert activity_alone > activity


def test_activlev_white_noise():
    # White noise: every sample is active (plus the hangover into the appended zeros), so the level is
    # the variance times the fraction of the band the input filter passes. At 8 kHz only the 200 Hz
    # highpass acts: its -0.25 dB point is 200 Hz and its stopband (50 dB) starts near 80 Hz, so the
    # fraction lies in [(4000-200)/4000, (4000-80)/4000]. At 16 kHz the 5.5 kHz lowpass acts too: passband
    # 200-5500 Hz, stopband edges ~80 Hz and ~6.9 kHz -> [5300/8000, 6850/8000].
    rng = np.random.default_rng(0)
    seconds = 20.0
    for rate, band in ((8000, (3800 / 4000, 3920 / 4000)), (16000, (5300 / 8000, 6850 / 8000))):
        noise = 0.1 * rng.standard_normal(int(seconds * rate))
        variance = noise.var()
        level, activity = corpus.activlev(noise, rate)
        low = variance * band[0] * seconds / (seconds + 0.35)
        high = variance * band[1] * seconds / (seconds + 0.15)
        assert low <= level <= high, (rate, level / variance)
        assert (seconds + 0.15) / (seconds + PADDING_S) <= activity <= 1.0


def test_activlev_scales_with_power_and_silence():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(16000) * np.repeat(rng.uniform(0, 1, 16), 1000)
    level, activity = corpus.activlev(x, 8000)
    level4, activity4 = corpus.activlev(4 * x, 8000)  # a power of 2: the same bins, exactly 16x the level
    assert level4 == pytest.approx(16 * level, rel=1e-12)
    assert activity4 == pytest.approx(activity, rel=1e-12)
    assert corpus.activlev(np.zeros(8000), 8000) == (0.0, 0.0)
    with pytest.raises(ValueError, match="silent"):
        corpus.source_gain(np.zeros(8000), 0.0)


def test_mix_sources_modes_and_peak():
    s1 = np.linspace(-1, 2, 50)
    s2 = np.full(80, 0.5)
    mix, (a, b) = corpus.mix_sources([s1, s2], "min")
    assert len(mix) == len(a) == len(b) == 50
    assert max(np.abs(mix).max(), np.abs(a).max(), np.abs(b).max()) == pytest.approx(corpus.PEAK)
    np.testing.assert_allclose(mix, a + b)
    np.testing.assert_allclose(a / s1[:50], a[0] / s1[0])  # one gain for all
    mix, (a, b) = corpus.mix_sources([s1, s2], "max")
    assert len(mix) == 80 and np.all(a[50:] == 0) and b[-1] != 0
    with pytest.raises(ValueError, match="min' or 'max"):
        corpus.mix_sources([s1, s2], "mean")
    with pytest.raises(ValueError, match="2 or more sources"):
        corpus.mix_sources([s1], "min")


def test_mix_sources_quiet_mixture_is_raised_to_0_9():
    # MERL's create_wav_2speakers.m: mix_scaling = 1/max_amp*0.9, max_amp over mix, s1, s2 -- also when
    # every peak is below 1 (pywsj0-mix's max(1, peaks)/0.9 would scale by 0.9 here instead).
    s1 = np.array([0.2, -0.4, 0.1, 0.0])
    s2 = np.array([0.1, -0.1, 0.3, 0.25])  # mix = [0.3, -0.5, 0.4, 0.25]: loudest |mix| = 0.5
    for mode in ("min", "max"):
        mix, (a, b) = corpus.mix_sources([s1, s2], mode)
        np.testing.assert_allclose(a, 1.8 * s1, rtol=1e-12, atol=0)  # 0.9 / 0.5, not 0.9
        np.testing.assert_allclose(b, 1.8 * s2, rtol=1e-12, atol=0)
        np.testing.assert_allclose(mix, [0.54, -0.9, 0.72, 0.45], rtol=1e-12, atol=0)
        assert np.abs(mix).max() == pytest.approx(0.9, rel=1e-12)


def test_mix_sources_loud_mixture_source_peak_to_0_9():
    # peaks above 1, and the loudest of the three is a source (s1), not the mix: s1 opposes s2 at sample 0
    s1 = np.array([3.0, 0.5, -1.0])
    s2 = np.array([-1.2, 0.5, 0.2, 0.7])
    for mode, n in (("min", 3), ("max", 4)):
        mix, (a, b) = corpus.mix_sources([s1, s2], mode)
        assert len(mix) == len(a) == len(b) == n
        assert max(np.abs(mix).max(), np.abs(a).max(), np.abs(b).max()) == pytest.approx(0.9, rel=1e-12)
        assert a[0] == pytest.approx(0.9, rel=1e-12)
        gain = 0.9 / 3.0  # one gain for all three
        np.testing.assert_allclose(a[:3], s1 * gain, rtol=1e-12, atol=0)
        np.testing.assert_allclose(b, s2[:n] * gain, rtol=1e-12, atol=0)
        np.testing.assert_allclose(mix, a + b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(mix[:3], (s1 + s2[:3]) * gain, rtol=1e-12, atol=1e-15)
    assert a[3] == 0 and b[3] == pytest.approx(0.21, rel=1e-12)  # max mode pads s1 with zeros


def test_mix_sources_three_worked_by_hand():
    # MERL's create_wav_3speakers.m: cut to the shortest / pad to the longest of the three, s1 + s2 + s3,
    # one gain 0.9 / max_amp over mix, s1, s2, s3. The loudest here is s3 alone (its sample 1 is -2.0,
    # which s1 and s2 partly cancel in the mix: -2.0 + 0.5 + 0.7 = -0.8).
    s1 = np.array([0.1, 0.5, 0.2, 0.3, 0.4])
    s2 = np.array([0.2, 0.7, -0.1])
    s3 = np.array([0.3, -2.0, 0.4, 0.1])
    for mode, n in (("min", 3), ("max", 5)):
        mix, (a, b, c) = corpus.mix_sources([s1, s2, s3], mode)
        gain = 0.9 / 2.0
        assert len(mix) == len(a) == len(b) == len(c) == n
        pad = [np.pad(s[:n], (0, n - len(s[:n]))) for s in (s1, s2, s3)]
        for got, want in zip((a, b, c), pad):
            np.testing.assert_allclose(got, want * gain, rtol=1e-12, atol=0)
        np.testing.assert_allclose(mix, (pad[0] + pad[1] + pad[2]) * gain, rtol=1e-12, atol=1e-15)
        assert c[1] == pytest.approx(-0.9, rel=1e-12)
    np.testing.assert_allclose(mix, [0.27, -0.36, 0.225, 0.18, 0.18], rtol=1e-12, atol=1e-15)  # max


# ---------------------------------------------------------------- create_wsj0_2mix.py on a tiny tree


def speech_like(rng, seconds, rate=16000):
    """Harmonic bursts (syllables) separated by pauses: a signal with silences, as speech has."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = rng.uniform(100, 250)
    voiced = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    gate = (np.sin(2 * np.pi * rng.uniform(2, 4) * t) > -0.2).astype(float)
    return 0.2 * rng.uniform(0.3, 1.0) * voiced * gate


LIST_TR = (
    "wsj0/si_tr_s/01a/01aa0101.wv1 1.9857 wsj0/si_tr_s/02b/02ba0102.wv1 -1.9857\n"
    "wsj0/si_tr_s/02b/02ba0103.wv1 0.3125 wsj0/si_tr_s/01a/01aa0101.wv1 -0.3125\n"
    "wsj0/si_tr_s/03c/03ca0104.wv1 2.5 wsj0/si_tr_s/02b/02ba0102.wv1 -2.5\n"
)
LIST_TT = "wsj0/si_et_05/44d/44da0105.wv1 0.75 wsj0/si_dt_05/55e/55ea0106.wv1 -0.75\n"
SECONDS = {"01aa0101": 1.6, "02ba0102": 2.3, "02ba0103": 1.1, "03ca0104": 2.0, "44da0105": 1.3, "55ea0106": 1.7}


@pytest.fixture
def tiny(tmp_path):
    """A WSJ0-like tree of .wav files and mix lists naming the .wv1 files."""
    rng = np.random.default_rng(7)
    root = tmp_path / "wsj0root"
    sources = {}
    for utt, seconds in SECONDS.items():
        folder = {"44d": "si_et_05", "55e": "si_dt_05"}.get(utt[:3], "si_tr_s")
        samples = speech_like(rng, seconds)
        datafiles.write_wav(root / "wsj0" / folder / utt[:3] / f"{utt}.wav", samples, 16000)
        sources[utt] = datafiles.read_wav(root / "wsj0" / folder / utt[:3] / f"{utt}.wav", dtype="float64")[0]
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "mix_2_spk_tr.txt").write_text(LIST_TR)
    (lists / "mix_2_spk_tt.txt").write_text(LIST_TT)
    return {"root": root, "lists": lists, "out": tmp_path / "out", "sources": sources}


def run_create(tiny, *extra, root=None):
    return create.main(
        [
            "--wsj0",
            str(root or tiny["root"]),
            "--mixlists",
            str(tiny["lists"]),
            "--out",
            str(tiny["out"]),
            "--sets",
            "tr,tt",
            *extra,
        ]
    )


def read(path):
    return datafiles.read_wav(path, dtype="float64")


def level_db(samples, rate):
    return 10 * math.log10(corpus.activlev(samples, rate)[0])


def test_create_names_lengths_levels_and_peak(tiny):
    assert run_create(tiny) == 0
    out = tiny["out"]
    for line in (LIST_TR + LIST_TT).splitlines():
        w1, snr1, w2, snr2 = line.split()
        u1, u2 = Path(w1).stem, Path(w2).stem
        name = f"{u1}_{snr1}_{u2}_{snr2}.wav"
        subset = "tt" if "si_et_05" in w1 else "tr"
        n16 = {u: len(tiny["sources"][u]) for u in (u1, u2)}
        n8 = {u: math.ceil(n / 2) for u, n in n16.items()}
        gains = {}
        for rate, lengths in (("8k", n8), ("16k", n16)):
            for mode, pick in (("min", min), ("max", max)):
                d = out / f"wav{rate}" / mode / subset
                mix, fs = read(d / "mix" / name)
                s1, _ = read(d / "s1" / name)
                s2, _ = read(d / "s2" / name)
                assert fs == corpus.RATES[rate]
                assert len(mix) == len(s1) == len(s2) == pick(lengths.values())
                peak = max(np.abs(mix).max(), np.abs(s1).max(), np.abs(s2).max())
                assert abs(peak - 0.9) <= 2 * LSB
                np.testing.assert_allclose(mix, s1 + s2, atol=3 * LSB)
                if mode == "max":
                    # The written sources, measured again: their level difference is the listed SNR
                    # difference. In max mode nothing is cut and padding zeros do not change a P.56 level,
                    # so only 16-bit rounding (~90 dB below the level) separates them: 0.05 dB is ample.
                    if rate == "8k":
                        diff = level_db(s1, 8000) - level_db(s2, 8000)
                        assert diff == pytest.approx(float(snr1) - float(snr2), abs=0.05)
                    # gain of each written source relative to its original (8 kHz: the resampled one)
                    for s, u in ((s1, u1), (s2, u2)):
                        orig = tiny["sources"][u]
                        if rate == "8k":
                            orig = dsp.resample(orig, 16000, 8000)
                        n = len(orig)
                        gains[rate, u] = float(np.dot(s[:n], orig) / np.dot(orig, orig))
        # 16 kHz uses the gains measured at 8 kHz (MERL's script): the same ratio between the sources
        assert gains["16k", u1] / gains["16k", u2] == pytest.approx(gains["8k", u1] / gains["8k", u2], rel=1e-3)


def test_create_accepts_the_wsj0_folder_itself_and_jobs_split_lines(tiny):
    assert (
        run_create(
            tiny, "--sample-rates", "8k", "--modes", "min", "--job", "2", "--num-jobs", "2", root=tiny["root"] / "wsj0"
        )
        == 0
    )
    tr = sorted(p.name for p in (tiny["out"] / "wav8k/min/tr/mix").iterdir())
    assert tr == ["02ba0103_0.3125_01aa0101_-0.3125.wav"]  # job 2 of 2: the second line only
    assert not (tiny["out"] / "wav16k").exists() and not (tiny["out"] / "wav8k/max").exists()
    assert not list((tiny["out"] / "wav8k/min").glob("tt/*/*.wav"))  # tt has one line: job 1's
    assert run_create(tiny, "--sample-rates", "8k", "--modes", "min", "--job", "1", "--num-jobs", "2") == 0
    assert len(list((tiny["out"] / "wav8k/min/tr/mix").iterdir())) == 3
    assert len(list((tiny["out"] / "wav8k/min/tt/s2").iterdir())) == 1


def test_create_rerun_skips_finished_mixtures(tiny, capsys):
    assert run_create(tiny, "--sample-rates", "8k", "--modes", "min") == 0
    files = sorted((tiny["out"] / "wav8k/min").glob("*/*/*.wav"))
    assert len(files) == 12
    stamps = {p: p.stat().st_mtime_ns for p in files}
    victim = tiny["out"] / "wav8k/min/tr/s2/01aa0101_1.9857_02ba0102_-1.9857.wav"
    victim.unlink()
    capsys.readouterr()
    assert run_create(tiny, "--sample-rates", "8k", "--modes", "min") == 0
    printed = capsys.readouterr().out
    assert "tr: job 1/1: 3 of 3 mixtures, 1 written, 2 already there" in printed
    assert "tt: job 1/1: 1 of 1 mixtures, 0 written, 1 already there" in printed
    assert victim.is_file()
    for p, stamp in stamps.items():
        if "01aa0101_1.9857" not in p.name:
            assert p.stat().st_mtime_ns == stamp


def test_create_missing_source_names_list_line_and_path(tiny, capsys):
    (tiny["lists"] / "mix_2_spk_tr.txt").write_text(
        LIST_TR + "wsj0/si_tr_s/09z/09za0199.wv1 1.0 wsj0/si_tr_s/01a/01aa0101.wv1 -1.0\n"
    )
    assert run_create(tiny, "--sample-rates", "8k", "--modes", "min") == 1
    err = capsys.readouterr().err
    assert f"{tiny['lists'] / 'mix_2_spk_tr.txt'}:4: source wsj0/si_tr_s/09z/09za0199.wv1 not found" in err
    assert str(tiny["root"] / "wsj0/si_tr_s/09z/09za0199.wav") in err
    assert "--wsj0" in err


def test_create_bad_inputs(tiny, capsys, monkeypatch):
    # a listed .wv1 with no .wav next to it needs sph2pipe
    (tiny["root"] / "wsj0/si_tr_s/01a/01aa0101.wav").rename(tiny["root"] / "wsj0/si_tr_s/01a/01aa0101.wv1")
    monkeypatch.setenv("PATH", str(tiny["root"] / "no-tools-here"))
    assert run_create(tiny, "--sample-rates", "8k", "--modes", "min") == 1
    err = capsys.readouterr().err
    assert "mix_2_spk_tr.txt:1:" in err and "01aa0101.wv1" in err and "sph2pipe is not on PATH" in err
    # .wv2, a malformed line, a missing list
    (tiny["lists"] / "mix_2_spk_tr.txt").write_text("wsj0/si_tr_s/01a/01aa0101.wv2 1 wsj0/x/y.wv1 -1\n")
    assert run_create(tiny) == 1
    assert "mix_2_spk_tr.txt:1: wsj0/si_tr_s/01a/01aa0101.wv2 is a second-microphone" in capsys.readouterr().err
    (tiny["lists"] / "mix_2_spk_tr.txt").write_text("\nwsj0/a.wv1 1.0 wsj0/b.wv1\n")
    assert run_create(tiny) == 1
    assert "mix_2_spk_tr.txt:2: expected '<wav1> <snr1> <wav2> <snr2>'" in capsys.readouterr().err
    (tiny["lists"] / "mix_2_spk_tr.txt").unlink()
    assert run_create(tiny) == 1
    err = capsys.readouterr().err
    assert "mix_2_spk_tr.txt not found" in err and "download_mixlists.sh" in err and "--mixlists" in err
    assert not tiny["out"].exists()  # nothing written before the inputs are known good


# ---------------------------------------------------------------- wsj0-3mix: create_wsj0_2mix.py --num-spk 3

LIST3_TR = (
    "wsj0/si_tr_s/01a/01aa0101.wv1 2.1 wsj0/si_tr_s/02b/02ba0102.wv1 -0.5 wsj0/si_tr_s/03c/03ca0104.wv1 -1.6\n"
    "wsj0/si_tr_s/02b/02ba0103.wv1 0 wsj0/si_tr_s/01a/01aa0101.wv1 1.25 wsj0/si_tr_s/03c/03ca0104.wv1 -3.5\n"
)
LIST3_TT = (
    "wsj0/si_et_05/44d/44da0105.wv1 -1.5 wsj0/si_dt_05/55e/55ea0106.wv1 0.75 wsj0/si_tr_s/02b/02ba0102.wv1 0.75\n"
)


def test_create_three_speakers_names_sum_peak_and_levels(tiny):
    """MERL's create_wav_3speakers.m: every source at unit active level times 10^(snr/20), cut to the
    shortest (min) or padded to the longest (max), mix = s1 + s2 + s3, one gain to a peak of 0.9."""
    (tiny["lists"] / "mix_3_spk_tr.txt").write_text(LIST3_TR)
    (tiny["lists"] / "mix_3_spk_tt.txt").write_text(LIST3_TT)
    assert run_create(tiny, "--num-spk", "3") == 0
    out = tiny["out"]
    for line in (LIST3_TR + LIST3_TT).splitlines():
        fields = line.split()
        utts, snrs = [Path(w).stem for w in fields[0::2]], fields[1::2]
        name = "_".join(f"{u}_{snr}" for u, snr in zip(utts, snrs)) + ".wav"
        subset = "tt" if "si_et_05" in line else "tr"
        n16 = [len(tiny["sources"][u]) for u in utts]
        for rate, lengths in (("8k", [math.ceil(n / 2) for n in n16]), ("16k", n16)):
            for mode, pick in (("min", min), ("max", max)):
                d = out / f"wav{rate}" / mode / subset
                assert sorted(p.name for p in d.iterdir()) == ["mix", "s1", "s2", "s3"]
                mix, fs = read(d / "mix" / name)
                srcs = [read(d / f"s{c}" / name)[0] for c in (1, 2, 3)]
                assert fs == corpus.RATES[rate]
                assert {len(mix)} | {len(x) for x in srcs} == {pick(lengths)}
                peak = max(np.abs(x).max() for x in (mix, *srcs))
                assert abs(peak - 0.9) <= 2 * LSB
                np.testing.assert_allclose(mix, srcs[0] + srcs[1] + srcs[2], atol=4 * LSB)  # 16-bit rounding
                if rate == "8k" and mode == "max":  # nothing cut: the active levels differ by the listed SNRs
                    levels = [level_db(x, 8000) for x in srcs]
                    for c in (1, 2):
                        diff = levels[c] - levels[0]
                        assert diff == pytest.approx(float(snrs[c]) - float(snrs[0]), abs=0.05), (name, c)
    # only the three-speaker lists were read
    assert len(list((out / "wav8k/min/tr/mix").iterdir())) == 2 and len(list((out / "wav8k/min/tt/s3").iterdir())) == 1


def test_create_three_speakers_wrong_field_count_and_missing_list(tiny, capsys):
    lists = tiny["lists"]
    (lists / "mix_3_spk_tt.txt").write_text(LIST3_TT)
    (lists / "mix_3_spk_tr.txt").write_text(LIST3_TR + LIST_TR.splitlines()[0] + "\n")  # a two-speaker line
    assert run_create(tiny, "--num-spk", "3") == 1
    err = capsys.readouterr().err
    assert (
        f"{lists / 'mix_3_spk_tr.txt'}:3: expected '<wav1> <snr1> <wav2> <snr2> <wav3> <snr3>' "
        "(6 fields for --num-spk 3), got 4 fields"
    ) in err
    # the other way round: a three-speaker line in a two-speaker list
    (lists / "mix_2_spk_tr.txt").write_text(LIST3_TR)
    assert run_create(tiny) == 1
    assert "mix_2_spk_tr.txt:1: expected '<wav1> <snr1> <wav2> <snr2>' (4 fields for --num-spk 2), got 6" in (
        capsys.readouterr().err
    )
    (lists / "mix_3_spk_tr.txt").unlink()
    assert run_create(tiny, "--num-spk", "3") == 1
    err = capsys.readouterr().err
    assert "mix_3_spk_tr.txt not found" in err and "download_mixlists.sh --num-spk 3" in err
    assert run_create(tiny, "--num-spk", "4") == 1
    assert "--num-spk 4: use 2 (wsj0-2mix) or 3 (wsj0-3mix)" in capsys.readouterr().err
    assert not tiny["out"].exists()  # nothing written before the inputs are known good


# ---------------------------------------------------------------- download_mixlists.sh (no network here)


def test_download_mixlists_offline_error_and_local_archive(tmp_path):
    script = ROOT / "local" / "download_mixlists.sh"
    dest = tmp_path / "lists"
    result = subprocess.run(
        [str(script), "--url", "http://127.0.0.1:9/create-speaker-mixtures.zip", "--timeout", "5", str(dest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "could not download http://127.0.0.1:9/create-speaker-mixtures.zip" in result.stderr
    assert "--mixlists DIR" in result.stderr and f"put the three lists into {dest}" in result.stderr
    assert not list(dest.iterdir())  # no partial download left behind

    archive = tmp_path / "create-speaker-mixtures.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for s in ("tr", "cv", "tt"):
            z.writestr(f"create-speaker-mixtures/mix_2_spk_{s}.txt", LIST_TR)
        z.writestr("create-speaker-mixtures/mix_3_spk_tr.txt", "a 1 b 2 c 3\n")
    env = dict(os.environ, COCKTAIL_MIXLISTS_URL=archive.as_uri())
    result = subprocess.run([str(script), str(dest)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["mix_2_spk_cv.txt", "mix_2_spk_tr.txt", "mix_2_spk_tt.txt"]
    assert (dest / "mix_2_spk_tt.txt").read_text() == LIST_TR
    # present lists: nothing is fetched (the bad URL is never tried)
    result = subprocess.run(
        [str(script), "--url", "http://127.0.0.1:9/x.zip", str(dest)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "already" in result.stdout


def test_download_mixlists_three_speakers(tmp_path):
    """--num-spk 3 keeps MERL's mix_3_spk lists of the same archive, checks their 6 fields, and takes a
    local copy already in place; offline it names the three lists it needs."""
    script = ROOT / "local" / "download_mixlists.sh"
    dest = tmp_path / "lists"
    result = subprocess.run(
        [str(script), "--num-spk", "3", "--url", "http://127.0.0.1:9/x.zip", "--timeout", "5", str(dest)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "(mix_3_spk_tr.txt, mix_3_spk_cv.txt, mix_3_spk_tt.txt) come from that archive" in result.stderr
    archive = tmp_path / "create-speaker-mixtures.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for s in ("tr", "cv", "tt"):
            z.writestr(f"create-speaker-mixtures/mix_2_spk_{s}.txt", LIST_TR)
            z.writestr(f"create-speaker-mixtures/mix_3_spk_{s}.txt", LIST3_TR)
    env = dict(os.environ, COCKTAIL_MIXLISTS_URL=archive.as_uri())
    result = subprocess.run([str(script), "--num-spk", "3", str(dest)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["mix_3_spk_cv.txt", "mix_3_spk_tr.txt", "mix_3_spk_tt.txt"]
    assert (dest / "mix_3_spk_cv.txt").read_text() == LIST3_TR
    again = subprocess.run(
        [str(script), "--num-spk", "3", "--url", "http://127.0.0.1:9/x.zip", str(dest)], text=True, capture_output=True
    )
    assert again.returncode == 0 and "already" in again.stdout  # the copy in place: nothing fetched
    # an archive whose three-speaker list has a line of two speakers is refused, naming the line
    with zipfile.ZipFile(archive, "w") as z:
        for s in ("tr", "cv", "tt"):
            z.writestr(f"create-speaker-mixtures/mix_3_spk_{s}.txt", LIST3_TR + LIST_TT)
    result = subprocess.run(
        [str(script), "--num-spk", "3", str(tmp_path / "bad")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 1
    assert "mix_3_spk_tr.txt line 3: not <wav1> <snr1> <wav2> <snr2> <wav3> <snr3>" in result.stderr
    assert not list((tmp_path / "bad").glob("mix_*"))


# ---------------------------------------------------------------- the mini corpus at a tiny size

MINI = [
    "--num-speakers-tr",
    "4",
    "--num-speakers-tt",
    "2",
    "--utts-per-speaker",
    "3",
    "--num-tr",
    "5",
    "--num-cv",
    "2",
    "--num-tt",
    "2",
    "--min-seconds",
    "1",
    "--max-seconds",
    "1.5",
]


def make_mini(out, *extra):
    return subprocess.run(
        [str(ROOT / "local" / "make_mini_2mix.sh"), *MINI, *extra, str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_mini_corpus_layout_lists_and_determinism(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, nj in ((a, "2"), (b, "1")):  # the number of jobs must not change the corpus
        result = make_mini(out, "--seed", "3", "--nj", nj)
        assert result.returncode == 0, result.stdout + result.stderr
    line_re = re.compile(
        r"^(wsj0/(si_tr_s|si_dt_05|si_et_05)/([mf]\d\d)/\3a\d{4}\.wav) (\d\.\d{4}) "
        r"(wsj0/(si_tr_s|si_dt_05|si_et_05)/([mf]\d\d)/\7a\d{4}\.wav) -(\d\.\d{4})$"
    )
    speakers = {}
    for subset, count in (("tr", 5), ("cv", 2), ("tt", 2)):
        lines = (a / "mixlists" / f"mix_2_spk_{subset}.txt").read_text().splitlines()
        assert len(lines) == count
        speakers[subset] = set()
        for line in lines:
            m = line_re.match(line)
            assert m, line
            assert m.group(4) == m.group(8) and 0 <= float(m.group(4)) <= 2.5
            assert m.group(3) != m.group(7)  # two different speakers
            assert (m.group(2) == "si_tr_s") == (subset != "tt") and (m.group(6) == "si_tr_s") == (subset != "tt")
            for path in (m.group(1), m.group(5)):
                samples, rate = read(a / path)
                assert rate == 16000 and 0.5 < len(samples) / rate < 3.0 and np.abs(samples).max() > 0.01
            speakers[subset] |= {m.group(3), m.group(7)}
            name = f"{Path(m.group(1)).stem}_{m.group(4)}_{Path(m.group(5)).stem}_-{m.group(8)}.wav"
            for kind in ("mix", "s1", "s2"):
                assert read(a / "wav8k/min" / subset / kind / name)[1] == 8000
    assert not speakers["tt"] & (speakers["tr"] | speakers["cv"])  # open condition
    planned = dict(line.split()[:2] for line in (a / "plan/speakers.txt").read_text().splitlines())
    assert sorted(planned) == sorted({"m01", "f01", "m02", "f02", "m03", "f03"})
    assert speakers["cv"] <= {s for s, kind in planned.items() if kind == "tr"}
    assert (a / ".done").is_file()

    # the same seed gives the same corpus, byte for byte
    for rel in ("mixlists/mix_2_spk_tr.txt", "mixlists/mix_2_spk_tt.txt", "plan/utterances.txt"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    mixes = sorted((a / "wav8k/min/tr/mix").iterdir())
    assert mixes[0].read_bytes() == (b / "wav8k/min/tr/mix" / mixes[0].name).read_bytes()

    # re-run: complete already; other options into the same dir: refused
    result = make_mini(a, "--seed", "3")
    assert result.returncode == 0 and "complete already" in result.stdout
    result = make_mini(a, "--seed", "4")
    assert result.returncode == 1 and "made with other options" in result.stderr


def test_mini_plan_depends_on_seed(tmp_path):
    plan = load_script("make_mini_2mix")
    opts = ["--num-speakers-tr", "3", "--num-speakers-tt", "2", "--utts-per-speaker", "2", "--num-tr", "4"]
    assert plan.main(["plan", "--seed", "1", *opts, str(tmp_path / "s1")]) == 0
    assert plan.main(["plan", "--seed", "2", *opts, str(tmp_path / "s2")]) == 0
    for rel in ("plan/speakers.txt", "mixlists/mix_2_spk_tr.txt"):
        assert (tmp_path / "s1" / rel).read_text() != (tmp_path / "s2" / rel).read_text()
    assert plan.main(["plan", "--num-speakers-tt", "1", str(tmp_path / "s3")]) == 1
