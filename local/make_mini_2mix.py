#!/usr/bin/env python3
"""Plan and synthesize the mini two-speaker corpus; called by local/make_mini_2mix.sh.

usage: local/make_mini_2mix.py plan [options] <out-dir>
       local/make_mini_2mix.py synth [--job J --num-jobs N] <out-dir>

plan: draws the speakers (an espeak-ng voice x variant x pitch x rate each), their sentences (random
  words of local/mini_2mix_words.txt) and the mix lists, all from --seed, and writes
    <out>/mini_2mix.conf               the options (a re-run with other options is an error)
    <out>/plan/speakers.txt            <spk> <set> <voice+variant> <pitch> <words-per-minute>
    <out>/plan/utterances.txt          <utt> <wav path under out> <voice+variant> <pitch> <wpm> <text>
    <out>/mixlists/mix_2_spk_{tr,cv,tt}.txt   in MERL's format: <wav1> <snr> <wav2> <-snr>
  WSJ0-like layout: tr/cv speakers under wsj0/si_tr_s (cv uses other utterances of the same
  speakers), tt speakers (unseen in tr/cv) under wsj0/si_dt_05 and wsj0/si_et_05; speaker ids are
  3 characters (m01, f02), utterance ids 8 (m01a0001).
synth: writes every N-th utterance of the plan (from line J) as a 16 kHz 16-bit wav, skipping the
  ones that exist (files are written atomically).

plan options:
  --seed N                  random seed (default 1)
  --num-tr N --num-cv N --num-tt N       mixtures per set (default 600, 100, 100)
  --num-speakers-tr N       speakers of tr and cv (default 20)
  --num-speakers-tt N       speakers of tt (default 24)
  --utts-per-speaker N      sentences per speaker (default 20; a fifth of a tr speaker's go to cv)
  --min-seconds S --max-seconds S        target sentence duration (default 2, 4)
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from nnet import corpus, datafiles, dsp

WORDS = os.path.join(os.path.dirname(os.path.realpath(__file__)), "mini_2mix_words.txt")
# espeak-ng English voices (accents) and voice variants (speaker characteristics), by gender.
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = {
    "m": (
        "m1",
        "m2",
        "m3",
        "m4",
        "m5",
        "m6",
        "m7",
        "m8",
        "adam",
        "Alex",
        "Andy",
        "benjamin",
        "boris",
        "caleb",
        "david",
        "ed",
        "edward",
        "gustave",
        "iven",
        "john",
        "max",
        "Michael",
        "Mike",
        "paul",
        "quincy",
        "rob",
        "robert",
        "travis",
        "victor",
        "zac",
        "klatt",
        "klatt2",
        "klatt3",
        "Denis",
        "Hugo",
        "Lee",
        "Marco",
    ),
    "f": (
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
        "Alicia",
        "Andrea",
        "Annie",
        "aunty",
        "belinda",
        "linda",
        "steph",
        "steph2",
        "steph3",
        "anika",
        "grandma",
    ),
}
PITCH_RANGE = (30, 70)  # espeak-ng -p (0-99, 50 is the voice's own)
RATE_RANGE = (135, 185)  # espeak-ng -s, words per minute
ESPEAK_RATE = 22050
TT_DIRS = ("si_dt_05", "si_et_05")


class MiniError(Exception):
    """Bad options or a broken tool: the message says what to do."""


def read_words(path=WORDS):
    with open(path, encoding="utf-8") as f:
        words = [w.strip() for w in f if w.strip() and not w.startswith("#")]
    if len(words) < 10:
        raise MiniError(f"{path}: needs at least 10 words, has {len(words)}")
    return words


def draw_speakers(rng, num_tr, num_tt):
    """[(spk, set, voice+variant, pitch, rate)]: distinct voice/variant pairs, genders alternating."""
    pools = {g: [f"{v}+{var}" for v in VOICES for var in variants] for g, variants in VARIANTS.items()}
    for g in pools:
        rng.shuffle(pools[g])
    total = num_tr + num_tt
    if total > sum(len(p) for p in pools.values()) or (total + 1) // 2 > min(len(p) for p in pools.values()):
        raise MiniError(f"{total} speakers asked; at most {2 * min(len(p) for p in pools.values())} distinct ones")
    speakers, count = [], {"m": 0, "f": 0}
    for i in range(total):
        gender = "mf"[i % 2]
        count[gender] += 1
        if count[gender] > 99:
            raise MiniError("speaker ids have 2 digits: at most 99 speakers of each gender")
        spk = f"{gender}{count[gender]:02d}"
        pitch = int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1))
        rate = int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1))
        speakers.append((spk, "tr" if i < num_tr else "tt", pools[gender][count[gender] - 1], pitch, rate))
    return speakers


def draw_utterances(rng, speakers, utts_per_speaker, seconds, words):
    """{set: [(spk, utt, path, voice, pitch, rate, text)]} for tr, cv, tt."""
    sets = {"tr": [], "cv": [], "tt": []}
    num_cv = max(1, utts_per_speaker // 5)
    tt_index = 0
    for spk, kind, voice, pitch, rate in speakers:
        if kind == "tr":
            folder = "si_tr_s"
        else:
            folder = TT_DIRS[(tt_index // 2) % len(TT_DIRS)]  # genders alternate: pairs keep both dirs mixed
            tt_index += 1
        for n in range(1, utts_per_speaker + 1):
            utt = f"{spk}a{n:04d}"
            num_words = max(3, round(rng.uniform(*seconds) * rate / 60))
            text = " ".join(rng.choice(words, size=num_words))
            subset = kind if kind == "tt" or n <= utts_per_speaker - num_cv else "cv"
            sets[subset].append((spk, utt, f"wsj0/{folder}/{spk}/{utt}.wav", voice, pitch, rate, text))
    return sets


def draw_mix_list(rng, utterances, num_mixtures, subset):
    """[(path1, snr1, path2, snr2)] by wsj0-2mix's rules (corpus.draw_mix_list), names unique."""
    by_speaker = {}
    for spk, _, path, *_ in utterances:
        by_speaker.setdefault(spk, []).append(path)
    try:
        return corpus.draw_mix_list(rng, by_speaker, num_mixtures)
    except ValueError as e:
        raise MiniError(f"{subset}: {e}") from None


