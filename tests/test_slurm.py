"""utils/slurm.py on a real one-node Slurm cluster (tests/schedulers.py), plus its config grammar."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from schedulers import assert_sigkill_stops_the_tasks, slurm_cluster  # noqa: F401  (slurm_cluster: the session fixture)

UTILS = Path(__file__).resolve().parent.parent / 'utils'
SLURM_PY = UTILS / 'slurm.py'
sys.path.append(str(UTILS))
import jobrunner  # noqa: E402


def slurm_py(env, cwd, *args, timeout=120):
    return subprocess.run(
        [sys.executable, str(SLURM_PY), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def submitted_line(script):
    """The sbatch command line slurm.py records at the top of its job script."""
    lines = Path(script).read_text().splitlines()
    assert lines[1].startswith('# Written by slurm.py')
    return lines[2][2:]


def intervals(log_paths):
    out = []
    for path in log_paths:
        text = Path(path).read_text()
        out.append(
            (float(re.search(r'(?m)^start=(\S+)', text).group(1)), float(re.search(r'(?m)^end=(\S+)$', text).group(1)))
        )
    return out


TIMED = 'echo "start=$(date +%s.%N) cvd=${CUDA_VISIBLE_DEVICES:-none}"; sleep 0.5; echo "end=$(date +%s.%N)"'


def test_array_job_outputs_all_arrive(slurm_cluster, tmp_path):
    r = slurm_py(
        slurm_cluster,
        tmp_path,
        'JOB=1:4',
        'exp/log/make.JOB.log',
        'bash',
        '-c',
        'echo "task JOB is $SLURM_ARRAY_TASK_ID" > out.JOB; echo "said JOB"',
    )
    assert r.returncode == 0, r.stderr
    for n in range(1, 5):
        assert (tmp_path / f'out.{n}').read_text() == f'task {n} is {n}\n'
        lines = (tmp_path / f'exp/log/make.{n}.log').read_text().splitlines()
        assert lines[0] == f"# bash -c 'echo \"task {n} is $SLURM_ARRAY_TASK_ID\" > out.{n}; echo \"said {n}\"'"
        assert lines[1].startswith('# Started at ')
        assert f'said {n}' in lines
        assert re.fullmatch(r'# Accounting: time=\d+ threads=1', lines[-2])
        assert lines[-1].startswith('# Finished at ') and lines[-1].endswith('with status 0')
    qdir = tmp_path / 'exp/log/q'
    assert '--array=1-4 ' in submitted_line(qdir / 'make.sh')
    assert not list(qdir.glob('done.*'))  # read and removed


def test_single_job_and_quoting(slurm_cluster, tmp_path):
    words = ['a b', "it's", '$HOME', 'x|y']
    r = slurm_py(
        slurm_cluster,
        tmp_path,
        'log/one.log',
        sys.executable,
        '-c',
        'import sys; print(sys.argv[1:])',
        *words,
        '|',
        'tr',
        'a-z',
        'A-Z',
    )
    assert r.returncode == 0, r.stderr
    assert str(words).upper() in (tmp_path / 'log/one.log').read_text().splitlines()


@pytest.mark.fault
def test_shell_operators_in_the_command(slurm_cluster, tmp_path):
    """'|', '>' and '2>' words act as in Kaldi's slurm.pl, JOB in the target; a spaced word stays one argument."""
    r = slurm_py(
        slurm_cluster,
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


def test_failing_task_is_reported_with_its_log(slurm_cluster, tmp_path):
    r = slurm_py(slurm_cluster, tmp_path, 'JOB=1:3', 'log/f.JOB.log', 'bash', '-c', 'echo JOB; [ JOB -ne 2 ] || exit 7')
    assert r.returncode == 1
    assert '1 of 3 jobs failed' in r.stderr
    assert 'log/f.2.log' in r.stderr and 'status 7' in r.stderr
    assert 'log/f.1.log' not in r.stderr
    assert (tmp_path / 'log/f.2.log').read_text().splitlines()[-1].endswith('with status 7')


def test_task_dying_without_done_file_is_detected(slurm_cluster, tmp_path):
    # task 2 kills its job script (as the OOM killer would): no footer, no done file
    env = dict(slurm_cluster, COCKTAIL_DEAD_TASK_GRACE='1')
    r = slurm_py(env, tmp_path, 'JOB=1:2', 'log/d.JOB.log', 'bash', '-c', '[ JOB -eq 1 ] || kill -KILL $PPID; sleep 1')
    assert r.returncode == 1
    assert '1 of 2 jobs failed' in r.stderr
    assert 'log/d.2.log' in r.stderr and 'left the queue without finishing' in r.stderr
    assert 'with status' not in (tmp_path / 'log/d.2.log').read_text()


def test_gpu_and_mem_rendered_through_config(slurm_cluster, tmp_path):
    # built-in config: --gpu N -> --gres=gpu:N, --mem X -> --mem=X; the cluster has 2 (counted) GPUs
    r = slurm_py(
        slurm_cluster, tmp_path, '--gpu', '1', '--mem', '100M', 'JOB=1:3', 'log/g.JOB.log', 'bash', '-c', TIMED
    )
    assert r.returncode == 0, r.stderr
    line = submitted_line(tmp_path / 'log/q/g.sh')
    assert ' --gres=gpu:1 ' in line and ' --mem=100M ' in line
    logs = [tmp_path / f'log/g.{n}.log' for n in range(1, 4)]
    devices = [re.search(r'(?m)^start=\S+ cvd=(\S+)$', p.read_text()).group(1) for p in logs]
    assert set(devices) <= {'0', '1'}  # Slurm gave each task one of the two
    spans = intervals(logs)
    for i in range(3):
        for j in range(i + 1, 3):
            if spans[i][0] < spans[j][1] and spans[j][0] < spans[i][1]:
                assert devices[i] != devices[j]


def test_user_config_maps_options(slurm_cluster, tmp_path):
    conf = tmp_path / 'conf' / 'slurm.conf'
    conf.parent.mkdir()
    conf.write_text(
        '# test config\n'
        'command sbatch --export=PATH --ntasks=1 --partition=debug\n'
        'option mem=* --mem=$0   # the value replaces $0\n'
        'option gpu=0\n'
        'option gpu=* --gres=gpu:$0 --time=10\n'
        'option num_threads=* --cpus-per-task=$0\n'
        'default gpu=0\n'
    )
    # conf/slurm.conf in the working directory is used without --config, like Kaldi's
    r = slurm_py(
        slurm_cluster,
        tmp_path,
        '--gpu',
        '2',
        '--num-threads',
        '1',
        'log/u.log',
        'bash',
        '-c',
        'echo "cvd=$CUDA_VISIBLE_DEVICES"',
    )
    assert r.returncode == 0, r.stderr
    line = submitted_line(tmp_path / 'log/q/u.sh')
    assert line.startswith(
        'sbatch --export=PATH --ntasks=1 --partition=debug --gres=gpu:2 --time=10 --cpus-per-task=1 '
    )
    log = (tmp_path / 'log/u.log').read_text()
    assert 'cvd=0,1' in log.splitlines()
    assert log.splitlines()[-2].endswith('threads=1')
    # the default gpu=0 renders nothing
    r = slurm_py(slurm_cluster, tmp_path, '--config', conf, 'log/v.log', 'true')
    assert r.returncode == 0, r.stderr
    assert 'gres' not in submitted_line(tmp_path / 'log/q/v.sh')


def test_max_jobs_run_renders_percent_and_limits(slurm_cluster, tmp_path):
    r = slurm_py(slurm_cluster, tmp_path, '--max-jobs-run', '1', 'JOB=1:2', 'log/m.JOB.log', 'bash', '-c', TIMED)
    assert r.returncode == 0, r.stderr
    assert ' --array=1-2%1 ' in submitted_line(tmp_path / 'log/q/m.sh')
    spans = sorted(intervals([tmp_path / f'log/m.{n}.log' for n in range(1, 3)]))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end <= start


@pytest.mark.parametrize(
    'args,message',
    [
        (['--foo', '1'], 'option --foo is not defined in the built-in config'),
        (['--gpu', 'x', '--config', 'c.conf'], '--gpu x is not allowed by c.conf, which defines only gpu=0'),
        (['--mem', '1G', '--config', 'c.conf'], 'option --mem is not defined in c.conf'),
        (['--config', 'missing.conf'], 'cannot read config missing.conf'),
    ],
)
def test_undefined_option_is_an_error(slurm_cluster, tmp_path, args, message):
    (tmp_path / 'c.conf').write_text('command sbatch\noption gpu=0\n')
    r = slurm_py(slurm_cluster, tmp_path, *args, 'JOB=1:2', 'log/e.JOB.log', 'true')
    assert r.returncode == 1
    assert message in r.stderr
    assert not (tmp_path / 'log').exists()  # nothing written, nothing submitted


def test_sigterm_cancels_the_job(slurm_cluster, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(SLURM_PY), 'JOB=1:2', 'log/s.JOB.log', 'sleep', '120'],
        cwd=tmp_path,
        env=slurm_cluster,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / 'log/s.1.log').exists():
        assert time.monotonic() < deadline and proc.poll() is None, 'the job did not start'
        time.sleep(0.1)
    script = (tmp_path / 'log/q/s.sh').read_text()
    assert 'SLURM_ARRAY_TASK_ID' in script
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    job_id = re.search(r'cancelled Slurm job (\d+)', err).group(1)
    deadline = time.monotonic() + 30
    while True:
        q = subprocess.run(
            ['squeue', '--noheader', '--jobs', job_id, '--format=%i %T'],
            capture_output=True,
            text=True,
            env=slurm_cluster,
        )
        if 'RUNNING' not in q.stdout and 'PENDING' not in q.stdout:
            break
        assert time.monotonic() < deadline, q.stdout
        time.sleep(0.2)


