"""Shared code of the job runners utils/run.py, utils/slurm.py and utils/gridengine.py.

The contract is Kaldi's run.pl/queue.pl/slurm.pl one:
    <runner> [--name value | --name=value ...] [VAR=first:last | VAR=n] LOG COMMAND...
VAR (e.g. JOB) is replaced by the job number in LOG and in every word of COMMAND. The words are
joined into one bash command line (see command_line: a word that is exactly a shell operator such
as '|' or '>' stays an operator, every other word is quoted), which runs under
`bash -o pipefail -c`; its stdout and stderr go to LOG between a header and a footer.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


class UsageError(Exception):
    """Bad command line or config: the runner prints it with its usage and exits 1."""


class HelpRequested(Exception):
    """--help or -h: the runner prints its usage and exits 0."""


@dataclass
class Request:
    options: list  # [(name, value)] in command-line order, names with '_' for '-'
    job_var: str  # None without a VAR=range argument
    first: int
    last: int
    log: str  # LOG with job_var still in it
    command: list  # COMMAND words with job_var still in them

    @property
    def jobs(self):
        return range(self.first, self.last + 1)

    def log_of(self, job):
        return substitute(self.log, self.job_var, job)

    def command_of(self, job):
        return command_line([substitute(w, self.job_var, job) for w in self.command])


_RANGE = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*)=(\d+)(?::(\d+))?$')


def parse_args(argv):
    """Split argv (without the program name) into a Request; raises UsageError."""
    options = []
    i = 0
    if argv[:1] == ['-h']:
        raise HelpRequested()
    while i < len(argv) and argv[i].startswith('--'):
        arg = argv[i]
        if arg == '--help':
            raise HelpRequested()
        if '=' in arg:
            name, value = arg[2:].split('=', 1)
            i += 1
        else:
            if i + 1 >= len(argv):
                raise UsageError(f'option {arg} needs a value')
            name, value = arg[2:], argv[i + 1]
            i += 2
        if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_-]*', name):
            raise UsageError(f'bad option name {arg!r}')
        options.append((name.replace('-', '_'), value))
    rest = argv[i:]
    job_var, first, last = None, 1, 1
    match = _RANGE.match(rest[0]) if rest else None
    if match:
        job_var = match.group(1)
        first = int(match.group(2))
        last = int(match.group(3) or first)
        rest = rest[1:]
    # a word VAR=... before the log and command is a job range: one that does not parse is refused
    # rather than taken as the log's name (a file 'JOB=a:b' and one job)
    var = re.match(r'([A-Za-z_][A-Za-z0-9_]*)=', rest[0]) if len(rest) > 2 and not match else None
    if match and (first < 1 or last < first) or var:
        job_var = job_var or var.group(1)
        raise UsageError(
            f'bad job range {argv[i]!r}: need {job_var}=first:last (whole numbers, 1 <= first <= last) or {job_var}=n'
        )
    if len(rest) < 2:
        raise UsageError('need a log file and a command')
    log, command = rest[0], rest[1:]
    if job_var and last > first and job_var not in log:
        raise UsageError(f'{last - first + 1} jobs would write the same log {log}: put {job_var} in its name')
    return Request(options, job_var, first, last, log, command)


def substitute(text, var, job):
    """Kaldi's substitution: every occurrence of var, as a plain substring."""
    return text.replace(var, str(job)) if var else text


# Words kept as shell operators, so that `run.py log prog JOB '|' gzip -c '>' out.JOB.gz` works as
# with Kaldi's run.pl. run.pl passes every word without whitespace unquoted (so '$x', '*' and
# 'a>b' are live there too); here only a word that is exactly one of these is live, everything
# else reaches the program as the one argument it was. A lone '&' is deliberately not here: a job
# sent to the background would be reported finished while it still runs.
SHELL_OPERATORS = frozenset(
    [
        '|',
        '|&',
        '&&',
        '||',
        ';',
        '<',
        '>',
        '>>',
        '1>',
        '1>>',
        '2>',
        '2>>',
        '&>',
        '&>>',
        '2>&1',
        '1>&2',
        '>&2',
    ]
)


def command_line(words):
    """The bash command line of a word list: operator words as they are, every other word quoted."""
    return ' '.join(w if w in SHELL_OPERATORS else shlex.quote(w) for w in words)


def int_option(name, value):
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f'--{name.replace("_", "-")} takes an integer, not {value!r}') from None
    if number < 0:
        raise UsageError(f'--{name.replace("_", "-")} must be >= 0, not {number}')
    return number


def now():
    return time.strftime('%a %b %d %H:%M:%S %Z %Y')


def log_header(command):
    return f'# {command}\n# Started at {now()}\n#\n'