def plan(args):
    for option in ("num_tr", "num_cv", "num_tt", "utts_per_speaker"):
        if getattr(args, option) < 1:
            raise MiniError(f"--{option.replace('_', '-')} must be at least 1")
    if args.utts_per_speaker < 2:
        raise MiniError("--utts-per-speaker must be at least 2 (tr and cv each need one)")
    if not 0 < args.min_seconds <= args.max_seconds:
        raise MiniError("need 0 < --min-seconds <= --max-seconds")
    options = (
        f"seed={args.seed}\nnum_tr={args.num_tr}\nnum_cv={args.num_cv}\nnum_tt={args.num_tt}\n"
        f"num_speakers_tr={args.num_speakers_tr}\nnum_speakers_tt={args.num_speakers_tt}\n"
        f"utts_per_speaker={args.utts_per_speaker}\nmin_seconds={args.min_seconds}\n"
        f"max_seconds={args.max_seconds}\n"
    )
    conf = os.path.join(args.out, "mini_2mix.conf")
    if os.path.isfile(conf):
        with open(conf, encoding="utf-8") as f:
            if f.read() != options:
                raise MiniError(
                    f"{args.out} was made with other options (see {conf}); remove {args.out} "
                    "or choose another directory"
                )
    words = read_words()
    speakers = draw_speakers(np.random.default_rng([args.seed, 0]), args.num_speakers_tr, args.num_speakers_tt)
    sets = draw_utterances(
        np.random.default_rng([args.seed, 1]),
        speakers,
        args.utts_per_speaker,
        (args.min_seconds, args.max_seconds),
        words,
    )
    lists = {
        subset: draw_mix_list(np.random.default_rng([args.seed, 2 + i]), sets[subset], num, subset)
        for i, (subset, num) in enumerate((("tr", args.num_tr), ("cv", args.num_cv), ("tt", args.num_tt)))
    }

    with datafiles.atomic_write(conf, encoding="utf-8") as f:
        f.write(options)
    with datafiles.atomic_write(os.path.join(args.out, "plan", "speakers.txt"), encoding="utf-8") as f:
        for spk, kind, voice, pitch, rate in speakers:
            f.write(f"{spk} {kind} {voice} {pitch} {rate}\n")
    with datafiles.atomic_write(os.path.join(args.out, "plan", "utterances.txt"), encoding="utf-8") as f:
        for subset in ("tr", "cv", "tt"):
            for _, utt, path, voice, pitch, rate, text in sets[subset]:
                f.write(f"{utt} {path} {voice} {pitch} {rate} {text}\n")
    for subset, lines in lists.items():
        with datafiles.atomic_write(
            os.path.join(args.out, "mixlists", f"mix_2_spk_{subset}.txt"), encoding="utf-8"
        ) as f:
            f.writelines(" ".join(line) + "\n" for line in lines)
    num_utts = sum(len(u) for u in sets.values())
    print(
        f"planned {len(speakers)} speakers ({args.num_speakers_tr} tr/cv, {args.num_speakers_tt} tt), "
        f"{num_utts} utterances, {args.num_tr}/{args.num_cv}/{args.num_tt} tr/cv/tt mixtures in {args.out}"
    )