@pytest.mark.fault
def test_sigkilled_runner_leaves_no_task_running(slurm_cluster, tmp_path):
    """slurm.py SIGKILLed while its tasks write a line every 0.1 s: its guard scancels the job, the writing stops."""
    assert_sigkill_stops_the_tasks(SLURM_PY, slurm_cluster, tmp_path)


# The config grammar itself, without a cluster.


def test_config_grammar_renders_in_command_line_order_then_defaults():
    conf = jobrunner.SchedulerConfig.parse(
        'command qsub -v PATH  # comment\n\noption mem=* -l mem_free=$0,ram_free=$0\noption mem=0\n'
        'option num-threads=* -pe smp $0\ndefault gpu=0\noption gpu=0\noption gpu=* -l gpu=$0 -q g.q\n',
        'x.conf',
    )
    assert conf.command == ['qsub', '-v', 'PATH']
    assert conf.render([('num_threads', '4'), ('mem', '2G')]) == ['-pe', 'smp', '4', '-l', 'mem_free=2G,ram_free=2G']
    assert conf.render([('mem', '0')]) == []
    assert conf.render([('gpu', '2')]) == ['-l', 'gpu=2', '-q', 'g.q']


@pytest.mark.parametrize(
    'text,message',
    [
        ('option mem=* --mem $0\n', 'x.conf:1: the first line must be "command'),
        ('command sbatch\nopt mem=* x\n', 'x.conf:2: expected "option name=value'),
        ('command sbatch\noption mem --mem $0\n', 'x.conf:2: expected name=value'),
        ('command sbatch\ndefault gpu=0 --x\n', 'x.conf:2: "default gpu=0" takes nothing'),
        ('# only a comment\n', 'x.conf: empty config'),
    ],
)
def test_config_grammar_errors_name_file_and_line(text, message):
    with pytest.raises(jobrunner.UsageError, match=re.escape(message)):
        jobrunner.SchedulerConfig.parse(text, 'x.conf')


def test_task_id_notation():
    assert jobrunner.parse_task_ids('3') == {3}
    assert jobrunner.parse_task_ids('[2-5%2]') == {2, 3, 4, 5}
    assert jobrunner.parse_task_ids('1-7:2') == {1, 3, 5, 7}
    assert jobrunner.parse_task_ids('1,3-4') == {1, 3, 4}
    assert jobrunner.parse_task_ids('N/A') == set()


@pytest.mark.parametrize('recipe', ['wsj0_2mix', 'mini_2mix'])
def test_recipe_slurm_conf_holds_the_built_in_defaults(recipe):
    # the recipe's conf/slurm.conf is what a user adapts: it must parse and start from the defaults
    import importlib.util

    root = UTILS.parent
    spec = importlib.util.spec_from_file_location('slurm_runner', SLURM_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built_in = jobrunner.SchedulerConfig.parse(module.BUILTIN_CONFIG, 'built-in')
    conf = jobrunner.SchedulerConfig.load(root / f'egs/{recipe}/conf/slurm.conf', None)
    assert (conf.command, conf.rules, conf.defaults) == (built_in.command, built_in.rules, built_in.defaults)
    assert conf.render([('gpu', '1')]) == built_in.render([('gpu', '1')]) != []
