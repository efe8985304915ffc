"""The separated-output directory shared by oracle and model separation.

<out>/s<c>/<utt>.wav for each source c = 1..C, and <out>/spk<c>.scp listing them.

usage: python3 -m nnet.separated_dir <data-dir> <out-dir>
       python3 -m nnet.separated_dir --check <data-dir> <out-dir>
Once every separation job has finished (steps/separate.sh, separate_oracle.sh), writes
<out-dir>/spk<c>.scp for the C folders s1..sC the jobs wrote, or names the missing files. It needs
no model and no torch: a process that starts in a fraction of a second. --check, before any job:
refuses an <out-dir> that is or contains <data-dir>, whose references the estimates would replace.
"""

import os
import sys

import numpy as np

from nnet import datadir, datafiles


def source_wav(out_dir, utt, index):
    """Path of source `index` (1-based) of `utt`; an id that would lead elsewhere is refused."""
    problem = datadir.id_problem(utt)
    if problem:
        raise ValueError(f"utterance id '{utt}' {problem}: it would be a file name outside {out_dir}/s{index}/")
    return os.path.join(out_dir, f"s{index}", f"{utt}.wav")


def check_out_dir(data_dir, out_dir):
    """ValueError when out_dir is data_dir or holds it: the estimates' spk<c>.scp and s<c>/ folders
    would replace the references, and scoring would then compare the estimates with themselves."""
    data, out = os.path.realpath(data_dir), os.path.realpath(out_dir)
    if data == out or data.startswith(out.rstrip("/") + "/"):
        raise ValueError(
            f"the output dir {out_dir} is or contains the data dir {data_dir}: the estimates would replace its "
            "references (spk*.scp); give another output dir, e.g. exp/<system>/separate_<set>"
        )


def unclipped(samples):
    """Scale down to a 0.99 peak only what would clip in 16 bits; keep every other level as it is."""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return samples * (0.99 / peak) if peak > 1.0 else samples


def write_sources(out_dir, utt, estimates, sample_rate):
    """Write estimates (C, samples) as 16-bit wavs."""
    for index, samples in enumerate(estimates, 1):
        datafiles.write_wav(source_wav(out_dir, utt, index), unclipped(samples), sample_rate)


def num_sources(out_dir):
    """C of a separated dir: its folders s1, s2, .. (consecutive from s1)."""
    count = 0
    while os.path.isdir(os.path.join(out_dir, f"s{count + 1}")):
        count += 1
    return count


def collect(data_dir, out_dir):
    """Write <out>/spk<c>.scp for every utterance of data_dir, one per s<c> folder there; error naming
    the missing ones."""
    utts = list(datafiles.read_table(os.path.join(data_dir, "wav.scp")))
    out_dir = os.path.abspath(out_dir)
    num_spk = num_sources(out_dir)
    if num_spk == 0:
        raise FileNotFoundError(f"{out_dir}: no s1/ folder: the separation jobs wrote nothing; read their logs")
    missing = [utt for utt in utts for c in range(1, num_spk + 1) if not os.path.isfile(source_wav(out_dir, utt, c))]
    if missing:
        raise FileNotFoundError(
            f"{out_dir}: {len(missing)} separated files missing, e.g. utterance '{missing[0]}': "
            "read the separation job logs, then re-run the separation"
        )
    for c in range(1, num_spk + 1):
        datafiles.write_table(os.path.join(out_dir, f"spk{c}.scp"), {utt: source_wav(out_dir, utt, c) for utt in utts})
    return len(utts)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    check = args[:1] == ["--check"]
    args = args[1:] if check else args
    if len(args) != 2:
        sys.exit(__doc__)
    try:
        if check:
            check_out_dir(*args)
            return
        count = collect(*args)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"separated_dir.py: {err}")
    print(f"separated_dir.py: {count} utterances, {num_sources(args[1])} sources in {args[1]}")


if __name__ == "__main__":
    main()