def synthesize(espeak, voice, pitch, rate, text, tmp_dir):
    """16 kHz samples of one sentence."""
    tmp = os.path.join(tmp_dir, "espeak.wav")
    result = subprocess.run(
        [espeak, "-v", voice, "-p", str(pitch), "-s", str(rate), "-w", tmp, text], capture_output=True, text=True
    )
    if result.returncode != 0 or not os.path.isfile(tmp):
        raise MiniError(f"espeak-ng -v {voice} failed: {result.stderr.strip()}")
    samples, rate_read = datafiles.read_wav(tmp, dtype="float64")
    if rate_read != ESPEAK_RATE:
        raise MiniError(f"espeak-ng wrote {rate_read} Hz, expected {ESPEAK_RATE} Hz")
    if not np.any(samples):
        raise MiniError(f"espeak-ng -v {voice} wrote silence for '{text}'")
    return dsp.resample(samples, ESPEAK_RATE, corpus.WSJ0_RATE)


def synth(args):
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise MiniError("espeak-ng is not on PATH: install it (apt-get install espeak-ng, or ./setup.sh)")
    if not 1 <= args.job <= args.num_jobs:
        raise MiniError(f"--job {args.job} --num-jobs {args.num_jobs}: need 1 <= job <= num-jobs")
    plan_path = os.path.join(args.out, "plan", "utterances.txt")
    if not os.path.isfile(plan_path):
        raise MiniError(f"{plan_path} not found: run '{sys.argv[0]} plan {args.out}' first")
    with open(plan_path, encoding="utf-8") as f:
        entries = [line.split(maxsplit=5) for line in f]
    mine = entries[args.job - 1 :: args.num_jobs]
    written = 0
    with tempfile.TemporaryDirectory() as tmp_dir:
        for utt, path, voice, pitch, rate, text in mine:
            wav = os.path.join(args.out, path)
            if os.path.isfile(wav):
                continue
            datafiles.write_wav(wav, synthesize(espeak, voice, pitch, rate, text.strip(), tmp_dir), corpus.WSJ0_RATE)
            written += 1
    print(
        f"job {args.job}/{args.num_jobs}: {len(mine)} of {len(entries)} utterances, {written} synthesized, "
        f"{len(mine) - written} already there"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, usage=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--num-tr", type=int, default=600)
    p.add_argument("--num-cv", type=int, default=100)
    p.add_argument("--num-tt", type=int, default=100)
    p.add_argument("--num-speakers-tr", type=int, default=20)
    p.add_argument("--num-speakers-tt", type=int, default=24)
    p.add_argument("--utts-per-speaker", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--max-seconds", type=float, default=4.0)
    p.add_argument("out")
    s = sub.add_parser("synth")
    s.add_argument("--job", type=int, default=1)
    s.add_argument("--num-jobs", type=int, default=1)
    s.add_argument("out")
    args = parser.parse_args(argv)
    try:
        plan(args) if args.command == "plan" else synth(args)
    except MiniError as e:
        print(f"make_mini_2mix.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
