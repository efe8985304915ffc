"""Kaldi data directories: which files are tables, their checks, and splitting into parts.

A data dir holds per-utterance tables (`utt2spk`, `wav.scp`, `spk<N>.scp`, `feats.scp`, any other
`utt2*`) that share one key set, and `spk2utt`, rebuilt from `utt2spk`. Every table is
`<key> <value>` per line, sorted in C (byte) order with unique keys. `nnet.datafiles.read_table` is the
strict reader used once a dir is known to be valid; `nnet.datafiles.scan_table` is the lenient line view
that the checks and repairs need, so that they can report and fix every bad line instead of the first.
"""

import argparse
import collections
import os
import re
import shutil
import sys
import tempfile

from nnet import datafiles

UTT_TABLE_RE = re.compile(r"(wav\.scp|feats\.scp|(spk|noise)[0-9]+\.scp|utt2\w+)")
# Tables of audio: the mixtures, the sources (references), the noise of a noisy corpus (LibriMix)
AUDIO_TABLE_RE = re.compile(r"(wav|spk[0-9]+|noise[0-9]+)\.scp")
ARK_OFFSET_RE = re.compile(r"(.+):([0-9]+)(\[[^\]]*\])?")
POSITIVE_INT_RE = re.compile(r"[0-9]*[1-9][0-9]*")
# Files that describe the whole set's features (written by steps/make_feats.sh): parts and
# subsets get a copy, so that they can be used like the set they come from.
SET_FILES = ("stft.conf", "cmvn")
SPLIT_INFO = ".split_info"  # in split<N>/: how it was split (a different --per-spk means redo it)


def id_problem(name):
    """What makes `name` unfit as an utterance id or speaker label, or None. Kaldi's rule (no white
    space), and no '/' or '..': ids become file names (separate_<set>/s1/<utt>.wav), where '/' leads
    into other dirs and '..' out of the one meant."""
    if not name or any(c.isspace() for c in name):
        return "is empty or holds white space"
    if "/" in name or ".." in name:
        return "holds '/' or '..'"
    return None


class DataDirError(Exception):
    """A data dir that a tool cannot use; the message says what to do."""


def usage_parser(doc):
    """An ArgumentParser whose usage is the script's docstring, printed in full on wrong arguments."""

    class Parser(argparse.ArgumentParser):
        def error(self, message):
            self.print_help(sys.stderr)
            self.exit(2, f"\n{self.prog}: error: {message}\n")

    return Parser(description=doc, usage=argparse.SUPPRESS, formatter_class=argparse.RawDescriptionHelpFormatter)


def is_utt_table(name):
    return UTT_TABLE_RE.fullmatch(name) is not None


def utt_table_names(data_dir, feats=True):
    """Names of the per-utterance tables present in data_dir, utt2spk first, then sorted."""
    names = sorted(n for n in os.listdir(data_dir) if is_utt_table(n) and os.path.isfile(os.path.join(data_dir, n)))
    if not feats and "feats.scp" in names:
        names.remove("feats.scp")
    if "utt2spk" in names:
        names.remove("utt2spk")
        names.insert(0, "utt2spk")
    return names


def spk2utt_from_utt2spk(utt2spk):
    """{speaker: sorted utterance list}, speakers in sorted order."""
    spk2utt = {}
    for utt in sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {spk: spk2utt[spk] for spk in sorted(spk2utt)}


def spk2utt_text(utt2spk):
    return "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in spk2utt_from_utt2spk(utt2spk).items())


def write_spk2utt(path, utt2spk):
    """Write the spk2utt of {utt: spk} to path, atomically."""
    with datafiles.atomic_write(path, encoding="utf-8") as f:
        f.write(spk2utt_text(utt2spk))


class Problem(collections.namedtuple("Problem", "path lineno message")):
    def __str__(self):
        where = self.path if self.lineno is None else f"{self.path}:{self.lineno}"
        return f"{where}: {self.message}"