def log_footer(seconds, threads, status):
    return f'# Accounting: time={seconds} threads={threads}\n# Finished at {now()} with status {status}\n'


def report_failures(prog, failed, total):
    """Print which jobs failed ([(log, status)]) to stderr."""
    print(
        f'{prog}: {len(failed)} of {total} jobs failed; read the log{"s" if len(failed) > 1 else ""}:', file=sys.stderr
    )
    shown = 20
    for log, status in failed[:shown]:
        print(f'  {log}  (status {status})', file=sys.stderr)
    if len(failed) > shown:
        print(f'  ... and {len(failed) - shown} more', file=sys.stderr)


def main(prog, usage, run):
    """Run run(Request) -> exit code, turning UsageError into a message and exit 1."""
    try:
        request = parse_args(sys.argv[1:])
        sys.exit(run(request))
    except HelpRequested:
        try:
            print(usage)
        except BrokenPipeError:  # --help | head
            pass
        sys.exit(0)
    except UsageError as e:
        print(f'{prog}: {e}', file=sys.stderr)
        print(f'{usage.splitlines()[0]}\n(see {prog} --help)', file=sys.stderr)
        sys.exit(1)


class Guard:
    """A process forked to outlive the runner and stop what the runner leaves running when it dies
    unasked (SIGKILL, the OOM killer: no handler can catch those) or crashes. The runner reports
    each job it starts and each that ends through a pipe; when the pipe closes, the runner has
    exited, and the guard passes the jobs still running to clean_up (run.py kills their process
    groups, slurm.py and gridengine.py cancel their array job). Create it before any thread starts (it
    forks); callers serialize started/ended."""

    def __init__(self, clean_up):
        read_fd, write_fd = os.pipe()
        if os.fork() == 0:
            try:
                os.close(write_fd)
                os.setsid()  # a signal to the runner's process group does not take the guard along
                devnull = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):  # nor does it hold the runner's output open: `x=$(run.py ...)`
                    os.dup2(devnull, fd)
                running = set()
                with os.fdopen(read_fd) as reports:
                    for line in reports:
                        sign, job = line[0], line[1:].rstrip('\n')
                        if sign == '+':
                            running.add(job)
                        else:
                            running.discard(job)
                if running:
                    clean_up(running)
            finally:
                os._exit(0)
        os.close(read_fd)
        self.pipe = os.fdopen(write_fd, 'w', buffering=1)

    def started(self, job):
        self._report('+', job)

    def ended(self, job):
        self._report('-', job)

    def _report(self, sign, job):
        try:
            self.pipe.write(f'{sign}{job}\n')
        except OSError:  # the guard was killed by hand: the jobs themselves are unaffected
            pass

    def close(self):
        self.pipe.close()


def make_dirs_for(path):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


# ---------------------------------------------------------------------------------------------
# Schedulers (slurm.py, gridengine.py): Kaldi's config grammar, the array job script, the waiting.
# ---------------------------------------------------------------------------------------------


@dataclass
class SchedulerConfig:
    """A Kaldi conf/queue.conf-style file:
        command sbatch --export=PATH ...   first line: the submit program and its fixed options
        option mem=* --mem $0              any value; $0 is replaced by it
        option gpu=0                       this exact value (may add nothing)
        default gpu=0                      the value used when the command line does not set it
    '#' starts a comment. Option names may use '-' or '_'."""

    source: str  # for messages: the file, or 'the built-in config'
    command: list
    rules: dict  # name -> {value or '*': option text}
    defaults: dict  # name -> value

    @classmethod
    def parse(cls, text, source):
        command, rules, defaults = None, {}, {}
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split('#', 1)[0].strip()
            if not line:
                continue
            where = f'{source}:{number}'
            keyword, _, rest = line.partition(' ')
            if command is None:
                if keyword != 'command' or not rest.strip():
                    raise UsageError(f'{where}: the first line must be "command <submit program> [options]"')
                command = shlex.split(rest)
                continue
            if keyword not in ('option', 'default'):
                raise UsageError(f'{where}: expected "option name=value ..." or "default name=value", got {raw!r}')
            setting, _, text_of_option = rest.strip().partition(' ')
            name, equals, value = setting.partition('=')
            if not equals or not re.fullmatch(r'[A-Za-z][A-Za-z0-9_-]*', name) or not value:
                raise UsageError(f'{where}: expected name=value after "{keyword}", got {setting!r}')
            name = name.replace('-', '_')
            if keyword == 'default':
                if text_of_option.strip():
                    raise UsageError(f'{where}: "default {setting}" takes nothing after the value')
                defaults[name] = value
            else:
                rules.setdefault(name, {})[value] = text_of_option.strip()
        if command is None:
            raise UsageError(f'{source}: empty config; the first line must be "command <submit program> ..."')
        return cls(source, command, rules, defaults)

    @classmethod
    def load(cls, path, builtin):
        if path is None:
            return cls.parse(builtin, 'the built-in config')
        try:
            with open(path) as f:
                return cls.parse(f.read(), path)
        except OSError as e:
            raise UsageError(f'cannot read config {path}: {e.strerror}') from None

    def render(self, options):
        """Submit-program words for [(name, value)] options plus the defaults not overridden."""
        given = dict(options)
        settings = list(given.items()) + [(n, v) for n, v in self.defaults.items() if n not in given]
        words = []
        for name, value in settings:
            flag = '--' + name.replace('_', '-')
            rules = self.rules.get(name)
            if rules is None:
                raise UsageError(
                    f'option {flag} is not defined in {self.source}; add a line like '
                    f'"option {name}=* <scheduler options with $0 for the value>"'
                )
            if value in rules:
                text = rules[value]
            elif '*' in rules:
                text = rules['*'].replace('$0', value)
            else:
                raise UsageError(
                    f'{flag} {value} is not allowed by {self.source}, which defines only '
                    + ', '.join(f'{name}={v}' for v in rules)
                )
            words += shlex.split(text)
        return words


