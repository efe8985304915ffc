"""Issue 9, case 9 (the runner half): shell operators in a utils/run.py command, as Kaldi's run.pl
allows, and jobs that must not outlive a killed run.py. The same command line reaches slurm.py and
gridengine.py through jobrunner.command_line; their cluster tests are in test_slurm.py / test_gridengine.py."""

import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parent.parent / 'utils'
RUN_PY = UTILS / 'run.py'
sys.path.append(str(UTILS))
import jobrunner  # noqa: E402

PRINT_ARGS = 'import sys; print(sys.argv[1:])'


def run_py(*args, cwd):
    return subprocess.run(
        [sys.executable, str(RUN_PY), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def log_lines(path):
    return Path(path).read_text().splitlines()


@pytest.mark.fault
def test_redirect_writes_the_file_not_the_log(tmp_path):
    """`run.py JOB=1:2 log echo hi JOB '>' out.JOB`: each job writes out.N; before, the log got 'hi 1 > out.1'."""
    r = run_py('JOB=1:2', 'log/r.JOB.log', 'echo', 'hi', 'JOB', '>', 'out.JOB', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for n in (1, 2):
        assert (tmp_path / f'out.{n}').read_text() == f'hi {n}\n'
        lines = log_lines(tmp_path / f'log/r.{n}.log')
        assert lines[0] == f'# echo hi {n} > out.{n}'
        assert not any(line.startswith('hi') for line in lines)


@pytest.mark.fault
def test_kaldi_pipe_into_gzip_with_job_in_the_target(tmp_path):
    """run.pl's own example `foo JOB '|' gzip -c '>' out.JOB.gz` writes a gzip file per job."""
    r = run_py('JOB=1:2', 'log/g.JOB.log', 'echo', 'part JOB', '|', 'gzip', '-c', '>', 'out.JOB.gz', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for n in (1, 2):
        assert gzip.decompress((tmp_path / f'out.{n}.gz').read_bytes()) == f'part {n}\n'.encode()


@pytest.mark.fault
def test_word_with_spaces_stays_one_argument_through_a_redirect(tmp_path):
    """A word with spaces and metacharacters before '>' reaches the program as one argument, unexpanded."""
    words = ['a b', 'x > y', '$HOME', 'p|q', "it's", '&', '*']
    r = run_py('log/s.log', sys.executable, '-c', PRINT_ARGS, *words, '>', 'args.txt', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'args.txt').read_text() == f'{words}\n'


@pytest.mark.fault
def test_stderr_append_and_list_operators(tmp_path):
    """'2>', '>>', '&&', '||', ';' and '2>&1' act as the shell's operators, not as arguments."""
    r = run_py(
        'JOB=3',
        'log/o.JOB.log',
        sys.executable,
        '-c',
        'import sys; sys.stderr.write("err\\n")',
        '2>',
        'err.JOB',
        '&&',
        'echo',
        'one',
        '>>',
        'acc',
        ';',
        'echo',
        'two',
        '>>',
        'acc',
        ';',
        'false',
        '||',
        'echo',
        'three',
        '2>&1',
        '>>',
        'acc',
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'err.3').read_text() == 'err\n'
    assert (tmp_path / 'acc').read_text() == 'one\ntwo\nthree\n'
    assert 'err' not in log_lines(tmp_path / 'log/o.3.log')


@pytest.mark.fault
def test_redirect_into_a_missing_directory_fails_the_job(tmp_path):
    """'>' into a directory that does not exist: run.py exits 1 naming the log, the file is not made."""
    r = run_py('log/m.log', 'echo', 'hi', '>', 'no/such/dir/out', cwd=tmp_path)
    assert r.returncode == 1
    assert '1 of 1 jobs failed' in r.stderr and 'log/m.log' in r.stderr
    assert 'No such file or directory' in (tmp_path / 'log/m.log').read_text()
    assert not (tmp_path / 'no').exists()


def test_command_line_keeps_operators_and_quotes_the_rest():
    """The one implementation shared by run.py, slurm.py and gridengine.py."""
    assert (
        jobrunner.command_line(['echo', 'a b', '>', 'o.JOB', '2>&1', '|', 'gzip']) == "echo 'a b' > o.JOB 2>&1 | gzip"
    )
    assert jobrunner.command_line(['echo', '&', 'a>b', '>x', ';;', '']) == "echo '&' 'a>b' '>x' ';;' ''"


def wait_for_lines(path, count, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= count):
        assert time.monotonic() < deadline, f'the job did not start writing {path}: {proc.stderr.read()}'
        time.sleep(0.05)


def assert_stops_growing(path, within=2.0):
    """The file (a line every 0.1 s while its writer lives) stops growing within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        size = path.stat().st_size
        time.sleep(0.4)
        if path.stat().st_size == size:
            break
        assert time.monotonic() < deadline, f'{path} still grows {within} s after run.py was killed'
    time.sleep(0.5)
    assert path.stat().st_size == size, f'{path} grew again'


# 100 lines, one every 0.1 s: a job that escapes a failing test still ends by itself within 10 s.
WRITER = 'for i in $(seq 100); do echo "line $i"; sleep 0.1; done'
JOBS = {
    'one program': ['bash', '-c', WRITER + ' >> out'],
    # run.py's shell runs a pipeline: the writer and tee are its children, not run.py's
    'pipeline': ['bash', '-c', WRITER, '|', 'tee', '-a', 'out'],
}


@pytest.mark.fault
@pytest.mark.parametrize('job', JOBS.values(), ids=JOBS.keys())
def test_sigkilled_run_py_takes_its_jobs_with_it(tmp_path, job):
    """run.py SIGKILLed while its job writes a line every 0.1 s: the job's whole process group stops."""
    proc = subprocess.Popen(
        [sys.executable, str(RUN_PY), 'JOB=1:1', 'log/k.JOB.log', *job], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    out = tmp_path / 'out'
    wait_for_lines(out, 3, proc)
    proc.kill()
    proc.wait()
    assert_stops_growing(out)


@pytest.mark.fault
@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_interrupted_run_py_stops_a_pipeline_job_and_fails(tmp_path, signum):
    """SIGINT/SIGTERM to run.py: exit 128+signal, 'stopped by signal' said, the pipeline job stops."""
    proc = subprocess.Popen(
        [sys.executable, str(RUN_PY), 'log/i.log', *JOBS['pipeline']], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    out = tmp_path / 'out'
    wait_for_lines(out, 3, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signum
    assert f'run.py: stopped by signal {signum}' in err
    assert_stops_growing(out)