def check_data_dir(data_dir, feats="optional", check_files=True, check_audio=False):
    """Every problem of a data dir, as a list of Problem (file, line, what is wrong and what to do).

    feats: 'optional' (check feats.scp when present), 'required' or 'ignore'.
    check_files: also check that the referenced wav and ark files exist and that each feats.scp
    entry lies whole in its ark.
    check_audio: also read the header of every wav (see check_audio_files).
    Returns (problems, num_utterances, num_speakers).
    """
    data_dir = data_dir.rstrip("/") or "/"
    check_files = check_files or check_audio
    fix = f"run utils/fix_data_dir.py {data_dir}"
    if not os.path.isdir(data_dir):
        return [Problem(data_dir, None, "not a directory")], 0, 0
    problems = []

    def add(name, lineno, message):
        problems.append(Problem(os.path.join(data_dir, name), lineno, message))

    required = {
        "wav.scp": "the data preparation stage writes it",
        "utt2spk": "the data preparation stage writes it",
        "spk2utt": f"{fix} (it rebuilds spk2utt from utt2spk)",
    }
    if feats == "required":
        required["feats.scp"] = "run steps/make_feats.sh first"
    for name, todo in required.items():
        if not os.path.isfile(os.path.join(data_dir, name)):
            add(name, None, f"missing; {todo}")

    names = utt_table_names(data_dir, feats=feats != "ignore")
    tables = {}  # name -> {key: Line} of the first line of each key
    for name in names + (["spk2utt"] if os.path.isfile(os.path.join(data_dir, "spk2utt")) else []):
        try:
            lines = datafiles.scan_table(os.path.join(data_dir, name))
        except UnicodeDecodeError as e:
            add(name, None, f"not UTF-8 text ({e}); regenerate it")
            continue
        tables[name] = _check_lines(lines, lambda lineno, msg, name=name: add(name, lineno, msg), fix)

    utt2spk = tables.get("utt2spk")
    for utt, line in (utt2spk or {}).items():  # the key set every table shares, and the speakers
        for what, name in (("utterance id", utt), ("speaker", line.value)):
            problem = id_problem(name) if name else None
            if problem:
                where = f"of utterance '{utt}' " if what == "speaker" else ""
                add(
                    "utt2spk",
                    line.lineno,
                    f"{what} '{name}' {where}{problem}: ids and labels become file names; rename it",
                )
    if utt2spk is not None:
        for name in names[1:]:
            if name not in tables:
                continue
            for key, line in tables[name].items():
                if key not in utt2spk:
                    add(name, line.lineno, f"utterance '{key}' is not in utt2spk; {fix}")
            for key, line in utt2spk.items():
                if key not in tables[name]:
                    add("utt2spk", line.lineno, f"utterance '{key}' is missing from {name}; {fix}")
        if "spk2utt" in tables:
            _check_spk2utt(utt2spk, tables["spk2utt"], add, fix)

    for name, table in tables.items():
        if name == "feats.scp" or AUDIO_TABLE_RE.fullmatch(name):
            _check_paths(name, table, add, check_files)
        elif name == "utt2num_samples":
            for key, line in table.items():
                if line.value and not POSITIVE_INT_RE.fullmatch(line.value):
                    add(
                        name,
                        line.lineno,
                        f"value '{line.value}' of utterance '{key}' is not a positive "
                        "integer; regenerate utt2num_samples (data preparation stage)",
                    )
    if check_audio and utt2spk is not None:
        problems += check_audio_files(
            data_dir,
            {name: table for name, table in tables.items() if AUDIO_TABLE_RE.fullmatch(name)},
            tables.get("utt2num_samples"),
        )

    problems.sort(key=lambda p: (p.path, p.lineno or 0))  # stable: a line's problems keep their order
    num_utts = len(utt2spk or {})
    num_spks = len({line.value for line in (utt2spk or {}).values()})
    return problems, num_utts, num_spks


def _check_lines(lines, add, fix):
    """Line-level checks of one table; returns {key: first Line} of the lines with a key."""
    first = {}
    previous = None
    for line in lines:
        if line.key is None:
            add(line.lineno, f"empty line; {fix}")
            continue
        if not line.value:
            add(line.lineno, f"key '{line.key}' has no value; expected '<key> <value>'; {fix}")
        if line.key in first:
            add(
                line.lineno,
                f"duplicate key '{line.key}' (first on line {first[line.key].lineno}); {fix} (it keeps the first)",
            )
        else:
            first[line.key] = line
        if previous is not None and line.key < previous:
            add(line.lineno, f"key '{line.key}' is not sorted (after '{previous}'); {fix}")
        previous = line.key
    return first


