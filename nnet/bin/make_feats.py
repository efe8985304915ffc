#!/usr/bin/env python3
"""Log-magnitude STFT features of the mixtures of a wav.scp, as a Kaldi ark/scp, plus CMVN stats.

usage: make_feats.py [--stft-conf conf/stft.conf] <wav.scp> <out.ark> <out.scp> <out.cmvn>

The scp names <out.ark>. Old outputs are removed first; the ark is written to <out.ark>.tmp and
renamed, the scp is written last, so an interrupted or failed job leaves nothing that looks
finished (and no temporary). Audio that is unreadable, truncated, empty, at another sample rate
than most of the list, or not finite, and features that are not finite, stop the job with the
utterance and the file named. <out.cmvn> holds the job's Kaldi stats.
"""

import argparse
import os
import sys

import kaldiio
import numpy as np

from nnet import datadir, datafiles, dsp, features


class FeatureError(Exception):
    """Bad input: the message names the utterance and the file."""


def check_audio(wav_scp, wavs):
    """The sample rate of the list, from the headers; the odd file is named, not the first."""
    rates = {}
    for utt, path in wavs.items():
        try:
            rates[utt] = datafiles.wav_info(path).sample_rate
        except datafiles.AudioError as err:
            raise FeatureError(f"{wav_scp}: utterance '{utt}': {err}") from None
    usual, odd = datadir.usual_and_odd(rates)
    if odd:
        utt = odd[0]
        raise FeatureError(
            f"{wav_scp}: utterance '{utt}': {wavs[utt]}: {rates[utt]} Hz, the other "
            f"{len(wavs) - len(odd)} of {len(wavs)} mixtures {usual} Hz ({len(odd)} at another "
            "rate); resample the corpus to one rate"
        )
    return usual


def write_ark(wav_scp, wavs, stft_config, tmp_ark):
    """Write the features of every utterance to tmp_ark; returns ({utt: offset}, cmvn stats)."""
    offsets, stats = {}, None
    with open(tmp_ark, "wb") as ark:
        for utt, path in wavs.items():
            try:
                samples, _ = datafiles.read_wav(path)
            except datafiles.AudioError as err:
                raise FeatureError(f"{wav_scp}: utterance '{utt}': {err}") from None
            feats = features.log_magnitude_features(samples, stft_config)
            bad = feats.size - int(np.isfinite(feats).sum())
            if bad:
                raise FeatureError(
                    f"{wav_scp}: utterance '{utt}' ({path}): non-finite features ({bad} NaN or "
                    "inf values): its samples are out of range; fix or remove the recording"
                )
            ark.write((utt + " ").encode())
            offsets[utt] = ark.tell()
            kaldiio.save_mat(ark, feats)
            stats = features.accumulate_cmvn(stats, feats)
    return offsets, stats


def remove(*paths):
    for path in paths:
        if os.path.lexists(path):
            os.unlink(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stft-conf", help="Kaldi-style option file of nnet.dsp.StftConfig")
    parser.add_argument("wav_scp")
    parser.add_argument("ark")
    parser.add_argument("scp")
    parser.add_argument("cmvn")
    args = parser.parse_args()

    wavs = datafiles.read_table(args.wav_scp)
    if not wavs:
        sys.exit(f"make_feats.py: {args.wav_scp} lists no utterance")
    tmp_ark = args.ark + ".tmp"
    remove(args.scp, args.ark, args.cmvn)  # about to be replaced: a failure must not leave the old ones
    writing = tmp_ark
    try:
        stft_config = dsp.read_stft_conf(args.stft_conf, check_audio(args.wav_scp, wavs))
        offsets, stats = write_ark(args.wav_scp, wavs, stft_config, tmp_ark)
        writing = args.ark
        os.replace(tmp_ark, args.ark)
        writing = args.cmvn
        features.write_cmvn(args.cmvn, stats)
        writing = args.scp  # last: the scp marks a finished job
        datafiles.write_table(args.scp, {utt: f"{args.ark}:{offset}" for utt, offset in offsets.items()})
    except BaseException as err:
        remove(tmp_ark, args.ark, args.cmvn, args.scp)
        if isinstance(err, FeatureError):
            sys.exit(f"make_feats.py: {err}")
        if isinstance(err, OSError):
            sys.exit(
                f"make_feats.py: cannot write {writing}: {err.strerror or err}; make room (or fix the "
                "permissions) and rerun"
            )
        raise
    print(f"make_feats.py: {len(wavs)} utterances, {int(stats[0, -1])} frames, {stats.shape[1] - 1} bins -> {args.ark}")


if __name__ == "__main__":
    main()
