#!/usr/bin/env python3
"""Run jobs as one Grid Engine array job: Kaldi's queue.pl (named after the scheduler, not the
standard library's queue module, which a script named queue.py would hide from its siblings); see USAGE."""

import re
import subprocess

import jobrunner

USAGE = """\
Usage: utils/gridengine.py [options] [JOB=1:N] <log> <command>...
Submits <command> as the Grid Engine array job `qsub -t 1:N` and waits for it. JOB (any name) is
replaced by the task number in <log> and in the command words; a word that is exactly a shell
operator ('|', '>', '2>', '&&', ..., as in utils/run.py --help) acts as one.
 e.g.: utils/gridengine.py --mem 4G JOB=1:8 exp/x/log/feats.JOB.log python3 x.py --job JOB
Options:
  --config FILE      the option mapping (Kaldi's grammar, see egs/*/conf/queue.conf); default
                     conf/queue.conf when it exists, else the built-in one below
  --gpu N --mem X --num-threads N --max-jobs-run M --time T, or any option the config defines:
                     mapped to qsub options through the config; one it does not define is an error
The job script and the per-task scheduler output go to <log dir>/q/. Each task writes
q/done.<jobid>.<task> with its status; a task that leaves the queue without one, or sits in an
error state, fails after COCKTAIL_DEAD_TASK_GRACE seconds (environment, default 60: room for NFS
delays). SIGINT/SIGTERM delete the job (qdel); so does the guard process gridengine.py forks,
when gridengine.py is killed outright (SIGKILL). Exit status: 0 when every task succeeded, else 1.
Built-in config:
{config}"""

BUILTIN_CONFIG = """\
command qsub -v PATH -cwd -S /bin/bash -j y
option time=* -l h_rt=$0
option mem=* -l mem_free=$0
option mem=0
option num_threads=* -pe smp $0
option num_threads=1
option max_jobs_run=* -tc $0
default gpu=0
option gpu=0
option gpu=* -l gpu=$0
"""


class GridEngine(jobrunner.Scheduler):
    prog = 'gridengine.py'
    scheduler = 'Grid Engine'
    usage = USAGE.format(config=BUILTIN_CONFIG)
    builtin_config = BUILTIN_CONFIG
    default_config = 'conf/queue.conf'
    task_var = 'SGE_TASK_ID'
    job_id_var = 'JOB_ID'

    def __init__(self):
        self.in_error = set()

    def submit_command(self, config_words, rendered, request, native, name, qdir, script):
        # job names may not start with a digit nor hold / : @ \ * ?
        name = re.sub(r'[/:@\\*?\s]', '_', name)
        if name[0].isdigit():
            name = 'j' + name
        # $TASK_ID in -o is Grid Engine's own placeholder, not a shell variable
        return [
            *config_words,
            *rendered,
            '-terse',
            '-t',
            f'{request.first}:{request.last}',
            '-N',
            name,
            '-o',
            f'{qdir}/{name}.$TASK_ID.out',
            script,
        ]

    def parse_job_id(self, stdout):
        # -terse prints "<jobid>.<first>-<last>:<step>" for an array job
        return stdout.strip().splitlines()[-1].split('.')[0]

    def queued_tasks(self, job_id):
        result = subprocess.run(['qstat', '-u', '*'], capture_output=True, text=True)
        if result.returncode != 0:
            return None
        ids = set()
        for line in result.stdout.splitlines():
            fields = line.split()
            # job-ID prior name user state submit/start-at [queue] slots ja-task-ID
            if len(fields) >= 8 and fields[0] == job_id:
                tasks = jobrunner.parse_task_ids(fields[-1])
                if 'E' in fields[4]:  # e.g. Eqw: it would wait for ever
                    self.in_error |= tasks
                else:
                    ids |= tasks
        return ids

    def cancel(self, job_id):
        subprocess.run(['qdel', job_id], capture_output=True)

    def task_state(self, job_id, task):
        if task in self.in_error:
            return f'in an error state (see qstat -j {job_id} -explain E; qdel {job_id} removes it)'
        result = subprocess.run(['qacct', '-j', job_id, '-t', str(task)], capture_output=True, text=True)
        found = dict(line.split(None, 1) for line in result.stdout.splitlines() if len(line.split(None, 1)) == 2)
        if result.returncode == 0 and 'failed' in found:
            return f'qacct: failed={found["failed"].strip()} exit_status={found.get("exit_status", "?").strip()}'
        return ''


if __name__ == '__main__':
    runner = GridEngine()
    jobrunner.main(runner.prog, runner.usage, runner.run)