def _check_spk2utt(utt2spk, spk2utt, add, fix):
    listed = {}  # utt -> spk2utt line listing it first
    for spk, line in spk2utt.items():
        utts = line.value.split()
        for before, utt in zip(utts, utts[1:]):
            if utt < before:
                add(
                    "spk2utt",
                    line.lineno,
                    f"utterances of speaker '{spk}' are not sorted ('{utt}' after '{before}'); {fix}",
                )
        for utt in utts:
            if utt in listed:
                add(
                    "spk2utt",
                    line.lineno,
                    f"utterance '{utt}' is listed more than once (first on line {listed[utt]}); {fix}",
                )
                continue
            listed[utt] = line.lineno
            if utt not in utt2spk:
                add("spk2utt", line.lineno, f"utterance '{utt}' of speaker '{spk}' is not in utt2spk; {fix}")
            elif utt2spk[utt].value != spk:
                add(
                    "spk2utt",
                    line.lineno,
                    f"utterance '{utt}' is listed under speaker '{spk}' but utt2spk "
                    f"gives '{utt2spk[utt].value}'; {fix}",
                )
    reported_speakers = set()
    for utt, line in utt2spk.items():
        spk = line.value
        if spk not in spk2utt:
            if spk not in reported_speakers:
                add("utt2spk", line.lineno, f"speaker '{spk}' of utterance '{utt}' is not in spk2utt; {fix}")
                reported_speakers.add(spk)
        elif utt not in listed:
            add("utt2spk", line.lineno, f"utterance '{utt}' is not listed under its speaker '{spk}' in spk2utt; {fix}")


def _check_paths(name, table, add, check_files):
    """wav.scp/spkN.scp: a path or `ark:offset` (a command ending in '|' is refused: datafiles.PIPE_REASON);
    feats.scp: `ark:offset`."""
    for key, line in table.items():
        value = line.value
        if not value:
            continue
        if name != "feats.scp" and value.endswith("|"):
            add(name, line.lineno, f"value '{value}' of utterance '{key}' is {datafiles.PIPE_REASON}")
            continue
        ark = ARK_OFFSET_RE.fullmatch(value)
        if name == "feats.scp":
            if not ark:
                add(
                    name,
                    line.lineno,
                    f"value '{value}' of utterance '{key}' is not '<ark-file>:<offset>'; rerun steps/make_feats.sh",
                )
            elif check_files and not os.path.isfile(ark.group(1)):
                add(
                    name,
                    line.lineno,
                    f"ark file '{ark.group(1)}' of utterance '{key}' does not exist; rerun steps/make_feats.sh",
                )
            elif check_files and not ark.group(3):
                missing = ark_entry_shortfall(ark.group(1), int(ark.group(2)))
                if missing:
                    add(
                        name,
                        line.lineno,
                        f"ark file '{ark.group(1)}' is truncated: utterance '{key}' "
                        f"lacks {missing} bytes; rerun steps/make_feats.sh",
                    )
        elif (
            check_files
            and not value.endswith("|")
            and not os.path.exists(value)
            and not (ark and os.path.isfile(ark.group(1)))
        ):
            add(
                name,
                line.lineno,
                f"file '{value}' of utterance '{key}' does not exist; check the path "
                "(relative paths are read from the current directory) or remove the utterance",
            )


def ark_entry_shortfall(ark, offset):
    """Bytes missing at the end of the binary Kaldi float/double matrix at `offset` of `ark` (0 when
    whole or when it is another kind of entry, which the reader checks itself)."""
    with open(ark, "rb") as f:
        f.seek(offset)
        head = f.read(15)  # '\0B', 'FM ' or 'DM ', then '\4' rows '\4' cols as int32
        size = os.fstat(f.fileno()).st_size
    if len(head) < 15:
        return 15 - len(head)
    if head[:2] != b"\0B" or head[2:5] not in (b"FM ", b"DM ") or head[5] != 4 or head[10] != 4:
        return 0
    rows, cols = int.from_bytes(head[6:10], "little"), int.from_bytes(head[11:15], "little")
    end = offset + 15 + rows * cols * (4 if head[2:5] == b"FM " else 8)
    return max(end - size, 0)


