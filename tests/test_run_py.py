"""utils/run.py: local jobs with Kaldi's run.pl contract."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parent.parent / 'utils' / 'run.py'


def run_py(*args, cwd, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, str(RUN_PY), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def max_overlap(intervals):
    """The largest number of [start, end] intervals that hold at one time."""
    return max(sum(s <= t < e for s, e in intervals) for t, _ in intervals)


def read_intervals(directory):
    out = []
    for path in sorted(Path(directory).glob('t.*')):
        start, end = map(float, path.read_text().split())
        out.append((start, end))
    return out


# Each job writes its start and end time, so overlap is read from the jobs, not from wall time.
TIMED_JOB = 'a=$(date +%s.%N); sleep 0.6; echo "$a $(date +%s.%N)" > t/t.JOB'


@pytest.mark.parametrize('limit,expected', [(2, 2), (4, 4)])
def test_max_jobs_run_limits_parallel_jobs(tmp_path, limit, expected):
    (tmp_path / 't').mkdir()
    r = run_py('--max-jobs-run', limit, 'JOB=1:4', 'log/sleep.JOB.log', 'bash', '-c', TIMED_JOB, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    intervals = read_intervals(tmp_path / 't')
    assert len(intervals) == 4
    assert max_overlap(intervals) == expected


def test_job_substitution_in_log_and_command(tmp_path):
    r = run_py('TASK_ID=2:5', 'exp/log/x.TASK_ID.log', 'echo', 'job', 'TASK_ID', 'part-TASK_ID.ark', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    logs = sorted(p.name for p in (tmp_path / 'exp/log').iterdir())
    assert logs == ['x.2.log', 'x.3.log', 'x.4.log', 'x.5.log']
    for n in range(2, 6):
        lines = (tmp_path / f'exp/log/x.{n}.log').read_text().splitlines()
        assert lines[0] == f'# echo job {n} part-{n}.ark'
        assert f'job {n} part-{n}.ark' in lines


def test_single_job_without_range_and_with_single_number(tmp_path):
    r = run_py('a/b/one.log', 'echo', 'JOB', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'JOB' in (tmp_path / 'a/b/one.log').read_text().splitlines()
    r = run_py('JOB=3', 'c/x.JOB.log', 'echo', 'n=JOB', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / 'c').iterdir()] == ['x.3.log']
    assert 'n=3' in (tmp_path / 'c/x.3.log').read_text().splitlines()


def test_header_and_footer(tmp_path):
    r = run_py(
        '--num-threads', '3', 'JOB=1:1', 'log/h.JOB.log', 'bash', '-c', 'echo out; echo err >&2; exit 0', cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / 'log/h.1.log').read_text().splitlines()
    assert lines[0] == "# bash -c 'echo out; echo err >&2; exit 0'"
    assert lines[1].startswith('# Started at ')
    assert 'out' in lines and 'err' in lines
    assert lines[-2].startswith('# Accounting: time=') and lines[-2].endswith(' threads=3')
    seconds = int(lines[-2].split('time=')[1].split()[0])
    assert 0 <= seconds < 30
    assert lines[-1].startswith('# Finished at ') and lines[-1].endswith(' with status 0')


def test_failures_are_counted_and_their_logs_named(tmp_path):
    r = run_py('JOB=1:4', 'log/f.JOB.log', 'bash', '-c', '[ JOB -ne 2 ] && [ JOB -ne 4 ] || exit 3', cwd=tmp_path)
    assert r.returncode == 1
    assert '2 of 4 jobs failed' in r.stderr
    assert 'log/f.2.log' in r.stderr and 'log/f.4.log' in r.stderr
    assert 'log/f.1.log' not in r.stderr and 'log/f.3.log' not in r.stderr
    assert (tmp_path / 'log/f.2.log').read_text().splitlines()[-1].endswith('with status 3')
    assert (tmp_path / 'log/f.1.log').read_text().splitlines()[-1].endswith('with status 0')


def test_missing_program_fails_with_127(tmp_path):
    r = run_py('log/m.log', 'no-such-program-xyz', cwd=tmp_path)
    assert r.returncode == 1
    log = (tmp_path / 'log/m.log').read_text()
    assert 'no-such-program-xyz' in log and log.splitlines()[-1].endswith('with status 127')


def test_words_with_spaces_quotes_and_dollars_survive(tmp_path):
    words = ['a b', "it's", 'say "hi"', '$HOME', '`x`', '*', 'back\\slash', '']
    r = run_py('log/q.log', sys.executable, '-c', 'import sys; print(repr(sys.argv[1:]))', *words, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert repr(words) in (tmp_path / 'log/q.log').read_text().splitlines()


def test_quoted_pipe_word_is_a_pipe_and_pipefail_holds(tmp_path):
    r = run_py('JOB=1:2', 'log/p.JOB.log', 'echo', 'abc JOB', '|', 'tr', 'a-z', 'A-Z', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'ABC 2' in (tmp_path / 'log/p.2.log').read_text().splitlines()
    # a failure before the pipe is not hidden by the last command's success
    r = run_py('log/pf.log', 'false', '|', 'cat', cwd=tmp_path)
    assert r.returncode == 1
    # a '|' inside a word is data, not a pipe
    r = run_py('log/pw.log', 'echo', 'a|b', cwd=tmp_path)
    assert 'a|b' in (tmp_path / 'log/pw.log').read_text().splitlines()


def test_gpu_without_gpu_is_a_clear_error(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='')
    r = run_py('--gpu', '1', 'log/g.log', 'true', cwd=tmp_path, env=env)
    assert r.returncode == 1
    assert '--gpu 1' in r.stderr and '0 GPU(s) visible' in r.stderr
    assert not (tmp_path / 'log/g.log').exists()


def test_gpu_jobs_get_one_device_each_and_never_share(tmp_path):
    # The devices need not exist: run.py only hands out the ids it was given.
    (tmp_path / 't').mkdir()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='3,5')
    job = 'a=$(date +%s.%N); sleep 0.4; echo "$a $(date +%s.%N)" > t/t.JOB; echo "$CUDA_VISIBLE_DEVICES" > t/d.JOB'
    r = run_py('--gpu', '1', 'JOB=1:4', 'log/g.JOB.log', 'bash', '-c', job, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    intervals = read_intervals(tmp_path / 't')
    devices = [(tmp_path / f't/d.{n}').read_text().strip() for n in range(1, 5)]
    assert set(devices) <= {'3', '5'}
    assert max_overlap(intervals) == 2
    for i in range(4):
        for j in range(i + 1, 4):
            (s1, e1), (s2, e2) = intervals[i], intervals[j]
            if s1 < e2 and s2 < e1:
                assert devices[i] != devices[j]


def test_gpu_2_per_job(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='0,1,2,3')
    r = run_py(
        '--gpu',
        '2',
        'JOB=1:2',
        'log/g.JOB.log',
        'bash',
        '-c',
        'echo "dev=$CUDA_VISIBLE_DEVICES"',
        cwd=tmp_path,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    seen = {
        line
        for n in (1, 2)
        for line in (tmp_path / f'log/g.{n}.log').read_text().splitlines()
        if line.startswith('dev=')
    }
    assert seen <= {'dev=0,1', 'dev=2,3'} and len(seen) >= 1


def test_generic_options_accepted(tmp_path):
    r = run_py(
        '--mem',
        '4G',
        '--time',
        '1:00:00',
        '--num-threads',
        '2',
        '--config',
        'conf/none.conf',
        'log/o.log',
        'true',
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'log/o.log').read_text().splitlines()[-2].endswith('threads=2')


@pytest.mark.parametrize(
    'args,message',
    [
        (['--bogus', '1', 'x.log', 'true'], 'unknown option --bogus'),
        (['--max-jobs-run', 'two', 'x.log', 'true'], '--max-jobs-run takes an integer'),
        (['JOB=1:3', 'x.log', 'true'], 'put JOB in its name'),
        (['JOB=3:1', 'x.JOB.log', 'true'], 'bad job range'),
        (['x.log'], 'need a log file and a command'),
        (['--max-jobs-run'], 'needs a value'),
    ],
)
def test_usage_errors(tmp_path, args, message):
    r = run_py(*args, cwd=tmp_path)
    assert r.returncode == 1
    assert message in r.stderr


def test_help(tmp_path):
    r = run_py('--help', cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith('Usage: utils/run.py')


def test_sigterm_kills_running_jobs(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(RUN_PY), 'JOB=1:2', 'log/s.JOB.log', 'bash', '-c', 'echo $$ > pid.JOB; exec sleep 60'],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_files = [tmp_path / 'pid.1', tmp_path / 'pid.2']
    deadline = time.monotonic() + 20
    while not all(p.exists() and p.read_text().strip() for p in pid_files):
        assert time.monotonic() < deadline, 'jobs did not start'
        time.sleep(0.05)
    pids = [int(p.read_text()) for p in pid_files]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGTERM
    assert 'stopped by signal' in err
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert (tmp_path / 'log/s.1.log').read_text().splitlines()[-1].endswith(f'with status {128 + signal.SIGTERM}')


@pytest.mark.fault
@pytest.mark.parametrize('runner', ['run.py', 'slurm.py'])
@pytest.mark.parametrize('word', ['JOB=a:b', 'JOB=1:', 'JOB=1-4', 'JOB=0:2'])
def test_a_malformed_job_range_is_refused_not_taken_as_the_log(tmp_path, runner, word):
    """`JOB=a:b` used to be taken as the log's name: run.py wrote a file `JOB=a:b` and ran one job."""
    r = subprocess.run(
        [sys.executable, str(RUN_PY.parent / runner), word, 'x.JOB.log', 'true'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 1
    need = 'need JOB=first:last (whole numbers, 1 <= first <= last) or JOB=n'
    assert f'{runner}: bad job range {word!r}: {need}' in r.stderr
    assert os.listdir(tmp_path) == []
