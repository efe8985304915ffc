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


def read_table(path, allow_empty_value=False):
    """Return the {key: value} dict of a Kaldi table, in file order.

    Raises TableError naming the file and line for an empty line, a line without a value or a
    repeated key.
    """
    table = {}
    for line in scan_table(path):
        if line.key is None:
            raise TableError(f"{path}:{line.lineno}: empty line; remove it")
        if not line.value and not allow_empty_value:
            raise TableError(f"{path}:{line.lineno}: key '{line.key}' has no value; expected '<key> <value>'")
        if line.key in table:
            raise TableError(f"{path}:{line.lineno}: duplicate key '{line.key}'")
        table[line.key] = line.value
    return table


@contextlib.contextmanager
def atomic_write(path, mode="w", **kwargs):
    """Open a temporary file next to `path`; rename it onto `path` only if the block succeeds."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", suffix="." + os.path.basename(path), dir=directory)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the permissions open() would
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_table(path, table):
    """Write {key: value} sorted by key in C order (Python's str order is LC_ALL=C byte order for ASCII)."""
    with atomic_write(path, encoding="utf-8") as f:
        for key in sorted(table):
            f.write(f"{key} {table[key]}\n")


def read_wav(path, dtype="float32"):
    """Return (samples, sample_rate); multi-channel files are an error naming the file."""
    data, rate = soundfile.read(path, dtype=dtype, always_2d=True)
    if data.shape[1] != 1:
        raise ValueError(f"{path}: {data.shape[1]} channels; cocktail separates single-channel audio")
    return data[:, 0], rate


def write_wav(path, samples, sample_rate):
    """Write a 16-bit PCM wav atomically; samples are floats in [-1, 1] (clipped there)."""
    samples = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    with atomic_write(path, "wb") as f:
        soundfile.write(f, samples, sample_rate, subtype="PCM_16", format="WAV")
