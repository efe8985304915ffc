#!/usr/bin/env python3
"""Create wsj0-2mix (or wsj0-3mix) from WSJ0 and MERL's mix lists, as MERL's create_wav_2speakers.m
(create_wav_3speakers.m) does; or any corpus from mix lists in MERL's format over other recordings
(local/make_mixtures.py draws such lists).

usage: local/create_wsj0_2mix.py --wsj0 DIR --mixlists DIR --out DIR [options]
 e.g.: local/create_wsj0_2mix.py --wsj0 /data/csr_1 --mixlists data/local/mixlists \\
           --out /data/wsj0-mix/2speakers --sample-rates 8k --modes min --job 1 --num-jobs 4
       local/create_wsj0_2mix.py --num-spk 3 --wsj0 /data/csr_1 --mixlists data/local/mixlists \\
           --out /data/wsj0-mix/3speakers
       local/create_wsj0_2mix.py --source-root /data/speechocean762 --mixlists corpus/mixlists \\
           --out corpus --sample-rates 8k --modes min

Each line `<wav1> <snr1> <wav2> <snr2>` of <mixlists>/mix_2_spk_{tr,cv,tt}.txt (with --num-spk 3:
`<wav1> <snr1> <wav2> <snr2> <wav3> <snr3>` of mix_3_spk_{tr,cv,tt}.txt) gives one mixture: every
source is brought to unit active speech level (ITU-T P.56, measured at 8 kHz), scaled by
10^(snr/20), truncated to the shortest (min) or zero-padded to the longest (max), summed, and scaled
together so that the largest absolute sample of mix and the sources is 0.9. Written as 16-bit wav:
  <out>/wav{8k,16k}/{min,max}/{tr,cv,tt}/{mix,s1,s2}/<utt1>_<snr1>_<utt2>_<snr2>.wav
  <out>/wav{8k,16k}/{min,max}/{tr,cv,tt}/{mix,s1,s2,s3}/<utt1>_<snr1>_<utt2>_<snr2>_<utt3>_<snr3>.wav
Sources: the list's paths resolve under --wsj0 (--source-root, the same option): for WSJ0 the dir
holding wsj0/, the wsj0 folder itself, or an LDC disc tree holding <disc>/wsj0/. A `.wav` or `.flac`
next to the listed file is read first (a WSJ0 converted to wav; a corpus copied to FLAC, such as
speechocean762's 8 kHz copy of its .WAV files), then the listed file itself; a `.wv1` (shorten-
compressed SPHERE) is decoded with `sph2pipe -f wav`, which must be on PATH. Sources at any rate of
8 kHz or more are taken: each is resampled to 8 kHz for its level (MERL's rule; a 16 kHz WSJ0 gives
MERL's corpus) and to each output rate, which must not exceed the source's own.
Mixtures whose files (mix and every source) exist already are skipped, so an interrupted run can be
restarted: it writes the missing ones and removes the unfinished temporaries the interrupted run left.

options:
  --wsj0 DIR             root of the WSJ0 source tree, or of the recordings the lists name (required;
                         --source-root DIR is the same option)
  --mixlists DIR         folder of mix_<N>_spk_{tr,cv,tt}.txt (required; local/download_mixlists.sh)
  --out DIR              output root (required)
  --num-spk N            sources per mixture: 2 (wsj0-2mix) or 3 (wsj0-3mix) (default: 2)
  --sample-rates LIST    8k, 16k or 8k,16k (default: 8k,16k)
  --modes LIST           min, max or min,max (default: min,max)
  --sets LIST            subset of tr,cv,tt (default: tr,cv,tt)
  --job J --num-jobs N   this job takes every N-th line of each list, starting with line J (default 1 1)
"""

import argparse
import io
import os
import shutil
import subprocess
import sys

import soundfile

from nnet import corpus, datafiles, dsp
from nnet.corpus import CreationError

SETS = ("tr", "cv", "tt")
MODES = ("min", "max")
NUM_SPK = (2, 3)  # wsj0-2mix, wsj0-3mix (MERL's create_wav_2speakers.m, create_wav_3speakers.m)