JOB_SCRIPT = """#!/usr/bin/env bash
# Written by {prog} for {njobs} job(s); submitted with:
# {submit}
cd {cwd} || exit 1
# Kaldi habit: the job gets the recipe's environment (venv, PYTHONPATH) from path.sh.
if [ -f ./path.sh ]; then . ./path.sh; elif [ -n {root} ] && [ -f {root}/path.sh ]; then . {root}/path.sh; fi
task=${{{task_var}:?this script runs as a task of a {scheduler} array job}}
cmd={command}
log={log}
{substitute}mkdir -p "$(dirname "$log")"
{{ echo "# $cmd"; echo "# Started at $(date)"; echo "# Running on $(hostname)"; }} > "$log"
start=$(date +%s)
bash -o pipefail -c "$cmd" >> "$log" 2>&1 < /dev/null
status=$?
{{ echo "# Accounting: time=$(($(date +%s) - start)) threads={threads}"
  echo "# Finished at $(date) with status $status"; }} >> "$log"
done_file={qdir}/done.${{{job_id_var}}}.$task
echo $status > "$done_file.tmp" && mv "$done_file.tmp" "$done_file"
# 0 or 1 only: other codes mean special things to some schedulers (Grid Engine: 99, 100).
[ $status -eq 0 ]
"""


