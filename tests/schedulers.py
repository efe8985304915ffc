"""Real one-node scheduler clusters on this host for the runner tests (no fake sbatch/qsub).

Two session fixtures; each starts its daemons in the foreground as children of the test process,
with all state under a temporary directory and on free ports, yields the environment the runner
needs, and stops the daemons by pid afterwards. Each is skipped (with the reason printed) only
when not root or the binaries are missing; any other failure to start is an error with the logs.

slurm_cluster: munged (own key and socket), slurmctld and slurmd; the node has this host's short
  name, nproc CPUs and two GPUs as GRES (backed by /dev/zero and /dev/full: Slurm only counts them
  and sets CUDA_VISIBLE_DEVICES). Environment: SLURM_CONF.
sge_cluster: a Grid Engine cell of its own (see below). Environment: SGE_ROOT, SGE_CELL,
  SGE_QMASTER_PORT, SGE_EXECD_PORT.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLURM_BINARIES = ('munged', 'mungekey', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def memory_mb():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                return int(line.split()[1]) // 1024
    return 1024


class Daemons:
    """Foreground daemons started here, stopped by pid in reverse order."""

    def __init__(self, log_dir):
        self.log_dir = Path(log_dir)
        self.procs = []

    def start(self, name, argv, env=None):
        out = open(self.log_dir / f'{name}.out', 'w')
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        out.close()
        self.procs.append((name, proc))
        return proc

    def check_running(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f'{name} exited with status {proc.returncode}; see {self.log_dir}/{name}.*\n' + self.tail(name)
                )

    def tail(self, name, lines=30):
        text = ''
        for path in sorted(self.log_dir.glob(f'{name}.*')):
            text += f'--- {path}\n' + '\n'.join(path.read_text(errors='replace').splitlines()[-lines:]) + '\n'
        return text

    def stop(self, grace=3):
        """SIGTERM to each (newest first), then SIGKILL what is left after grace seconds: the
        clusters are thrown away, and sge_qmaster's orderly shutdown alone takes ~10 s."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


def wait_until(predicate, timeout, what, daemons):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        daemons.check_running()
        if predicate():
            return
        time.sleep(0.2)
    raise RuntimeError(
        f'timed out after {timeout}s waiting for {what}\n' + ''.join(daemons.tail(name) for name, _ in daemons.procs)
    )


def skip_reason(binaries):
    if os.geteuid() != 0:
        return 'the scheduler daemons need root'
    missing = [b for b in binaries if shutil.which(b) is None and not os.path.exists(f'/usr/sbin/{b}')]
    if missing:
        return 'missing binaries: ' + ' '.join(missing)
    return None


def which(binary):
    return shutil.which(binary) or f'/usr/sbin/{binary}'


