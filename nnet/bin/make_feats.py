#!/usr/bin/env python3
"""Log-magnitude STFT features of the mixtures of a wav.scp, as a Kaldi ark/scp, plus CMVN stats.

usage: make_feats.py [--stft-conf conf/stft.conf] <wav.scp> <out.ark> <out.scp> <out.cmvn>

The scp names <out.ark>; the ark and scp are written to temporary names and renamed at the end,
so an interrupted job leaves nothing that looks finished. <out.cmvn> holds the job's Kaldi stats.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import kaldiio  # noqa: E402

from nnet import features, io, signal  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stft-conf", help="Kaldi-style option file of nnet.signal.StftConfig")
    parser.add_argument("wav_scp")
    parser.add_argument("ark")
    parser.add_argument("scp")
    parser.add_argument("cmvn")
    args = parser.parse_args()

    wavs = io.read_table(args.wav_scp)
    tmp_ark, tmp_scp = args.ark + ".tmp", args.scp + ".tmp"
    stats, config = None, None
    with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as writer:
        for utt, path in wavs.items():
            try:
                samples, rate = io.read_wav(path)
            except Exception as err:  # soundfile's messages do not name the table
                sys.exit(f"{args.wav_scp}: utterance {utt}: cannot read {path}: {err}")
            if config is None:
                config = signal.read_stft_conf(args.stft_conf, rate)
            elif rate != config.sample_rate:
                sys.exit(f"{args.wav_scp}: utterance {utt}: {path} is {rate} Hz, "
                         f"the others {config.sample_rate} Hz; resample the corpus to one rate")
            feats = features.log_magnitude_features(samples, config)
            writer(utt, feats)
            stats = features.accumulate_cmvn(stats, feats)
    # The scp must point at the final ark name, not the temporary one.
    with io.atomic_write(args.scp) as out, open(tmp_scp) as src:
        for line in src:
            key, location = line.split(maxsplit=1)
            offset = location.strip().rsplit(":", 1)[1]
            out.write(f"{key} {args.ark}:{offset}\n")
    os.replace(tmp_ark, args.ark)
    os.unlink(tmp_scp)
    features.write_cmvn(args.cmvn, stats)
    print(f"make_feats.py: {len(wavs)} utterances, {int(stats[0, -1])} frames, "
          f"{stats.shape[1] - 1} bins -> {args.ark}")


if __name__ == "__main__":
    main()
