"""Kaldi-style text tables (scp, utt2spk, ...) and audio files: the one reader and writer of each.

Every table is `<key> <value>` per line. Writers go through `atomic_write` so that an interrupted
stage never leaves a complete-looking file behind.
"""

import collections
import contextlib
import os
import tempfile

import numpy as np
import soundfile


def _default_file_mode():
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


class TableError(ValueError):
    """A malformed table: the message names the file and the line."""


Line = collections.namedtuple("Line", "lineno key value")  # key None: an empty line


def scan_table(path):
    """Every line of a table as Line(lineno, key, value), without judging it (value '' if missing).
    The data-dir checks and repairs read through this to report every bad line, not the first."""
    lines = []
    with open(path, encoding="utf-8") as f:
        for lineno, text in enumerate(f, 1):
            parts = text.split(maxsplit=1)
            if not parts:
                lines.append(Line(lineno, None, ""))
            else:
                lines.append(Line(lineno, parts[0], parts[1].strip() if len(parts) > 1 else ""))
    return lines


def read_table(path):
    """Return the {key: value} dict of a Kaldi table, in file order.

    Raises TableError naming the file and line for an empty line, a line without a value or a
    repeated key.
    """
    table, first_line = {}, {}
    for line in scan_table(path):
        if line.key is None:
            raise TableError(f"{path}:{line.lineno}: empty line; remove it")
        if not line.value:
            raise TableError(f"{path}:{line.lineno}: key '{line.key}' has no value; expected '<key> <value>'")
        if line.key in table:
            raise TableError(
                f"{path}:{line.lineno}: duplicate key '{line.key}' (first on line {first_line[line.key]}); "
                "keep one line per key (utils/fix_data_dir.py does it for a data dir)"
            )
        table[line.key] = line.value
        first_line[line.key] = line.lineno
    return table


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open a temporary file next to `path`; rename it onto `path` only if the block succeeds. The file
    keeps the permissions of the one it replaces."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix=_temp_suffix(path), dir=directory)
    os.close(fd)
    try:  # a file replaced keeps its permissions (a RESULTS.md made group-writable stays so)
        permissions = os.stat(path).st_mode & 0o7777
    except OSError:
        permissions = _FILE_MODE  # mkstemp makes 0600; give the permissions open() would
    os.chmod(tmp, permissions)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _temp_suffix(path):
    """'.<name>' of atomic_write's temporary `.tmp.<8 random>.<name>`, cut at its start to fit 255
    bytes (NAME_MAX): a name the file system holds (a 240-character utterance id) must not fail
    because its temporary's name is 14 bytes longer."""
    suffix = "." + os.path.basename(path)
    while len(os.fsencode(suffix)) > 255 - len(".tmp.") - 8:
        suffix = "." + suffix[2:]
    return suffix


def remove_temporaries(paths):
    """Delete what a killed writer of these files left: atomic_write's `.tmp.<random>.<name>` beside
    each. Only these files' temporaries: other jobs may be writing theirs in the same folder now."""
    by_folder = {}
    for path in map(os.fspath, paths):
        by_folder.setdefault(os.path.dirname(path) or ".", set()).add(_temp_suffix(path))
    for folder, suffixes in by_folder.items():
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            dot = name.find(".", len(".tmp."))
            if name.startswith(".tmp.") and dot > 0 and name[dot:] in suffixes:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))


def write_table(path, table):
    """Write {key: value} sorted by key in C order (Python's str order is LC_ALL=C byte order for ASCII)."""
    with atomic_write(path, encoding="utf-8") as f:
        for key in sorted(table):
            f.write(f"{key} {table[key]}\n")


class AudioError(ValueError):
    """An audio file that cannot be used: the message starts with the file's path and says why."""

    def __init__(self, path, reason):
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path, self.reason = os.fspath(path), reason


# A Kaldi table may list a command whose output is the audio ('sox x.flac -t wav - |'); nothing here
# runs one, and without this it would be reported as a file that does not exist.
PIPE_REASON = (
    "a Kaldi pipe ('<command> |'), which cocktail does not run: write the command's audio to a wav "
    "file first and list that file"
)