class SourceTree:
    """Finds the files that a mix list names (`wsj0/si_tr_s/40n/40na010x.wv1`) under a WSJ0 root, or
    under the root of other recordings (`WAVE/SPEAKER0001/000010011.WAV`)."""

    def __init__(self, root):
        if not os.path.isdir(root):
            raise CreationError(
                f"--wsj0 {root}: no such directory; give the directory that contains wsj0/ (or the wsj0 folder itself)"
            )
        # (dir, strip): the listed path is read under dir, without its leading `wsj0/` when strip
        self.bases = []
        if os.path.isdir(os.path.join(root, "wsj0")):
            self.bases.append((root, False))
        else:
            self.bases.append((root, True))
        for disc in sorted(os.listdir(root)):  # LDC disc layout: <root>/11-1.1/wsj0/si_tr_s/...
            if os.path.isdir(os.path.join(root, disc, "wsj0")):
                self.bases.append((os.path.join(root, disc), False))
        self.root = root

    def candidates(self, listed):
        stem, _ = os.path.splitext(listed)
        names = list(dict.fromkeys([stem + ".wav", stem + ".flac", listed]))  # converted copies first
        paths = []
        for base, strip in self.bases:
            for name in names:
                rel = name.split("/", 1)[1] if strip and name.startswith("wsj0/") else name
                paths.append(os.path.join(base, rel))
        return paths

    def find(self, listed):
        """The path of an existing file for the listed path, or None."""
        for path in self.candidates(listed):
            if os.path.isfile(path):
                return path
        return None


def read_source(path):
    """(samples (float64), rate) of an audio file soundfile reads (wav, flac) or of a .wv1 through sph2pipe."""
    if not path.lower().endswith((".wv1", ".sph")):
        samples, rate = datafiles.read_wav(path, dtype="float64")
    else:
        sph2pipe = shutil.which("sph2pipe")
        if sph2pipe is None:
            raise CreationError(
                f"{path} is a shorten-compressed SPHERE file and sph2pipe is not on PATH: "
                "install sph2pipe (Kaldi's tools/ has it) and add it to PATH, or convert "
                "WSJ0 to wav (sph2pipe -f wav x.wv1 x.wav, next to each .wv1)"
            )
        result = subprocess.run([sph2pipe, "-f", "wav", path], capture_output=True)
        if result.returncode != 0:
            raise CreationError(f"sph2pipe -f wav {path} failed: {result.stderr.decode(errors='replace').strip()}")
        samples, rate = soundfile.read(io.BytesIO(result.stdout), dtype="float64", always_2d=True)
        if samples.shape[1] != 1:
            raise CreationError(f"{path}: {samples.shape[1]} channels; WSJ0 .wv1 files are single-channel")
        samples = samples[:, 0]
    return samples, rate


def list_name(num_spk, subset):
    """MERL's list of a set: mix_2_spk_tr.txt (wsj0-2mix), mix_3_spk_tr.txt (wsj0-3mix)."""
    return f"mix_{num_spk}_spk_{subset}.txt"


def line_format(num_spk):
    """`<wav1> <snr1> <wav2> <snr2>[ <wav3> <snr3>]`: what a line of a mix list holds."""
    return " ".join(f"<wav{c}> <snr{c}>" for c in range(1, num_spk + 1))


def kinds(num_spk):
    """The folders of a set: mix, s1 .. sN."""
    return ("mix", *(f"s{c}" for c in range(1, num_spk + 1)))


def read_mix_list(path, num_spk=2):
    """[(lineno, [(wav1, snr1 string), .., (wavN, snrN string)])] of a mix list of N-source mixtures."""
    if not os.path.isfile(path):
        raise CreationError(
            f"mix list {path} not found: run local/download_mixlists.sh --num-spk {num_spk} "
            f"{os.path.dirname(path) or '.'} (needs network), or pass --mixlists DIR with a "
            f"local copy of mix_{num_spk}_spk_{{tr,cv,tt}}.txt"
        )
    entries = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}:{lineno}"
            if len(fields) != 2 * num_spk:
                raise CreationError(
                    f"{where}: expected '{line_format(num_spk)}' ({2 * num_spk} fields for --num-spk {num_spk}), "
                    f"got {len(fields)} fields: '{line.strip()}'"
                )
            pairs = list(zip(fields[0::2], fields[1::2]))
            for _, snr in pairs:
                try:
                    float(snr)
                except ValueError:
                    raise CreationError(f"{where}: SNR '{snr}' is not a number") from None
            for wav, _ in pairs:
                if wav.lower().endswith(".wv2"):
                    raise CreationError(
                        f"{where}: {wav} is a second-microphone (.wv2) file; wsj0-{num_spk}mix uses the "
                        ".wv1 (Sennheiser) channel: use MERL's official mix lists"
                    )
            entries.append((lineno, pairs))
    return entries


def mixture_name(pairs):
    """`<utt1>_<snr1>_<utt2>_<snr2>[_<utt3>_<snr3>]`, the SNRs as the list writes them (MERL's names)."""
    return "_".join(f"{os.path.splitext(os.path.basename(wav))[0]}_{snr}" for wav, snr in pairs)


def output_paths(out, rate, mode, subset, name, num_spk=2):
    return {kind: os.path.join(out, f"wav{rate}", mode, subset, kind, name + ".wav") for kind in kinds(num_spk)}


