#!/usr/bin/env python3
"""Peak memory and time of nnet/bin/separate_wav.py on a long recording, chunked and whole.

    python3 bench/bench_long_recording.py [--model egs/mini_2mix/pretrained/mini_chimerapp.zip]
        [--minutes 10] [--chunks "30 0"] [--rate 8000]

Writes a two-voice recording of --minutes (two harmonic voices with syllable-like envelopes at
different pitches, made here), runs separate_wav.py once per --chunks value (seconds; 0 = the whole
recording at once) in its own process, and prints wall time, real-time factor and the process's
peak resident memory (ru_maxrss), one line each.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def recording(minutes, rate, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(minutes * 60 * rate)) / rate
    mix = np.zeros_like(t)
    for f0 in (120.0, 220.0):
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 5) * t))) / rate
        voice = sum(np.sin(k * phase) / k for k in range(1, 8) if k * f0 * 1.1 < rate / 2)
        mix += 0.15 * voice * np.clip(np.sin(2 * np.pi * rng.uniform(2.5, 4.5) * t + rng.uniform(0, 6)), 0, None)
    return mix


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(ROOT, "egs/mini_2mix/pretrained/mini_chimerapp.zip"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--chunks", default="30 0", help="chunk lengths in seconds to measure (0: whole)")
    parser.add_argument("--rate", type=int, default=8000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "long.wav")
        # Made in a process of its own: Linux keeps a process's peak resident memory across fork and
        # exec (ru_maxrss), so a child forked from a bench that held the recording's float64
        # arrays would report this process's peak, not separate_wav.py's (it did: 1450 MiB against
        # 813 measured by /usr/bin/time for the same 44.1 kHz run).
        make = f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import bench_long_recording as b; "
        make += "from nnet import datafiles; "
        make += f"datafiles.write_wav({wav!r}, b.recording({args.minutes}, {args.rate}), {args.rate})"
        subprocess.run([sys.executable, "-c", make], check=True)
        seconds = args.minutes * 60
        print(f"# separate_wav.py --model {os.path.relpath(args.model, ROOT)}, {seconds:.0f} s at {args.rate} Hz")
        for chunk in args.chunks.split():
            command = [sys.executable, "-m", "nnet.bin.separate_wav", "--model", args.model]
            command += ["--chunk-seconds", chunk, wav, os.path.join(tmp, f"out{chunk}")]
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            stderr = proc.stderr.read()
            if status != 0:
                print(f"chunk {chunk} s: failed (status {status}): {stderr.strip()[-500:]}")
                return 1
            label = "whole" if float(chunk) == 0 else f"chunks of {chunk} s"
            peak = usage.ru_maxrss / 1024  # KiB on Linux
            print(f"{label:16s} wall {wall:7.1f} s  RTF {wall / seconds:.3f}  peak memory {peak:7.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
