#!/usr/bin/env python3
"""Run jobs on this machine, Kaldi run.pl style; see USAGE."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue

import jobrunner

USAGE = """\
Usage: utils/run.py [options] [JOB=1:N] <log> <command>...
Runs <command> once per job on this machine; JOB (any name) is replaced by the job number in <log>
and in the command words. A word that is exactly a shell operator ('|', '>', '>>', '<', '2>', '2>&1',
'&&', '||', ';', ...; quoted by the caller) acts as one, as with Kaldi's run.pl; every other word
reaches the program as one argument, unexpanded.
 e.g.: utils/run.py --max-jobs-run 4 JOB=1:8 exp/x/log/feats.JOB.log python3 x.py --job JOB
       utils/run.py JOB=1:2 log/dump.JOB.log python3 dump.py JOB '|' gzip -c '>' out.JOB.gz
Options:
  --max-jobs-run N   at most N jobs at once (default: the number of CPUs)
  --gpu N            N GPUs per job (default 0); jobs then run one per N visible GPUs, each seeing
                     only its own through CUDA_VISIBLE_DEVICES
  --num-threads N    threads per job: only written to the log's Accounting line here
  --mem X, --time T  accepted for compatibility with slurm.py/gridengine.py; no limit is applied
  --config FILE      accepted for the same reason; the scheduler config means nothing locally
SIGINT/SIGTERM stop the running jobs (their whole process groups) and exit 128+signal; a run.py
killed outright (SIGKILL) takes its jobs with it through a guard process it forked.
Exit status: 0 when every job succeeded, else 1 (the failed logs are printed)."""

PROG = 'run.py'


def visible_gpus():
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else nvidia-smi -L."""
    env = os.environ.get('CUDA_VISIBLE_DEVICES')
    if env is not None:
        ids = [d.strip() for d in env.split(',') if d.strip()]
        # A negative id hides that device and every later one (CUDA's rule).
        for k, d in enumerate(ids):
            if d.startswith('-'):
                return ids[:k]
        return ids
    try:
        out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(k) for k, _ in enumerate(line for line in out.splitlines() if line.startswith('GPU '))]


def kill_job_groups(pgids, grace=5.0):
    """The guard's clean-up (see jobrunner.Guard) when run.py was killed: SIGTERM to the process
    group of each job still running (a job's shell running a pipeline has grandchildren: the group
    holds them all), SIGKILL to what still lives grace seconds later. PR_SET_PDEATHSIG would reach
    only each job's shell, and would fire when the pool thread that started it ends."""
    groups = {int(pgid) for pgid in pgids}
    for signum in (signal.SIGTERM, signal.SIGKILL):
        groups = {pgid for pgid in groups if signal_group(pgid, signum)}
        deadline = time.monotonic() + grace
        while groups and time.monotonic() < deadline:
            time.sleep(0.05)
            groups = {pgid for pgid in groups if signal_group(pgid, 0)}


def signal_group(pgid, signum):
    """Send signum (0: only look) to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
        return True
    except ProcessLookupError:
        return False


class LocalRunner:
    def __init__(self, request, max_parallel, gpu_sets, threads):
        self.request = request
        self.max_parallel = max_parallel
        self.free_gpus = SimpleQueue()
        for gpu_set in gpu_sets or []:
            self.free_gpus.put(gpu_set)
        self.use_gpus = bool(gpu_sets)
        self.threads = threads
        self.lock = threading.Lock()
        self.running = set()
        self.stopped_by = None
        self.guard = None  # a jobrunner.Guard, told each job's process group id under self.lock

    def run_job(self, job):
        """Run one job, write its log; returns its exit status (None if never started)."""
        gpus = self.free_gpus.get() if self.use_gpus else None
        try:
            return self._run(job, gpus)
        finally:
            if gpus is not None:
                self.free_gpus.put(gpus)

    def _run(self, job, gpus):
        log = self.request.log_of(job)
        command = self.request.command_of(job)
        env = dict(os.environ)
        if gpus is not None:
            env['CUDA_VISIBLE_DEVICES'] = ','.join(gpus)
        jobrunner.make_dirs_for(log)
        with open(log, 'w') as f:
            f.write(jobrunner.log_header(command))
            f.flush()
            start = time.monotonic()
            with self.lock:  # no new job once a signal asked to stop
                if self.stopped_by:
                    return None
                # Own session: a terminal's Ctrl-C reaches only us, and we stop the whole group.
                proc = subprocess.Popen(
                    ['bash', '-o', 'pipefail', '-c', command],
                    stdin=subprocess.DEVNULL,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
                self.running.add(proc)
                self.guard.started(proc.pid)  # start_new_session: the group id is the pid
            status = proc.wait()
            with self.lock:
                self.running.discard(proc)
                self.guard.ended(proc.pid)
            if status < 0:  # killed by a signal: report it as bash would
                status = 128 - status
            f.write(jobrunner.log_footer(round(time.monotonic() - start), self.threads, status))
        return status

    def stop(self, signum, frame):
        with self.lock:
            self.stopped_by = signum
            for proc in self.running:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def run_all(self):
        self.guard = jobrunner.Guard(kill_job_groups)  # before the pool's threads: it forks
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.stop)
        with ThreadPoolExecutor(self.max_parallel) as pool:
            statuses = list(pool.map(self.run_job, self.request.jobs))
        self.guard.close()  # every job has ended: the guard exits
        if self.stopped_by:
            print(f'{PROG}: stopped by signal {self.stopped_by}; the running jobs were killed', file=sys.stderr)
            return 128 + self.stopped_by
        failed = [(self.request.log_of(job), status) for job, status in zip(self.request.jobs, statuses) if status != 0]
        if failed:
            jobrunner.report_failures(PROG, failed, len(statuses))
            return 1
        return 0


def run(request):
    options = dict(max_jobs_run=str(os.cpu_count() or 1), gpu='0', num_threads='1')
    for name, value in request.options:
        if name not in ('max_jobs_run', 'gpu', 'num_threads', 'mem', 'time', 'config'):
            raise jobrunner.UsageError(f'unknown option --{name.replace("_", "-")}')
        options[name] = value
    max_parallel = jobrunner.int_option('max_jobs_run', options['max_jobs_run']) or os.cpu_count() or 1
    gpus_per_job = jobrunner.int_option('gpu', options['gpu'])
    threads = jobrunner.int_option('num_threads', options['num_threads'])
    gpu_sets = None
    if gpus_per_job:
        gpus = visible_gpus()
        if len(gpus) < gpus_per_job:
            raise jobrunner.UsageError(
                f'--gpu {gpus_per_job} but {len(gpus)} GPU(s) visible (CUDA_VISIBLE_DEVICES='
                f'{os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")}, else nvidia-smi -L); '
                'run on a machine with a GPU, or drop --gpu (CPU jobs; a recipe: ./run.sh --ngpu 0)'
            )
        gpu_sets = [gpus[k : k + gpus_per_job] for k in range(0, len(gpus) - gpus_per_job + 1, gpus_per_job)]
        max_parallel = min(max_parallel, len(gpu_sets))
    return LocalRunner(request, max_parallel, gpu_sets, threads).run_all()


if __name__ == '__main__':
    jobrunner.main(PROG, USAGE, run)
