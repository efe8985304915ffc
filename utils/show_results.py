#!/usr/bin/env python3
"""Gather every exp/<system>/score_<set>[_<variant>]/result.txt of a recipe into its RESULTS.md.

usage: utils/show_results.py <recipe-dir>                  # reads <recipe-dir>/exp, writes <recipe-dir>/RESULTS.md
       utils/show_results.py --exp exp --out RESULTS.md

One markdown table, | system | set | SDR | SDRi | SI-SNRi | SIR | SAR | PESQ | STOI | utts |, one block
of rows per set (sets sorted by name: cv, then tt), so that the systems of a set read one under
another: first the unprocessed mixture (exp/mixture/score_<set>/, written by steps/score.sh
--mixture true), then the systems sorted by name. A separation variant of a system, scored in
exp/<system>/score_<set>_<variant>/ (stage 4's separate_<set>_<variant>/), is the row
'<system> +<variant>' right after the system's own row: rti (k-means + matched run-time
inference), gl (Griffin-Lim), misi (MISI), in that order. Set names have no '_': any other
suffix is an error naming the dir. 'utts' is the number of utterances scored (every one of the
set: steps/score.sh skips none); a note lists, per result, the utterances at a metric's floor (a
silent estimate floors every metric, a PESQ failure PESQ, a STOI below 0 is clipped to STOI's floor:
see nnet/metrics.py), which the means include. A result.txt
without floored_<metric> counts or with a value that is not a finite number (written by an older
scorer, which left NaN out of its means) is an error naming it: re-run steps/score.sh.
An environment block (date, git commit, Python and torch versions, CPU) heads the file, as in
ESPnet's RESULTS.md. The file is written atomically, keeping the mode of the one it replaces; a
read-only one (chmod a-w) is left as it is, with an error.
Every row is checked against what it was made from (<score-dir>/provenance.yaml, nnet/provenance.py):
a result whose data dir changed since it was scored (a corpus re-made, other utterances) or whose
model changed since it separated (a system trained again) is left out of the table, named in a note
and on stderr; results of one set scored on different data dirs are an error.
"""

import argparse
import datetime
import glob
import importlib.metadata
import math
import os
import platform
import subprocess
import sys

import cocktail_env  # noqa: F401  the repository's nnet and .venv (utils/cocktail_env.py)
from nnet import datafiles, provenance
from nnet.metrics import METRICS as FLOORED  # result.txt has floored_<metric> for each

MIXTURE = "mixture"  # the exp/ name under which the recipes score the unprocessed mixture
VARIANTS = ("rti", "gl", "misi")  # score_<set>_<variant>: separation variants, in their row order
COLUMNS = ("SDR", "SDRi", "SI-SNRi", "SIR", "SAR", "PESQ", "STOI")


def read_result(path):
    try:
        table = datafiles.read_table(path)
    except (OSError, datafiles.TableError) as err:
        sys.exit(f"show_results.py: {err}")
    counts = ("num_utts",) + tuple(f"floored_{name}" for name in FLOORED)
    missing = [name for name in COLUMNS + counts if name not in table]
    if missing:
        sys.exit(f"show_results.py: {path}: no {', '.join(missing)}: re-run steps/score.sh for it")
    for name in COLUMNS:
        try:
            finite = math.isfinite(float(table[name]))
        except ValueError:
            finite = False
        if not finite:
            sys.exit(f"show_results.py: {path}: {name} '{table[name]}' is not a finite number: re-run steps/score.sh")
    for name in counts:
        if not table[name].isdigit():
            sys.exit(f"show_results.py: {path}: {name} '{table[name]}' is not a count: re-run steps/score.sh")
    return table


def parse_score_dir(score_dir):
    """(set, variant) of exp/<system>/score_<set>[_<variant>]; variant '' for the plain separation."""
    name = os.path.basename(score_dir)[len("score_") :]
    test_set, _, variant = name.rpartition("_")
    if not test_set:
        return name, ""
    if variant not in VARIANTS:
        sys.exit(
            f"show_results.py: {score_dir}: unknown variant '{variant}': a score dir is score_<set> or "
            f"score_<set>_<variant> with <variant> one of {', '.join(VARIANTS)}; move or rename it"
        )
    return test_set, variant


def gather(exp_dir):
    """([(row label, set, result table)], left out): a block per set, the mixture first, then the systems
    by name, each followed by its variants. A result whose data dir or model changed since it was
    scored (its provenance.yaml, nnet/provenance.py) is left out: [(row label, set, score dir, why)]."""
    found, stale, data_of_set = [], [], {}
    for path in glob.glob(os.path.join(exp_dir, "*", "score_*", "result.txt")):
        score_dir = os.path.dirname(path)
        system = os.path.basename(os.path.dirname(score_dir))
        test_set, variant = parse_score_dir(score_dir)
        label = f"{system} +{variant}" if variant else system
        order = (test_set, system != MIXTURE, system, VARIANTS.index(variant) + 1 if variant else 0)
        try:
            problems = provenance.score_problems(score_dir)
            record = provenance.read_record(score_dir)
        except provenance.ProvenanceError as err:
            sys.exit(f"show_results.py: {err}")
        if problems:
            stale.append((order, label, test_set, score_dir, "; ".join(problems)))
            continue
        if record is not None:  # one row block per set: all of it scored on one data
            data_of_set.setdefault(test_set, {}).setdefault(str(sorted(record["data"]["files"].items())), score_dir)
        found.append((order, label, test_set, read_result(path)))
    for test_set, dirs in data_of_set.items():
        if len(dirs) > 1:
            sys.exit(
                f"show_results.py: the results of set '{test_set}' were scored on different data ("
                + ", ".join(f"{d}: {provenance.read_record(d)['data']['path']}" for d in dirs.values())
                + "): score every system on one data dir, or give the sets other names"
            )
    rows = [(label, test_set, table) for _, label, test_set, table in sorted(found, key=lambda x: x[0])]
    return rows, [entry[1:] for entry in sorted(stale, key=lambda x: x[0])]