class Scheduler:
    """What slurm.py and gridengine.py share; they fill in the scheduler-specific parts."""

    prog = None  # 'slurm.py'
    scheduler = None  # 'Slurm'
    usage = None
    builtin_config = None
    default_config = None  # used when present and no --config is given, like Kaldi's conf/queue.conf
    task_var = None  # environment variable holding the array task id
    job_id_var = None  # ... and the job id
    native_options = ()  # options the runner renders itself rather than through the config

    # scheduler-specific -------------------------------------------------------------------
    def submit_command(self, config_words, rendered, request, native, name, qdir, script):
        raise NotImplementedError

    def parse_job_id(self, stdout):
        raise NotImplementedError

    def queued_tasks(self, job_id):
        """Task ids of job_id the scheduler still holds (pending or running); None if unknown."""
        raise NotImplementedError

    def cancel(self, job_id):
        raise NotImplementedError

    def task_state(self, job_id, task):
        """A word on how a task ended (from accounting), or ''."""
        return ''

    # shared -------------------------------------------------------------------------------
    def run(self, request):
        config_path, threads, native, options = None, 1, {}, []
        for name, value in request.options:
            if name == 'config':
                config_path = value
                continue
            if name == 'num_threads':
                threads = int_option(name, value)
            if name in self.native_options:
                native[name] = int_option(name, value)
            else:
                options.append((name, value))
        if config_path is None and self.default_config and os.path.isfile(self.default_config):
            config_path = self.default_config
        config = SchedulerConfig.load(config_path, self.builtin_config)
        rendered = config.render(options)  # errors before anything is written or submitted

        log_dir = os.path.dirname(request.log)
        while request.job_var and request.job_var in log_dir:
            log_dir = os.path.dirname(log_dir)
        qdir = os.path.abspath(os.path.join(log_dir, 'q'))
        name = os.path.basename(request.log)
        if request.job_var:
            name = name.replace('.' + request.job_var, '').replace(request.job_var, '')
        name = re.sub(r'\.log$', '', name) or 'job'
        os.makedirs(qdir, exist_ok=True)
        script = os.path.join(qdir, name + '.sh')
        submit = self.submit_command(config.command, rendered, request, native, name, qdir, script)
        self.write_script(request, script, submit, qdir, threads)

        guard = Guard(lambda job_ids: [self.cancel(job_id) for job_id in job_ids])
        result = subprocess.run(submit, capture_output=True, text=True)
        if result.returncode != 0:
            guard.close()
            print(
                f'{self.prog}: submission failed (status {result.returncode}): {command_line(submit)}\n'
                f'{result.stdout}{result.stderr}',
                file=sys.stderr,
            )
            return 1
        job_id = self.parse_job_id(result.stdout)
        guard.started(job_id)
        stop = self._cancel_on_signals(job_id)
        try:
            statuses = self.wait(job_id, request, qdir)
            guard.ended(job_id)  # every task finished or left the queue; anything else: the guard cancels
        finally:
            stop()
            guard.close()
        failed = []
        for job in request.jobs:
            status = statuses[job]
            if status == 0:
                continue
            if status is None:
                state = self.task_state(job_id, job)
                status = (f'{state}, ' if state else '') + (
                    f'left the queue without finishing; see also {qdir}/{name}.{job}.out'
                )
            failed.append((request.log_of(job), status))
        if failed:
            report_failures(self.prog, failed, len(statuses))
            return 1
        return 0

    def write_script(self, request, script, submit, qdir, threads):
        var = request.job_var
        substitute = f'cmd=${{cmd//{var}/$task}}\nlog=${{log//{var}/$task}}\n' if var else ''
        root = os.environ.get('COCKTAIL_ROOT', '')
        text = JOB_SCRIPT.format(
            prog=self.prog,
            njobs=len(request.jobs),
            submit=command_line(submit),
            cwd=shlex.quote(os.getcwd()),
            root=shlex.quote(root),
            task_var=self.task_var,
            scheduler=self.scheduler,
            command=shlex.quote(command_line(request.command)),
            log=shlex.quote(request.log),
            substitute=substitute,
            threads=threads,
            qdir=shlex.quote(qdir),
            job_id_var=self.job_id_var,
        )
        tmp = script + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text)
        os.chmod(tmp, 0o755)
        os.replace(tmp, script)

    def _cancel_on_signals(self, job_id):
        def handler(signum, frame):
            self.cancel(job_id)
            print(f'{self.prog}: stopped by signal {signum}; cancelled {self.scheduler} job {job_id}', file=sys.stderr)
            sys.exit(128 + signum)

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]

    def wait(self, job_id, request, qdir):
        """Wait for every task's done file. A task the scheduler no longer holds and whose done file
        is still missing after a grace time has died (killed, out of memory, time limit); the grace
        covers a shared file system showing new files late (NFS attribute caching)."""
        grace = float(os.environ.get('COCKTAIL_DEAD_TASK_GRACE', 60))
        todo = set(request.jobs)
        statuses = {}
        prefix = f'done.{job_id}.'
        start = time.monotonic()
        sleep, next_check, suspects = 0.2, start + 2, {}
        while todo:
            now_ = time.monotonic()
            queued = self.queued_tasks(job_id) if now_ >= next_check else None
            for entry in os.listdir(qdir):
                if entry.startswith(prefix) and entry[len(prefix) :].isdigit():
                    task = int(entry[len(prefix) :])
                    if task in todo:
                        path = os.path.join(qdir, entry)
                        with open(path) as f:
                            text = f.read().strip()
                        statuses[task] = int(text) if text.lstrip('-').isdigit() else text
                        todo.discard(task)
                        os.remove(path)
            if now_ >= next_check:
                next_check = now_ + min(30.0, max(2.0, 0.1 * (now_ - start)))
                if queued is not None:
                    for task in sorted(todo - queued):
                        if now_ - suspects.setdefault(task, now_) >= grace:
                            statuses[task] = None
                            todo.discard(task)
                    for task in list(suspects):
                        if task in queued:
                            del suspects[task]
            if todo:
                time.sleep(sleep)
                sleep = min(1.0, sleep * 1.5)
        return statuses


def parse_task_ids(text):
    """Task ids from scheduler notation: '3', '1-4', '[2-5%2]', '1-7:2', '1,3-4'."""
    ids = set()
    for item in text.strip().strip('[]').split(','):
        item = item.split('%')[0].strip()
        match = re.fullmatch(r'(\d+)(?:-(\d+)(?::(\d+))?)?', item)
        if match:
            first = int(match.group(1))
            last = int(match.group(2) or first)
            ids.update(range(first, last + 1, int(match.group(3) or 1)))
    return ids