def create_mixture(tree, list_path, entry, out, rates, modes, subset):
    """Write every requested version of one mixture; returns False when all were there already."""
    lineno, pairs = entry
    name, num_spk = mixture_name(pairs), len(pairs)
    todo = [
        (rate, mode)
        for rate in rates
        for mode in modes
        if not all(os.path.isfile(p) for p in output_paths(out, rate, mode, subset, name, num_spk).values())
    ]
    if not todo:
        return False
    sources = []
    for listed, snr in pairs:  # MERL's create_wav_{2,3}speakers.m: resample to 8 kHz, activlev there, 10^(snr/20)
        path = tree.find(listed)
        if path is None:
            looked = ", ".join(tree.candidates(listed))
            raise CreationError(
                f"{list_path}:{lineno}: source {listed} not found (looked for {looked}); pass "
                "--wsj0 the directory that contains wsj0/ (or the wsj0 folder itself), with "
                ".wv1 files (sph2pipe on PATH) or .wav files converted from them; for lists of "
                "other recordings, --source-root the directory their paths start from"
            )
        try:
            samples, source_rate = read_source(path)
            too_high = [r for r in rates if corpus.RATES[r] > source_rate]
            if too_high:
                raise CreationError(
                    f"sample rate {source_rate} Hz, below the {too_high[0]} asked for: choose "
                    f"--sample-rates of {source_rate // 1000}k or less"
                )
            at_8k = dsp.resample(samples, source_rate, 8000)
            gain = corpus.source_gain(at_8k, float(snr))
        except (CreationError, ValueError, RuntimeError) as e:  # soundfile raises RuntimeError
            raise CreationError(f"{list_path}:{lineno}: {path}: {e}") from None
        at_rate = {r: at_8k if r == "8k" else dsp.resample(samples, source_rate, corpus.RATES[r]) for r in rates}
        sources.append({r: x * gain for r, x in at_rate.items()})
    for rate, mode in todo:
        mix, scaled = corpus.mix_sources([s[rate] for s in sources], mode)
        paths = output_paths(out, rate, mode, subset, name, num_spk)
        for c, samples in enumerate(scaled, 1):  # the sources first, mix last: a mix means a finished mixture
            datafiles.write_wav(paths[f"s{c}"], samples, corpus.RATES[rate])
        datafiles.write_wav(paths["mix"], mix, corpus.RATES[rate])
    return True


def remove_temporaries(out, rates, modes, subset, names, num_spk=2):
    """Delete the unfinished writes (datafiles.atomic_write's `.tmp.<random>.<name>.wav`) that a killed run left
    of these mixtures: only this job's, since other jobs may be writing theirs right now."""
    datafiles.remove_temporaries(
        path
        for name in names
        for rate in rates
        for mode in modes
        for path in output_paths(out, rate, mode, subset, name, num_spk).values()
    )


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, usage=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wsj0", "--source-root", dest="wsj0", required=True)
    parser.add_argument("--mixlists", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num-spk", type=int, default=2)
    parser.add_argument("--sample-rates", default="8k,16k")
    parser.add_argument("--modes", default="min,max")
    parser.add_argument("--sets", default="tr,cv,tt")
    parser.add_argument("--job", type=int, default=1)
    parser.add_argument("--num-jobs", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        rates = corpus.parse_list(args.sample_rates, tuple(corpus.RATES), "--sample-rates")
        modes = corpus.parse_list(args.modes, MODES, "--modes")
        subsets = corpus.parse_list(args.sets, SETS, "--sets")
        if args.num_spk not in NUM_SPK:
            raise CreationError(f"--num-spk {args.num_spk}: use 2 (wsj0-2mix) or 3 (wsj0-3mix)")
        if not 1 <= args.job <= args.num_jobs:
            raise CreationError(f"--job {args.job} --num-jobs {args.num_jobs}: need 1 <= job <= num-jobs")
        tree = SourceTree(args.wsj0)
        lists = {s: os.path.join(args.mixlists, list_name(args.num_spk, s)) for s in subsets}
        entries = {s: read_mix_list(path, args.num_spk) for s, path in lists.items()}  # every list before writing
        for subset in subsets:
            mine = entries[subset][args.job - 1 :: args.num_jobs]
            names = [mixture_name(pairs) for _, pairs in mine]
            remove_temporaries(args.out, rates, modes, subset, names, args.num_spk)
            written = sum(create_mixture(tree, lists[subset], e, args.out, rates, modes, subset) for e in mine)
            print(
                f"{subset}: job {args.job}/{args.num_jobs}: {len(mine)} of {len(entries[subset])} mixtures, "
                f"{written} written, {len(mine) - written} already there "
                f"({','.join(rates)} x {','.join(modes)} under {args.out})"
            )
    except CreationError as e:
        print(f"create_wsj0_2mix.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
