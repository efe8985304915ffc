#!/usr/bin/env python3
"""Draw the mix lists of a wsj0-2mix-style corpus from anyone's single-speaker recordings; called by
local/make_mixtures.sh, which then creates the corpus with local/create_wsj0_2mix.py.

usage: local/make_mixtures.py [options] --train SRC [--test SRC] <out-dir>
 e.g.: local/make_mixtures.py --train data/train --test data/test --source-root /data/corpus out
       local/make_mixtures.py --train /data/recordings --num-tt-speakers 10 out

A source SRC is either a Kaldi data dir (wav.scp and utt2spk; a relative path in wav.scp starts at
--source-root) or a folder holding one folder per speaker, named after the speaker, with that
speaker's recordings (.wav or .flac, at any depth; the utterance id is the file's stem). tr and cv are
drawn from the --train speakers, cv from other recordings of the same speakers (closed speakers:
--cv-fraction of each speaker's recordings, at least one); tt from the --test speakers (open
speakers), or, without --test, from --num-tt-speakers of the --train speakers held out by the seed.
Every mixture takes --num-spk distinct speakers and one recording of each, at the levels of
wsj0-2mix's rule (nnet/corpus.py draw_mix_list: +x and -x dB, x uniform in [0, 2.5]). Writes
  <out>/mixlists/mix_<N>_spk_{tr,cv,tt}.txt  MERL's format: <path1> <snr1> <path2> <snr2> ..., each
                                             path as wav.scp gives it (relative to --source-root) or
                                             under --source-root for a folder source
  <out>/speakers.txt                         <mixture name> <spk1>_<spk2>: local/data_prep.sh --speakers
  <out>/sources/{tr,cv,tt}/                  the recordings each set draws from (wav.scp with the files
                                             found, utt2spk, spk2utt): dynamic mixing draws from tr's
  <out>/make_mixtures.conf                   the options; a re-run with others is refused
Deterministic from --seed. Every recording is checked (found, readable, one channel, a sample rate
of at least --min-rate), and their file stems must be unique: they name the mixtures.

options:
  --train SRC               recordings of the training speakers (required)
  --test SRC                recordings of the test speakers (unseen in tr/cv)
  --num-tt-speakers N       without --test: training speakers held out for tt (default 0)
  --source-root DIR         where relative wav.scp paths start (default: the current directory)
  --num-spk N               speakers per mixture, 2 or 3 (default 2)
  --num-tr N --num-cv N --num-tt N     mixtures per set (default 20000, 5000, 3000: wsj0-2mix's)
  --cv-fraction F           of each training speaker's recordings, the share for cv (default 0.2)
  --seed N                  random seed (default 1)
  --min-rate HZ             lowest sample rate taken (default 8000: the 8 kHz corpus)
"""

import os
import sys

import numpy as np
import soundfile

from nnet import corpus, datadir, datafiles

AUDIO_EXTENSIONS = (".wav", ".flac")


class MixturesError(Exception):
    """Bad input: the message names the file, speaker or option and says what to do."""


def find_recording(root, listed):
    """The file to read for a listed path: a .wav or .flac copy beside it first, as
    local/create_wsj0_2mix.py's SourceTree looks (speechocean762's 8 kHz copy holds .flac files where
    its lists name .WAV)."""
    path = listed if os.path.isabs(listed) else os.path.join(root, listed)
    stem, _ = os.path.splitext(path)
    for candidate in dict.fromkeys([stem + ".wav", stem + ".flac", path]):
        if os.path.isfile(candidate):
            return candidate
    return None


def read_kaldi_source(data_dir, root):
    """{speaker: [(utt, listed path, file)]} of a Kaldi data dir."""
    tables = {}
    for name in ("wav.scp", "utt2spk"):
        path = os.path.join(data_dir, name)
        if not os.path.isfile(path):
            raise MixturesError(f"{path} not found: a Kaldi source needs wav.scp and utt2spk")
        try:
            tables[name] = datafiles.read_table(path)
        except datafiles.TableError as e:
            raise MixturesError(str(e)) from None
    wavs, utt2spk = tables["wav.scp"], tables["utt2spk"]
    by_speaker = {}
    for utt, listed in wavs.items():
        if utt not in utt2spk:
            raise MixturesError(f"{data_dir}/wav.scp: utterance '{utt}' has no line in utt2spk: add it")
        if listed.endswith("|") or " " in listed:
            raise MixturesError(
                f"{data_dir}/wav.scp: utterance '{utt}': '{listed}' is a command, not a file: "
                "mix lists name files (write the audio to files and list those)"
            )
        found = find_recording(root, listed)
        if found is None:
            raise MixturesError(
                f"{data_dir}/wav.scp: utterance '{utt}': {os.path.join(root, listed)} not found (nor a "
                ".wav or .flac beside it): give --source-root the directory its paths start from"
            )
        by_speaker.setdefault(utt2spk[utt], []).append((utt, listed, found))
    return by_speaker


