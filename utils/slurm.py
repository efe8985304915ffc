#!/usr/bin/env python3
"""Run jobs as one Slurm array job, Kaldi slurm.pl style; see USAGE."""

import subprocess

import jobrunner

USAGE = """\
Usage: utils/slurm.py [options] [JOB=1:N] <log> <command>...
Submits <command> as the Slurm array job `sbatch --array=1-N[%M]` and waits for it. JOB (any name) is
replaced by the task number in <log> and in the command words; a word that is exactly a shell
operator ('|', '>', '2>', '&&', ..., as in utils/run.py --help) acts as one.
 e.g.: utils/slurm.py --mem 4G JOB=1:8 exp/x/log/feats.JOB.log python3 x.py --job JOB
Options:
  --config FILE      the option mapping (Kaldi's grammar, see egs/*/conf/slurm.conf); default
                     conf/slurm.conf when it exists, else the built-in one below
  --max-jobs-run M   at most M tasks at once (--array=...%M); default: no limit
  --gpu N --mem X --num-threads N --time T, or any option the config defines: mapped to sbatch
                     options through the config; an option it does not define is an error
The job script and the per-task scheduler output go to <log dir>/q/. Each task writes
q/done.<jobid>.<task> with its status; tasks that leave the queue without one count as failed.
A task that leaves the queue without a done file fails after COCKTAIL_DEAD_TASK_GRACE seconds
(environment, default 60: room for NFS delays). SIGINT/SIGTERM cancel the job (scancel); so
does the guard process slurm.py forks, when slurm.py is killed outright (SIGKILL).
Exit status: 0 when every task succeeded, else 1.
Built-in config:
{config}"""

BUILTIN_CONFIG = """\
command sbatch --export=PATH --ntasks=1
option time=* --time=$0
option mem=* --mem=$0
option mem=0
option num_threads=* --cpus-per-task=$0
option num_threads=1
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""


class Slurm(jobrunner.Scheduler):
    prog = 'slurm.py'
    scheduler = 'Slurm'
    usage = USAGE.format(config=BUILTIN_CONFIG)
    builtin_config = BUILTIN_CONFIG
    default_config = 'conf/slurm.conf'
    task_var = 'SLURM_ARRAY_TASK_ID'
    job_id_var = 'SLURM_ARRAY_JOB_ID'
    native_options = ('max_jobs_run',)

    def submit_command(self, config_words, rendered, request, native, name, qdir, script):
        array = f'{request.first}-{request.last}'
        if native.get('max_jobs_run'):
            array += f'%{native["max_jobs_run"]}'
        return [
            *config_words,
            *rendered,
            '--parsable',
            f'--array={array}',
            f'--job-name={name}',
            f'--output={qdir}/{name}.%a.out',
            script,
        ]

    def parse_job_id(self, stdout):
        # --parsable prints "<jobid>" or "<jobid>;<cluster>"
        return stdout.strip().splitlines()[-1].split(';')[0]

    def queued_tasks(self, job_id):
        result = subprocess.run(
            ['squeue', '--noheader', '--array', '--jobs', job_id, '--format=%K'], capture_output=True, text=True
        )
        if result.returncode != 0:
            # a job the controller already purged: nothing of it is queued any more
            return set() if 'Invalid job id' in result.stderr else None
        ids = set()
        for line in result.stdout.split():
            ids |= jobrunner.parse_task_ids(line)
        return ids

    def cancel(self, job_id):
        subprocess.run(['scancel', job_id], capture_output=True)

    def task_state(self, job_id, task):
        # sacct needs accounting storage, which many small clusters lack: then say nothing
        result = subprocess.run(
            ['sacct', '--noheader', '--parsable2', '--allocations', '--format=State', f'--jobs={job_id}_{task}'],
            capture_output=True,
            text=True,
        )
        return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ''


if __name__ == '__main__':
    runner = Slurm()
    jobrunner.main(runner.prog, runner.usage, runner.run)