def usual_and_odd(rates):
    """(the sample rate of most of {key: rate}, the keys at another rate): with one odd file among many,
    the odd one is to blame, not whichever comes first."""
    if not rates:
        return None, []
    usual = collections.Counter(rates.values()).most_common(1)[0][0]
    return usual, [key for key, rate in rates.items() if rate != usual]


def check_audio_files(data_dir, scps, utt2num_samples=None):
    """Problems of the audio that the scp tables ({name: {utt: Line}}, wav.scp the mixtures) name,
    read from the headers: each named by its audio file. A file that cannot be used (unreadable,
    truncated, empty, multi-channel; a missing one is check_files' to report), a sample rate other
    than that of most files of the set, a reference whose length differs from its mixture's, an
    utt2num_samples value that is wrong."""
    problems, infos = [], {}  # (name, utt) -> AudioInfo

    def where(name, utt):
        return f"utterance '{utt}', line {scps[name][utt].lineno} of {name}"

    for name, table in scps.items():
        for utt, line in table.items():
            path = line.value
            if not path or path.endswith("|") or not os.path.exists(path):
                continue  # _check_paths refuses commands; check_files reports missing files
            try:
                infos[name, utt] = datafiles.wav_info(path)
            except datafiles.AudioError as e:
                problems.append(Problem(e.path, None, f"{e.reason} ({where(name, utt)})"))
    usual, odd = usual_and_odd({key: info.sample_rate for key, info in infos.items()})
    for name, utt in odd:
        problems.append(
            Problem(
                scps[name][utt].value,
                None,
                f"{infos[name, utt].sample_rate} Hz, the other audio "
                f"files are {usual} Hz ({where(name, utt)}); resample it or remove the utterance",
            )
        )
    for (name, utt), info in infos.items():
        mix = infos.get(("wav.scp", utt))
        if name != "wav.scp" and mix is not None and info.num_samples != mix.num_samples:
            problems.append(
                Problem(
                    scps[name][utt].value,
                    None,
                    f"{info.num_samples} samples, its mixture "
                    f"{scps['wav.scp'][utt].value} has {mix.num_samples} (utterance '{utt}'): a "
                    "reference must be as long as its mixture; create the corpus again",
                )
            )
    for utt, line in (utt2num_samples or {}).items():
        mix = infos.get(("wav.scp", utt))
        if mix is not None and line.value != str(mix.num_samples):
            problems.append(
                Problem(
                    os.path.join(data_dir, "utt2num_samples"),
                    line.lineno,
                    f"utterance '{utt}': {line.value} samples, its mixture "
                    f"{scps['wav.scp'][utt].value} has {mix.num_samples}; regenerate "
                    "utt2num_samples (data preparation stage)",
                )
            )
    return problems


def require_valid(data_dir, feats="optional", check_files=False):
    """Raise DataDirError listing every problem of data_dir; return (num_utts, num_spks) if none."""
    problems, num_utts, num_spks = check_data_dir(data_dir, feats=feats, check_files=check_files)
    if problems:
        raise DataDirError(
            f"{data_dir} is not a valid data dir ({len(problems)} problems):\n" + "\n".join(str(p) for p in problems)
        )
    return num_utts, num_spks


def load_utt_tables(data_dir):
    """{name: {utt: value}} of every per-utterance table of a valid data dir, utt2spk first."""
    return {name: datafiles.read_table(os.path.join(data_dir, name)) for name in utt_table_names(data_dir)}


def set_file_names(data_dir):
    return [name for name in SET_FILES if os.path.isfile(os.path.join(data_dir, name))]


def write_data_dir(dest, tables, utts, src):
    """Write the per-utterance `tables` restricted to `utts`, spk2utt rebuilt from utt2spk, and a
    copy of the SET_FILES of the source dir `src`."""
    os.makedirs(dest, exist_ok=True)
    for name in set_file_names(src):
        shutil.copy2(os.path.join(src, name), os.path.join(dest, name))
    keep = set(utts)
    for name, table in tables.items():
        datafiles.write_table(os.path.join(dest, name), {k: v for k, v in table.items() if k in keep})
    utt2spk = {utt: spk for utt, spk in tables["utt2spk"].items() if utt in keep}
    write_spk2utt(os.path.join(dest, "spk2utt"), utt2spk)