def read_folder_source(folder, root):
    """{speaker: [(utt, listed path, file)]} of a folder with one folder per speaker."""
    by_speaker = {}
    for speaker in sorted(os.listdir(folder)):
        spk_dir = os.path.join(folder, speaker)
        if not os.path.isdir(spk_dir) or speaker.startswith("."):
            continue
        for dirpath, dirnames, filenames in os.walk(spk_dir):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.lower().endswith(AUDIO_EXTENSIONS) or name.startswith("."):
                    continue
                path = os.path.abspath(os.path.join(dirpath, name))
                under = os.path.relpath(path, root)
                listed = path if under.startswith("..") else under
                by_speaker.setdefault(speaker, []).append((os.path.splitext(name)[0], listed, path))
    if not by_speaker:
        raise MixturesError(
            f"{folder}: no speaker folder with .wav or .flac recordings: give a folder holding one "
            "folder per speaker, or a Kaldi data dir (wav.scp, utt2spk)"
        )
    return by_speaker


def read_source(src, root):
    if not os.path.isdir(src):
        raise MixturesError(f"{src}: no such directory: give a Kaldi data dir or a folder of speaker folders")
    if os.path.isfile(os.path.join(src, "wav.scp")):
        return read_kaldi_source(src, root)
    return read_folder_source(src, root)


def check_recordings(by_speaker, min_rate, what):
    """Every recording readable, one channel, at least min_rate; names safe for Kaldi tables."""
    for speaker, recordings in by_speaker.items():
        if not speaker or any(c.isspace() for c in speaker) or "/" in speaker or speaker in (".", ".."):
            raise MixturesError(f"{what}: speaker label '{speaker}' has white space, '/' or is '.'/'..': rename it")
        for utt, listed, path in recordings:
            if any(c.isspace() for c in listed) or any(c.isspace() for c in utt):
                raise MixturesError(f"{what}: '{listed}': white space in a path, which mix lists cannot hold")
            try:
                info = soundfile.info(path)
            except RuntimeError as e:
                raise MixturesError(f"{what}: speaker '{speaker}': {path}: not a readable audio file ({e})") from None
            if info.channels != 1:
                raise MixturesError(f"{what}: {path}: {info.channels} channels; the recordings must be single-channel")
            if info.samplerate < min_rate:
                raise MixturesError(
                    f"{what}: {path}: {info.samplerate} Hz, below --min-rate {min_rate}: resample the "
                    "recordings or lower --min-rate"
                )
            if info.frames == 0:
                raise MixturesError(f"{what}: {path}: no samples")


def split_cv(rng, by_speaker, fraction):
    """({speaker: tr recordings}, {speaker: cv recordings}): a share of each speaker's for cv."""
    tr, cv = {}, {}
    for speaker in sorted(by_speaker):
        recordings = by_speaker[speaker]
        if len(recordings) < 2:
            raise MixturesError(
                f"training speaker '{speaker}' has {len(recordings)} recording: tr and cv each need one of "
                "every training speaker (closed condition); give it more or leave it out"
            )
        order = rng.permutation(len(recordings))
        num_cv = min(len(recordings) - 1, max(1, round(fraction * len(recordings))))
        cv[speaker] = [recordings[i] for i in sorted(order[:num_cv])]
        tr[speaker] = [recordings[i] for i in sorted(order[num_cv:])]
    return tr, cv


def options_text(args):
    keys = ("train", "test", "num_tt_speakers", "source_root", "num_spk", "num_tr", "num_cv", "num_tt")
    keys += ("cv_fraction", "seed", "min_rate")
    return "".join(f"{k}={getattr(args, k)}\n" for k in keys)