def left_out_note(stale):
    """The RESULTS.md lines naming the results left out and why."""
    if not stale:
        return ""
    lines = ["", "Left out, made from other data or by another model than there is now (re-run stages 4-5 for them):"]
    lines += [f"- {label} {test_set}: {why}" for label, test_set, _, why in stale]
    return "\n".join(lines) + "\n"


def format_cell(name, value):
    number = float(value)
    return f"{number:.3f}" if name == "STOI" else f"{number:.2f}"


def git_commit(directory):
    def git(*args):
        try:
            out = subprocess.run(["git", "--no-optional-locks", "-C", directory, *args], capture_output=True, text=True)
        except OSError:  # no git installed
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "HEAD")
    if not commit:
        return "unknown (not a git checkout)", ""
    # the RESULTS.md files a recipe regenerates do not make the code "changed"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)*RESULTS.md")
    dirty = " (with uncommitted changes)" if changed else ""
    return commit + dirty, git("log", "-1", "--format=%cd")


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment(directory):
    commit, commit_date = git_commit(directory)
    lines = [
        "## Environments",
        f"- date: `{datetime.datetime.now().astimezone().strftime('%a %b %d %H:%M:%S %Z %Y')}`",
        f"- python version: `{sys.version.split()[0]}`",
        f"- pytorch version: `{package_version('torch')}`",
        f"- Git hash: `{commit}`",
    ]
    if commit_date:
        lines.append(f"  - Commit date: `{commit_date}`")
    lines.append(f"- CPU: `{cpu_name()}` ({os.cpu_count()} cores)")
    return lines


def results_markdown(results, code_root):
    lines = ["<!-- Generated by utils/show_results.py: do not edit by hand -->", "# RESULTS", ""]
    lines += environment(code_root)
    lines += ["", "## Separation (dB for SDR, SDRi, SI-SNRi, SIR, SAR; BSS Eval v3, 512-tap filters)", ""]
    lines.append("| system | set | " + " | ".join(COLUMNS) + " | utts |")
    lines.append("|---|---|" + "---:|" * (len(COLUMNS) + 1))
    notes = []
    for system, test_set, table in results:
        cells = [format_cell(name, table[name]) for name in COLUMNS] + [table["num_utts"]]
        lines.append(f"| {system} | {test_set} | " + " | ".join(cells) + " |")
        floored = [f"{name} {table[f'floored_{name}']}" for name in FLOORED if table[f"floored_{name}"] != "0"]
        if floored:
            notes.append(f"- {system} {test_set} ({table['num_utts']} utterances): " + ", ".join(floored))
    if notes:
        lines += [
            "",
            "Utterances scored at a metric's floor (-150 dB, PESQ 1.0, STOI 0.0), included in the means, for "
            "one of three causes: a silent estimate (every metric at its floor), PESQ failing on an estimate "
            "(PESQ alone), a STOI below 0 clipped to 0 (STOI alone). per_utt.tsv's 'floored' column names the "
            "utterances, and each has a warning with its cause in "
            "exp/<system>/score_<set>[_<variant>]/log/score.*.log:",
        ]
        lines += notes
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe_dir", nargs="?", help="recipe directory (default: the current one)")
    parser.add_argument("--exp", help="experiment directory (default: <recipe-dir>/exp)")
    parser.add_argument("--out", help="output file (default: <recipe-dir>/RESULTS.md)")
    args = parser.parse_args()
    recipe = args.recipe_dir or "."
    exp_dir = args.exp or os.path.join(recipe, "exp")
    out = args.out or os.path.join(recipe, "RESULTS.md")
    if os.path.isfile(out) and not os.stat(out).st_mode & 0o222:  # chmod a-w: someone keeps this one
        mode = os.stat(out).st_mode & 0o7777
        sys.exit(
            f"show_results.py: {out} is read-only (mode {mode:04o}): it was left as it is; make it writable "
            f"(chmod u+w {out}) or write the table elsewhere with --out"
        )
    results, stale = gather(exp_dir)
    for _, _, score_dir, why in stale:
        print(f"show_results.py: left out {score_dir}: {why}", file=sys.stderr)
    if not results:
        more = f" that holds (left out: {len(stale)}, see above)" if stale else ""
        sys.exit(
            f"show_results.py: no {exp_dir}/*/score_*/result.txt{more}: run the scoring stage (steps/score.sh) first"
        )
    code_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # the commit of the code used
    text = results_markdown(results, code_root) + left_out_note(stale)
    with datafiles.atomic_write(out, encoding="utf-8") as f:
        f.write(text)
    print(f"show_results.py: {len(results)} results -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