SLURM_CONF = """\
ClusterName=cocktailtest
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_min_interval=0,batch_sched_delay=0
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope='session')
def slurm_cluster(tmp_path_factory):
    reason = skip_reason(SLURM_BINARIES)
    if reason:
        print(f'skipping the Slurm tests: {reason}')
        pytest.skip(reason)
    root = tmp_path_factory.mktemp('slurm')
    for sub in ('munge', 'state', 'spool', 'log'):
        (root / sub).mkdir()
    (root / 'munge').chmod(0o700)
    host = subprocess.run(['hostname', '-s'], capture_output=True, text=True, check=True).stdout.strip()
    conf = root / 'slurm.conf'
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            root=root,
            ctld_port=free_port(),
            slurmd_port=free_port(),
            cpus=os.cpu_count(),
            memory=max(256, memory_mb() // 2),
        )
    )
    # Two GPUs Slurm counts; any character device will do, nothing opens them.
    (root / 'gres.conf').write_text('Name=gpu File=/dev/zero\nName=gpu File=/dev/full\n')
    env = dict(os.environ, SLURM_CONF=str(conf))
    daemons = Daemons(root / 'log')
    try:
        subprocess.run(
            [which('mungekey'), '--create', '--keyfile', str(root / 'munge/munge.key')], check=True, capture_output=True
        )
        munge = root / 'munge'
        daemons.start(
            'munged',
            [
                which('munged'),
                '--foreground',
                '--force',
                f'--socket={munge}/socket',
                f'--key-file={munge}/munge.key',
                f'--log-file={root}/log/munged.log',
                f'--pid-file={munge}/munged.pid',
                f'--seed-file={munge}/seed',
            ],
        )
        wait_until(lambda: (munge / 'socket').exists(), 20, 'the munge socket', daemons)
        daemons.start('slurmctld', [which('slurmctld'), '-D', '-f', str(conf)], env=env)
        daemons.start('slurmd', [which('slurmd'), '-D', '-f', str(conf), '-N', host], env=env)

        def node_idle():
            r = subprocess.run(
                ['sinfo', '--noheader', '--nodes', host, '--format=%T'], capture_output=True, text=True, env=env
            )
            return r.returncode == 0 and r.stdout.strip() == 'idle'

        wait_until(node_idle, 60, f'sinfo to show node {host} idle', daemons)
        yield env
    finally:
        daemons.stop()


# ---------------------------------------------------------------------------------------------
# Grid Engine: a cell of our own under a temporary SGE_ROOT (classic spooling, set up the way
# Debian's init_cluster does it), sge_qmaster and sge_execd in the foreground (SGE_ND), free
# ports, min_uid 0 so root may run jobs, a queue all.q on this host with nproc slots and a
# consumable 'gpu' complex (2 on the host) for -l gpu=N. host_aliases maps 'localhost' to the
# host name: where 127.0.0.1 resolves back to 'localhost', commlib otherwise refuses clients.
# ---------------------------------------------------------------------------------------------

SGE_LIB = Path('/usr/lib/gridengine')
SGE_SHARE = Path('/usr/share/gridengine')
SGE_BINARIES = ('sge_qmaster', 'sge_execd', 'qsub', 'qstat', 'qconf', 'qdel')

SGE_BOOTSTRAP = """\
admin_user              none
default_domain          none
ignore_fqdn             true
spooling_method         classic
spooling_lib            libspoolc
spooling_params         {common};{qmaster_spool}
binary_path             {lib}
qmaster_spool_dir       {qmaster_spool}
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
"""

SGE_QUEUE = """\
qname                 all.q
hostlist              {host}
seq_no                0
load_thresholds       NONE
suspend_thresholds    NONE
nsuspend              1
suspend_interval      00:05:00
priority              0
min_cpu_interval      00:05:00
processors            UNDEFINED
qtype                 BATCH INTERACTIVE
ckpt_list             NONE
pe_list               make smp mpi
rerun                 FALSE
slots                 {slots}
tmpdir                /tmp
shell                 /bin/bash
prolog                NONE
epilog                NONE
shell_start_mode      unix_behavior
starter_method        NONE
suspend_method        NONE
resume_method         NONE
terminate_method      NONE
notify                00:00:60
owner_list            NONE
user_lists            NONE
xuser_lists           NONE
subordinate_list      NONE
complex_values        NONE
projects              NONE
xprojects             NONE
calendar              NONE
initial_state         default
""" + ''.join(
    f'{limit:<22}INFINITY\n'
    for limit in (
        's_rt h_rt s_cpu h_cpu s_fsize h_fsize s_data h_data s_stack h_stack s_core h_core s_rss h_rss s_vmem h_vmem'
    ).split()
)


def sge_skip_reason():
    reason = skip_reason(SGE_BINARIES)
    if reason:
        return reason
    needed = [
        SGE_LIB / 'spoolinit',
        SGE_LIB / 'spooldefaults',
        SGE_SHARE / 'default-configuration',
        SGE_SHARE / 'util/resources/centry',
    ]
    missing = [str(p) for p in needed if not p.exists()]
    return 'missing files: ' + ' '.join(missing) if missing else None


@pytest.fixture(scope='session')
def sge_cluster(tmp_path_factory):
    reason = sge_skip_reason()
    if reason:
        print(f'skipping the Grid Engine tests: {reason}')
        pytest.skip(reason)
    root = tmp_path_factory.mktemp('sge')
    sge_root = root / 'sgeroot'
    common = sge_root / 'default' / 'common'
    qmaster_spool, execd_spool = root / 'spool/qmaster', root / 'spool/execd'
    for d in (common, qmaster_spool, execd_spool, root / 'log'):
        d.mkdir(parents=True)
    for sub in ('util', 'bin', 'lib', 'utilbin'):  # the shared parts of the Debian SGE_ROOT
        if Path('/var/lib/gridengine', sub).exists():
            (sge_root / sub).symlink_to(Path('/var/lib/gridengine', sub))
    host = subprocess.run(['hostname', '-s'], capture_output=True, text=True, check=True).stdout.strip()
    (common / 'bootstrap').write_text(SGE_BOOTSTRAP.format(common=common, qmaster_spool=qmaster_spool, lib=SGE_LIB))
    (common / 'act_qmaster').write_text(host + '\n')
    (common / 'host_aliases').write_text(f'{host} localhost\n')
    config = (SGE_SHARE / 'default-configuration').read_text()
    for key, value in (
        ('execd_spool_dir', execd_spool),
        ('min_uid', 0),
        ('min_gid', 0),
        ('load_report_time', '00:00:02'),
    ):
        config = re.sub(rf'(?m)^{key}\s.*$', f'{key} {value}', config)
    (root / 'global_configuration').write_text(config)
    env = dict(
        os.environ,
        SGE_ROOT=str(sge_root),
        SGE_CELL='default',
        SGE_QMASTER_PORT=str(free_port()),
        SGE_EXECD_PORT=str(free_port()),
    )
    env.pop('SGE_ARCH', None)

    def run(*argv, check=True):
        r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=root)
        if check and r.returncode != 0:
            raise RuntimeError(f'{" ".join(map(str, argv))} failed ({r.returncode}):\n{r.stdout}{r.stderr}')
        return r

    daemons = Daemons(root / 'log')
    try:
        run(SGE_LIB / 'spoolinit', 'classic', 'libspoolc', f'{common};{qmaster_spool}', 'init')
        run(SGE_LIB / 'spooldefaults', 'configuration', root / 'global_configuration')
        run(SGE_LIB / 'spooldefaults', 'complexes', SGE_SHARE / 'util/resources/centry')
        run(SGE_LIB / 'spooldefaults', 'pes', SGE_SHARE / 'util/resources/pe')
        run(SGE_LIB / 'spooldefaults', 'usersets', SGE_SHARE / 'util/resources/usersets')
        run(SGE_LIB / 'spooldefaults', 'managers', 'root')
        daemons.start('sge_qmaster', [str(SGE_LIB / 'sge_qmaster')], env=dict(env, SGE_ND='1'))
        wait_until(lambda: run('qconf', '-sh', check=False).returncode == 0, 30, 'sge_qmaster to answer', daemons)
        run('qconf', '-as', host)
        complexes = run('qconf', '-sc').stdout + 'gpu gpu INT <= YES YES 0 0\n'
        (root / 'complexes').write_text(complexes)
        run('qconf', '-Mc', root / 'complexes')
        sched = run('qconf', '-ssconf').stdout
        for key, value in (
            ('schedule_interval', '0:0:1'),
            ('flush_submit_sec', '1'),
            ('flush_finish_sec', '1'),
            ('job_load_adjustments', 'NONE'),
            ('load_adjustment_decay_time', '0:0:0'),
        ):
            sched = re.sub(rf'(?m)^{key}\s.*$', f'{key} {value}', sched)
        (root / 'sched_configuration').write_text(sched)
        run('qconf', '-Msconf', root / 'sched_configuration')
        daemons.start('sge_execd', [str(SGE_LIB / 'sge_execd')], env=dict(env, SGE_ND='1'))
        wait_until(
            lambda: host in run('qconf', '-sel', check=False).stdout.split(), 30, 'sge_execd to register', daemons
        )
        run('qconf', '-mattr', 'exechost', 'complex_values', 'gpu=2', host)
        (root / 'all.q').write_text(SGE_QUEUE.format(host=host, slots=os.cpu_count()))
        run('qconf', '-Aq', root / 'all.q')

        def queue_ready():  # no state letters (u: unknown, a: alarm, E: error...) on all.q@host
            for line in run('qstat', '-f', '-q', 'all.q', check=False).stdout.splitlines():
                fields = line.split()
                if fields and fields[0] == f'all.q@{host}':
                    return len(fields) == 5
            return False

        wait_until(queue_ready, 60, f'queue all.q@{host} to be usable', daemons)
        yield env
    finally:
        daemons.stop()


def assert_sigkill_stops_the_tasks(runner, env, tmp_path):
    """Start `runner` (slurm.py or gridengine.py) on two tasks that write a line every 0.1 s, SIGKILL it
    once both write, and require the writing to stop within 15 s (its guard cancels the array job)."""
    writer = 'for i in $(seq 300); do echo "line $i" >> out.JOB; sleep 0.1; done'  # ends by itself in 30 s
    proc = subprocess.Popen(
        [sys.executable, str(runner), 'JOB=1:2', 'log/k.JOB.log', 'bash', '-c', writer],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    outs = [tmp_path / 'out.1', tmp_path / 'out.2']
    deadline = time.monotonic() + 60
    while not all(p.exists() and len(p.read_text().splitlines()) >= 3 for p in outs):
        assert time.monotonic() < deadline and proc.poll() is None, 'the tasks did not start'
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while True:
        sizes = [p.stat().st_size for p in outs]
        time.sleep(1)
        if sizes == [p.stat().st_size for p in outs]:
            break
        assert time.monotonic() < deadline, f'{runner.name} killed 15 s ago, its tasks still write'
