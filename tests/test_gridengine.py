"""utils/gridengine.py (Kaldi's queue.pl) on a real one-node Grid Engine cell (tests/schedulers.py)."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedulers import assert_sigkill_stops_the_tasks, sge_cluster  # noqa: F401  (sge_cluster: the session fixture)

GRIDENGINE_PY = Path(__file__).resolve().parent.parent / 'utils' / 'gridengine.py'
sys.path.append(str(GRIDENGINE_PY.parent))
import jobrunner  # noqa: E402


def submit(env, cwd, *args, timeout=120):
    return subprocess.run(
        [sys.executable, str(GRIDENGINE_PY), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def submitted_line(script):
    """The qsub command line gridengine.py records at the top of its job script."""
    lines = Path(script).read_text().splitlines()
    assert lines[1].startswith('# Written by gridengine.py')
    return lines[2][2:]


TIMED = 'echo "start=$(date +%s.%N)"; sleep 0.5; echo "end=$(date +%s.%N)"'


def intervals(log_paths):
    out = []
    for path in log_paths:
        text = Path(path).read_text()
        out.append(
            (float(re.search(r'(?m)^start=(\S+)$', text).group(1)), float(re.search(r'(?m)^end=(\S+)$', text).group(1)))
        )
    return sorted(out)


def assert_no_overlap(spans):
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start


def test_array_job_outputs_all_arrive(sge_cluster, tmp_path):
    r = submit(
        sge_cluster,
        tmp_path,
        'JOB=1:4',
        'exp/log/make.JOB.log',
        'bash',
        '-c',
        'echo "task JOB is $SGE_TASK_ID" > out.JOB; echo "said JOB"',
    )
    assert r.returncode == 0, r.stderr
    for n in range(1, 5):
        assert (tmp_path / f'out.{n}').read_text() == f'task {n} is {n}\n'
        lines = (tmp_path / f'exp/log/make.{n}.log').read_text().splitlines()
        assert lines[0] == f"# bash -c 'echo \"task {n} is $SGE_TASK_ID\" > out.{n}; echo \"said {n}\"'"
        assert lines[1].startswith('# Started at ')
        assert f'said {n}' in lines
        assert re.fullmatch(r'# Accounting: time=\d+ threads=1', lines[-2])
        assert lines[-1].startswith('# Finished at ') and lines[-1].endswith('with status 0')
    qdir = tmp_path / 'exp/log/q'
    assert ' -t 1:4 ' in submitted_line(qdir / 'make.sh')
    assert not list(qdir.glob('done.*'))


def test_range_not_starting_at_1_and_quoting(sge_cluster, tmp_path):
    words = ['a b', "it's", '$HOME', 'x|y']
    r = submit(
        sge_cluster,
        tmp_path,
        'TASK=3:4',
        'log/one.TASK.log',
        sys.executable,
        '-c',
        'import sys; print(sys.argv[1:])',
        *words,
        'TASK',
        '|',
        'tr',
        'a-z',
        'A-Z',
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / 'log').glob('*.log')) == ['one.3.log', 'one.4.log']
    assert str(words + ['4']).upper() in (tmp_path / 'log/one.4.log').read_text().splitlines()
    assert ' -t 3:4 ' in submitted_line(tmp_path / 'log/q/one.sh')


@pytest.mark.fault
def test_shell_operators_in_the_command(sge_cluster, tmp_path):
    """'|', '>' and '2>' words act as in Kaldi's queue.pl, JOB in the target; a spaced word stays one argument."""
    r = submit(
        sge_cluster,
        tmp_path,
        'JOB=1:2',
        'log/o.JOB.log',
        sys.executable,
        '-c',
        'import sys; print(sys.argv[1:]); sys.stderr.write("e\\n")',
        'a b',
        'JOB',
        '2>',
        'err.JOB',
        '|',
        'tr',
        'a-z',
        'A-Z',
        '>',
        'out.JOB',
    )
    assert r.returncode == 0, r.stderr
    for n in (1, 2):
        assert (tmp_path / f'out.{n}').read_text() == f"['A B', '{n}']\n"
        assert (tmp_path / f'err.{n}').read_text() == 'e\n'
    assert "['A B', '1']" not in (tmp_path / 'log/o.1.log').read_text()


def test_failing_task_is_reported_with_its_log(sge_cluster, tmp_path):
    r = submit(sge_cluster, tmp_path, 'JOB=1:3', 'log/f.JOB.log', 'bash', '-c', 'echo JOB; [ JOB -ne 2 ] || exit 7')
    assert r.returncode == 1
    assert '1 of 3 jobs failed' in r.stderr
    assert 'log/f.2.log' in r.stderr and 'status 7' in r.stderr
    assert 'log/f.1.log' not in r.stderr
    assert (tmp_path / 'log/f.2.log').read_text().splitlines()[-1].endswith('with status 7')


def test_task_dying_without_done_file_is_detected(sge_cluster, tmp_path):
    env = dict(sge_cluster, COCKTAIL_DEAD_TASK_GRACE='1')
    r = submit(env, tmp_path, 'JOB=1:2', 'log/d.JOB.log', 'bash', '-c', '[ JOB -eq 1 ] || kill -KILL $PPID; sleep 1')
    assert r.returncode == 1
    assert '1 of 2 jobs failed' in r.stderr
    assert 'log/d.2.log' in r.stderr and 'left the queue without finishing' in r.stderr
    assert 'with status' not in (tmp_path / 'log/d.2.log').read_text()