# Data sizes that a wav written to a pipe carries (Kaldi's reader treats them the same way): the data
# runs to the end of the file, so there is no promise to check.
STREAMED_DATA_SIZES = (0, 0xFFFFFFFF, 0x7FFFF000)


def _wav_promise(path):
    """(samples its header promises, samples the file holds) of a RIFF WAVE file with a known data
    size, else None (other formats, streamed wavs, a header that soundfile will reject itself)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"fmt ":
                fmt = f.read(size + (size & 1))
                block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else None
            elif chunk_id == b"data":
                if size in STREAMED_DATA_SIZES or not block_align:
                    return None
                held = os.fstat(f.fileno()).st_size - f.tell()
                return size // block_align, max(held, 0) // block_align
            else:
                f.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to an even size


def _check_complete(path):
    """soundfile reads a truncated wav without a word: compare the header's promise with the file."""
    promise = _wav_promise(path)
    if promise is not None and promise[1] < promise[0]:
        raise AudioError(
            path,
            f"truncated: its header promises {promise[0]} samples, the file holds "
            f"{promise[1]}; copy or create the file again",
        )


def _open_checked(path, first_channel=False):
    if os.fspath(path).rstrip().endswith("|"):
        raise AudioError(path, PIPE_REASON)
    if not os.path.isfile(path):
        raise AudioError(path, "no such file" if not os.path.exists(path) else "not a regular file")
    try:
        info = soundfile.info(path)
    except (RuntimeError, ValueError) as e:  # soundfile's LibsndfileError is a RuntimeError
        raise AudioError(path, f"not a readable audio file ({e})") from None
    _check_complete(path)
    if info.channels != 1 and not first_channel:
        raise AudioError(path, f"{info.channels} channels; cocktail separates single-channel audio")
    if info.frames == 0:
        raise AudioError(path, "holds no samples (an empty recording); remove the utterance or create the file again")
    return info


AudioInfo = collections.namedtuple("AudioInfo", "num_samples sample_rate")


def wav_info(path, first_channel=False):
    """AudioInfo of an audio file from its header, with read_wav's checks but without reading the samples."""
    info = _open_checked(os.fspath(path), first_channel)
    return AudioInfo(info.frames, info.samplerate)


def read_wav(path, dtype="float32", first_channel=False):
    """Return (samples, sample_rate) of a single-channel audio file (first_channel: the first channel
    of a file of any number, e.g. WHAM!'s two-channel noise).

    Raises AudioError naming the file for a missing, unreadable, multi-channel (unless first_channel),
    truncated or empty file and for non-finite (NaN, inf) samples."""
    path = os.fspath(path)
    _open_checked(path, first_channel)
    try:
        data, rate = soundfile.read(path, dtype=dtype, always_2d=True)
    except (RuntimeError, ValueError) as e:
        raise AudioError(path, f"not a readable audio file ({e})") from None
    samples = data[:, 0]
    finite = np.isfinite(samples)
    if not finite.all():
        raise AudioError(
            path,
            f"{samples.size - int(finite.sum())} non-finite samples (NaN or inf), the first "
            f"at sample {int(np.argmin(finite))}; fix or remove the recording",
        )
    return samples, rate


WRITE_BLOCK = 1 << 20  # samples converted at a time by write_wav


def write_wav(path, samples, sample_rate):
    """Write a 16-bit PCM wav atomically; samples are floats in [-1, 1] (clipped there).

    Block by block, each converted to float64 and clipped as it is written: a long recording's
    estimates (separate_wav.py) are not copied whole twice more, and every sample converts as in
    one piece."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with atomic_write(path, "wb") as f:
        with soundfile.SoundFile(f, "w", sample_rate, channels, subtype="PCM_16", format="WAV") as out:
            for start in range(0, len(samples), WRITE_BLOCK):
                out.write(np.clip(np.asarray(samples[start : start + WRITE_BLOCK], dtype=np.float64), -1.0, 1.0))