def make_temp_dir(parent, prefix):
    """A new directory in parent with the permissions of an ordinary mkdir (mkdtemp's are 0700)."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)
    return path


def replace_dir(new, dest):
    """Move the finished directory `new` onto `dest`, removing what was at `dest`."""
    if os.path.isdir(dest):
        old = new + ".old"
        os.rename(dest, old)
        os.rename(new, dest)
        shutil.rmtree(old)
    else:
        os.rename(new, dest)


def split_evenly(items, n):
    """n contiguous parts of items whose sizes differ by at most one (the first ones are larger)."""
    size, extra = divmod(len(items), n)
    parts, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        parts.append(items[start:end])
        start = end
    return parts


def split_utterances(utt2spk, n, per_spk=False):
    """n parts of the sorted utterances: contiguous near-equal chunks, or near-equal speaker groups."""
    if per_spk:
        spk2utt = spk2utt_from_utt2spk(utt2spk)
        if n > len(spk2utt):
            raise DataDirError(
                f"cannot split {len(spk2utt)} speakers into {n} parts with --per-spk; use at most {len(spk2utt)} parts"
            )
        return [sorted(u for spk in group for u in spk2utt[spk]) for group in split_evenly(list(spk2utt), n)]
    if n > len(utt2spk):
        raise DataDirError(f"cannot split {len(utt2spk)} utterances into {n} parts; use at most {len(utt2spk)} parts")
    return split_evenly(sorted(utt2spk), n)


def split_data_dir(data_dir, n, per_spk=False, at_most=False):
    """Write data_dir/split<n>/<1..n>/ unless an up-to-date split is there; at_most: n lowered to the
    number of utterances (speakers with per_spk) where it is larger, one part each.

    Returns (split_dir, reused, part_sizes). The split is up to date when it was made the same way
    after the last change of every source table and no table was added or removed since.
    """
    data_dir = data_dir.rstrip("/") or "/"
    if n < 1:
        raise DataDirError(f"{data_dir}: the number of parts must be at least 1, not {n}")
    num_utts, num_spks = require_valid(data_dir)
    if at_most:
        n = max(1, min(n, num_spks if per_spk else num_utts))
    split_dir = os.path.join(data_dir, f"split{n}")
    names = utt_table_names(data_dir)
    info = f"per_spk={int(per_spk)}\nfiles={' '.join(names + set_file_names(data_dir))}\n"
    sizes = _up_to_date_split(data_dir, split_dir, n, names, info)
    if sizes is not None:
        return split_dir, True, sizes

    tables = load_utt_tables(data_dir)
    try:
        parts = split_utterances(tables["utt2spk"], n, per_spk)
    except DataDirError as e:
        raise DataDirError(f"{data_dir}: {e}") from None
    tmp = make_temp_dir(data_dir, f".split{n}.tmp.")
    try:
        for i, utts in enumerate(parts, 1):
            write_data_dir(os.path.join(tmp, str(i)), tables, utts, data_dir)
        with open(os.path.join(tmp, SPLIT_INFO), "w", encoding="utf-8") as f:
            f.write(info)
        replace_dir(tmp, split_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return split_dir, False, [len(p) for p in parts]


def _up_to_date_split(data_dir, split_dir, n, names, info):
    """Part sizes of an existing split that can be reused, else None."""
    info_path = os.path.join(split_dir, SPLIT_INFO)
    try:
        with open(info_path, encoding="utf-8") as f:
            if f.read() != info:
                return None
        made = os.stat(info_path).st_mtime_ns
        files = names + ["spk2utt"] + set_file_names(data_dir)
        if any(os.stat(os.path.join(data_dir, name)).st_mtime_ns > made for name in files):
            return None
        sizes = []
        for i in range(1, n + 1):
            for name in files:
                if not os.path.isfile(os.path.join(split_dir, str(i), name)):
                    return None
            with open(os.path.join(split_dir, str(i), "utt2spk"), encoding="utf-8") as f:
                sizes.append(sum(1 for _ in f))
        return sizes
    except FileNotFoundError:
        return None