def plan(args):
    if args.num_spk not in (2, 3):
        raise MixturesError(f"--num-spk {args.num_spk}: use 2 or 3")
    for option in ("num_tr", "num_cv", "num_tt"):
        if getattr(args, option) < 1:
            raise MixturesError(f"--{option.replace('_', '-')} must be at least 1")
    if not 0 < args.cv_fraction < 1:
        raise MixturesError(f"--cv-fraction {args.cv_fraction}: need a share between 0 and 1")
    root = os.path.abspath(args.source_root)
    conf = os.path.join(args.out, "make_mixtures.conf")
    options = options_text(args)
    if os.path.isfile(conf):
        with open(conf, encoding="utf-8") as f:
            if f.read() != options:
                raise MixturesError(
                    f"{args.out} was made with other options (see {conf}); remove {args.out} or choose "
                    "another directory"
                )
    train = read_source(args.train, root)
    check_recordings(train, args.min_rate, args.train)
    if args.test:
        if args.num_tt_speakers:
            raise MixturesError("--num-tt-speakers holds out training speakers for tt: leave it out with --test")
        test = read_source(args.test, root)
        check_recordings(test, args.min_rate, args.test)
        both = sorted(set(train) & set(test))
        if both:
            raise MixturesError(
                f"speaker(s) {', '.join(both[:5])} are in both --train {args.train} and --test {args.test}: "
                "tt must hold unseen speakers (the open condition)"
            )
    else:
        if args.num_tt_speakers < args.num_spk:
            raise MixturesError(
                f"without --test, tt needs --num-tt-speakers {args.num_spk} or more of the training speakers"
            )
        if len(train) - args.num_tt_speakers < args.num_spk:
            raise MixturesError(f"{args.train}: {len(train)} speakers, too few to hold out {args.num_tt_speakers}")
        held = np.random.default_rng([args.seed, 0]).permutation(sorted(train))[: args.num_tt_speakers]
        test = {s: train.pop(s) for s in sorted(held)}
    stems = {}
    for by_speaker in (train, test):
        for speaker, recordings in by_speaker.items():
            for _, listed, path in recordings:
                stem = os.path.splitext(os.path.basename(listed))[0]
                if stem in stems:
                    raise MixturesError(
                        f"{stems[stem]} and {path} share the file name '{stem}', which names the mixtures: "
                        "rename one (e.g. <speaker>-<name>)"
                    )
                stems[stem] = path
    tr, cv = split_cv(np.random.default_rng([args.seed, 1]), train, args.cv_fraction)
    pools = {"tr": tr, "cv": cv, "tt": test}
    counts = {"tr": args.num_tr, "cv": args.num_cv, "tt": args.num_tt}
    speaker_of = {listed: speaker for pool in pools.values() for speaker, recs in pool.items() for _, listed, _ in recs}
    lists = {}
    for i, subset in enumerate(("tr", "cv", "tt")):
        listed = {speaker: [r[1] for r in recs] for speaker, recs in pools[subset].items()}
        try:
            lists[subset] = corpus.draw_mix_list(
                np.random.default_rng([args.seed, 2 + i]), listed, counts[subset], args.num_spk
            )
        except ValueError as e:
            raise MixturesError(f"{subset}: {e}") from None

    with datafiles.atomic_write(conf, encoding="utf-8") as f:
        f.write(options)
    speakers = {}
    for subset, lines in lists.items():
        path = os.path.join(args.out, "mixlists", f"mix_{args.num_spk}_spk_{subset}.txt")
        with datafiles.atomic_write(path, encoding="utf-8") as f:
            f.writelines(" ".join(line) + "\n" for line in lines)
        for line in lines:
            pairs = list(zip(line[0::2], line[1::2]))
            name = "_".join(f"{os.path.splitext(os.path.basename(p))[0]}_{snr}" for p, snr in pairs)
            speakers[name] = "_".join(speaker_of[p] for p, _ in pairs)
    datafiles.write_table(os.path.join(args.out, "speakers.txt"), speakers)
    for subset, pool in pools.items():
        folder = os.path.join(args.out, "sources", subset)
        datafiles.write_table(os.path.join(folder, "wav.scp"), {u: p for recs in pool.values() for u, _, p in recs})
        utt2spk = {u: s for s, recs in pool.items() for u, _, _ in recs}
        datafiles.write_table(os.path.join(folder, "utt2spk"), utt2spk)
        datadir.write_spk2utt(os.path.join(folder, "spk2utt"), utt2spk)
    summary = ", ".join(
        f"{subset} {counts[subset]} mixtures of {len(pools[subset])} speakers "
        f"({sum(len(r) for r in pools[subset].values())} recordings)"
        for subset in pools
    )
    print(f"make_mixtures.py: {args.out}: {summary}")


def main(argv=None):
    parser = datadir.usage_parser(__doc__)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test")
    parser.add_argument("--num-tt-speakers", type=int, default=0)
    parser.add_argument("--source-root", default=".")
    parser.add_argument("--num-spk", type=int, default=2)
    parser.add_argument("--num-tr", type=int, default=20000)
    parser.add_argument("--num-cv", type=int, default=5000)
    parser.add_argument("--num-tt", type=int, default=3000)
    parser.add_argument("--cv-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-rate", type=int, default=8000)
    parser.add_argument("out")
    args = parser.parse_args(argv)
    try:
        plan(args)
    except MixturesError as e:
        print(f"make_mixtures.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
