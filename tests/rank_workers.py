"""Workers for nnet.launcher.run_ranks in the tests: importable by the processes it spawns (they get
the tests' sys.path). Each is called as worker(rank, completed)."""

import os
import resource
import signal
import time


def _abort():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    os.kill(os.getpid(), signal.SIGABRT)


def _wait_for(completed, seconds=60):
    deadline = time.time() + seconds
    while not completed.value and time.time() < deadline:
        time.sleep(0.01)


def die_after_completion(rank, completed):
    """Rank 0 completes the run; rank 1 aborts afterwards, as gloo's teardown can."""
    if rank == 0:
        completed.value = 1
    else:
        _wait_for(completed)
        _abort()


def die_before_completion(rank, completed):
    """Rank 1 aborts while rank 0 is still at work (never completing)."""
    if rank == 1:
        _abort()
    time.sleep(60)  # spawn ends it once rank 1 is gone