def test_gpu_and_mem_rendered_and_enforced(sge_cluster, tmp_path):
    # the cell has a consumable 'gpu' complex worth 2: two tasks asking for 2 each cannot overlap
    r = submit(sge_cluster, tmp_path, '--gpu', '2', '--mem', '100M', 'JOB=1:2', 'log/g.JOB.log', 'bash', '-c', TIMED)
    assert r.returncode == 0, r.stderr
    line = submitted_line(tmp_path / 'log/q/g.sh')
    assert ' -l gpu=2 ' in line and ' -l mem_free=100M ' in line
    assert_no_overlap(intervals([tmp_path / f'log/g.{n}.log' for n in (1, 2)]))


def test_max_jobs_run_renders_tc_and_limits(sge_cluster, tmp_path):
    r = submit(sge_cluster, tmp_path, '--max-jobs-run', '1', 'JOB=1:2', 'log/m.JOB.log', 'bash', '-c', TIMED)
    assert r.returncode == 0, r.stderr
    assert ' -tc 1 ' in submitted_line(tmp_path / 'log/q/m.sh')
    assert_no_overlap(intervals([tmp_path / f'log/m.{n}.log' for n in (1, 2)]))


def test_user_config_is_used(sge_cluster, tmp_path):
    (tmp_path / 'conf').mkdir()
    (tmp_path / 'conf/queue.conf').write_text(
        'command qsub -v PATH -cwd -S /bin/bash -j y -q all.q   # queue name\n'
        'option mem=* -l mem_free=$0\noption mem=0\ndefault gpu=0\noption gpu=0\noption gpu=* -l gpu=$0\n'
    )
    r = submit(sge_cluster, tmp_path, '--mem', '0', 'log/u.log', 'echo', 'ok')
    assert r.returncode == 0, r.stderr
    assert submitted_line(tmp_path / 'log/q/u.sh').startswith('qsub -v PATH -cwd -S /bin/bash -j y -q all.q -terse ')
    assert 'ok' in (tmp_path / 'log/u.log').read_text().splitlines()
    r = submit(sge_cluster, tmp_path, '--max-jobs-run', '2', 'log/v.log', 'true')
    assert r.returncode == 1
    assert 'option --max-jobs-run is not defined in conf/queue.conf' in r.stderr


@pytest.mark.parametrize(
    'args,message',
    [
        (['--foo', '1'], 'option --foo is not defined in the built-in config'),
        (['--gpu', '1', '--config', 'c.conf'], '--gpu 1 is not allowed by c.conf, which defines only gpu=0'),
    ],
)
def test_undefined_option_is_an_error(sge_cluster, tmp_path, args, message):
    (tmp_path / 'c.conf').write_text('command qsub\noption gpu=0\n')
    r = submit(sge_cluster, tmp_path, *args, 'JOB=1:2', 'log/e.JOB.log', 'true')
    assert r.returncode == 1
    assert message in r.stderr
    assert not (tmp_path / 'log').exists()


def test_sigterm_deletes_the_job(sge_cluster, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(GRIDENGINE_PY), 'JOB=1:2', 'log/s.JOB.log', 'sleep', '120'],
        cwd=tmp_path,
        env=sge_cluster,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / 'log/s.1.log').exists():
        assert time.monotonic() < deadline and proc.poll() is None, 'the job did not start'
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    job_id = re.search(r'cancelled Grid Engine job (\d+)', err).group(1)
    deadline = time.monotonic() + 30
    while True:
        q = subprocess.run(['qstat', '-u', '*'], capture_output=True, text=True, env=sge_cluster)
        if not any(line.split()[:1] == [job_id] for line in q.stdout.splitlines()):
            break
        assert time.monotonic() < deadline, q.stdout
        time.sleep(0.2)


@pytest.mark.fault
def test_sigkilled_runner_leaves_no_task_running(sge_cluster, tmp_path):
    """gridengine.py SIGKILLed while its tasks write a line every 0.1 s: its guard qdels the job, the writing stops."""
    assert_sigkill_stops_the_tasks(GRIDENGINE_PY, sge_cluster, tmp_path)


@pytest.mark.parametrize('recipe', ['wsj0_2mix', 'mini_2mix'])
def test_recipe_queue_conf_holds_the_built_in_defaults(recipe):
    # the recipe's conf/queue.conf is what a user adapts: it must parse and start from the defaults
    import importlib.util

    root = GRIDENGINE_PY.parent.parent
    spec = importlib.util.spec_from_file_location('gridengine', GRIDENGINE_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built_in = jobrunner.SchedulerConfig.parse(module.BUILTIN_CONFIG, 'built-in')
    conf = jobrunner.SchedulerConfig.load(root / f'egs/{recipe}/conf/queue.conf', None)
    assert (conf.command, conf.rules, conf.defaults) == (built_in.command, built_in.rules, built_in.defaults)
    assert conf.render([('gpu', '1')]) == built_in.render([('gpu', '1')]) != []
