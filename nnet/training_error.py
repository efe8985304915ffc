"""What a training reports to its user: TrainingError, a problem the user can fix (config, data,
experiment dir, disk) whose message names the file, key or utterance and what to do, and
error_message, the message alone of it or of a DataError, as nnet/bin/train.py prints it."""

from nnet import training_data


class TrainingError(Exception):
    """A problem the user can fix (config, data, experiment dir, disk): nnet/bin/train.py prints
    the message alone, which names the file, key or utterance and what to do."""


def error_message(err):
    """The message of a TrainingError or DataError; one raised in a DataLoader worker comes back
    with the worker's traceback in front of it ("Caught DataError in DataLoader worker ...")."""
    marker = f"\n{training_data.DataError.__module__}.{training_data.DataError.__name__}: "
    return str(err).strip().rsplit(marker, 1)[-1]


def first_line(err):
    """An exception as one line: its type and the first line of its message (torch.load's errors
    run to many lines, and none names the file)."""
    text = str(err).strip()
    return type(err).__name__ + (": " + text.splitlines()[0] if text else "")
