#!/usr/bin/env python3
"""What bench/gpu_speech.sh needs on a GPU machine that cannot reach a package registry and takes at
most 64 MiB of files beside the repository: made here, carried there.

    python3 bench/gpu_speech_bundle.py --corpus ../shared/corpora/speechocean762 --out .gpu
        [--train-mib 32] [--test-mib 11] [--wheels DIR]

Writes <out>/speechocean762/ (the corpus tree, WAVE/ with train/ and test/ lists, cut to the byte
budgets), <out>/wheels/ (the Python packages of pyproject.toml that the GPU machine's image lacks:
see NEEDED) and <out>/MANIFEST.txt (what was kept). The cut keeps every speaker: it takes each
speaker's first recording (in the list's order), then each one's second, and so on, while the
subset's audio stays within its budget, so the subsets keep all 125 training and 125 test speakers
with fewer recordings each. The wheels come from --wheels (a folder of .whl files) or else are
fetched with pip download for the GPU machine's Python (3.12, manylinux x86-64).
An <out> that exists is refused: give a new folder (it is written in full, then renamed).
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys

from nnet import datafiles

# stage 0's own lookup of a listed recording (local/ is not a package)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("make_mixtures", os.path.join(ROOT, "local", "make_mixtures.py"))
make_mixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_mixtures)

# the packages of pyproject.toml that the GPU image lacks (torch, numpy, scipy, PyYAML, matplotlib are
# there); pesq is left out: it has no wheel, and the learning curve scores without PESQ
NEEDED = (
    "kaldiio==2.18.1",
    "soundfile==0.14.0",
    "cffi==2.1.1",
    "pycparser==3.12",
    "pystoi==0.4.1",
    "mir_eval==0.8.2",
    "pyloudnorm==0.2.0",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def audio_file(corpus, listed):
    """The file a wav.scp line names, or its .wav / .flac copy beside it, as stage 0 reads it (the
    8 kHz FLAC copy's lists name the original .WAV files)."""
    path = make_mixtures.find_recording(corpus, listed)
    if path is None:
        raise SystemExit(
            f"gpu_speech_bundle.py: {listed} (in {corpus}'s lists): no such file, nor a .wav or .flac copy"
        )
    return path


def cut(corpus, subset, budget):
    """{utt: (listed path, file)} of subset's list: speakers' recordings in turn within budget bytes."""
    scp = datafiles.read_table(os.path.join(corpus, subset, "wav.scp"))
    utt2spk = datafiles.read_table(os.path.join(corpus, subset, "utt2spk"))
    by_speaker = {}
    for utt in scp:
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    kept, used = {}, 0
    for turn in range(max(len(utts) for utts in by_speaker.values())):
        for speaker in sorted(by_speaker):
            if turn < len(by_speaker[speaker]):
                utt = by_speaker[speaker][turn]
                path = audio_file(corpus, scp[utt])
                if used + os.path.getsize(path) > budget:
                    return kept, used
                kept[utt] = (scp[utt], path)
                used += os.path.getsize(path)
    return kept, used


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", required=True, help="speechocean762 (WAVE/, train/, test/)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--train-mib", type=float, default=32.0)
    parser.add_argument("--test-mib", type=float, default=11.0)
    parser.add_argument("--wheels", help="a folder of the NEEDED wheels (default: pip download them)")
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        sys.exit(f"gpu_speech_bundle.py: {args.out} exists: give a new folder")
    tmp = args.out.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tree = os.path.join(tmp, "speechocean762")
    manifest = []
    for subset, mib in (("train", args.train_mib), ("test", args.test_mib)):
        kept, used = cut(args.corpus, subset, mib * 2**20)
        utt2spk = datafiles.read_table(os.path.join(args.corpus, subset, "utt2spk"))
        for utt, (listed, path) in kept.items():
            target = os.path.join(tree, os.path.splitext(listed)[0] + os.path.splitext(path)[1])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
        datafiles.write_table(os.path.join(tree, subset, "wav.scp"), {utt: kept[utt][0] for utt in kept})
        datafiles.write_table(os.path.join(tree, subset, "utt2spk"), {utt: utt2spk[utt] for utt in kept})
        speakers = len({utt2spk[utt] for utt in kept})
        manifest.append(
            f"{subset}: {len(kept)} of {len(utt2spk)} recordings, {speakers} of "
            f"{len(set(utt2spk.values()))} speakers, {used / 2**20:.1f} MiB"
        )
    for name in ("README.md", "SOURCE.txt"):  # the corpus' licence and citation travel with it
        if os.path.isfile(os.path.join(args.corpus, name)):
            shutil.copyfile(os.path.join(args.corpus, name), os.path.join(tree, name))
    wheels = os.path.join(tmp, "wheels")
    if args.wheels:
        shutil.copytree(args.wheels, wheels)
    else:
        platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
        fetch = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        fetch += ["--python-version", "3.12", "--implementation", "cp", *platforms, "-d", wheels, *NEEDED]
        if subprocess.run(fetch).returncode:
            sys.exit("gpu_speech_bundle.py: pip download failed (above): give --wheels a folder holding them")
    manifest.append("wheels: " + " ".join(sorted(os.listdir(wheels))))
    missing = [need for need in NEEDED if not any(w.startswith(need.replace("==", "-")) for w in os.listdir(wheels))]
    if missing:  # gpu_speech.sh's import check stops there at once; say it here first
        manifest.append("wheels missing: " + " ".join(missing))
        print(f"gpu_speech_bundle.py: warning: {wheels} lacks {' '.join(missing)}", file=sys.stderr)
    with open(os.path.join(tmp, "MANIFEST.txt"), "w", encoding="utf-8") as f:
        f.write(f"made by bench/gpu_speech_bundle.py from {os.path.abspath(args.corpus)}\n")
        f.write("\n".join(manifest) + "\n")
    os.rename(tmp, args.out)
    print("\n".join(manifest))


if __name__ == "__main__":
    main()
