#!/usr/bin/env python3
"""The failure campaign (issue 9): run every test marked `fault` and print one line per bad input.

usage: bench/fault_campaign.py [--keyword EXPR] [pytest args...]

Each `@pytest.mark.fault` test feeds one bad input or fault (a NaN feature, a truncated wav, a
killed job, a misspelled config key, ...) to the real scripts and checks what the issue asks: a
non-zero exit whose message names the file/key/utterance and the remedy, nothing left that a
re-run takes as complete, nothing of the user's overwritten. A passing test is a bad input met
with a clear error (or handled as documented); a failing one is a silent wrong result or lost data,
listed by name. The first line of each test's docstring says the input and the expected behaviour.
Prints the totals last: bad inputs tried, handled, failing.
"""

import collections
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Campaign:
    def __init__(self):
        self.outcomes = {}  # nodeid -> "passed" | "failed" | "skipped"
        self.docs = {}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            doc = (getattr(item.function, "__doc__", None) or "").strip().splitlines()
            self.docs[item.nodeid] = doc[0] if doc else "(no docstring)"

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            if self.outcomes.get(report.nodeid) != "failed":  # a teardown error after a pass counts
                self.outcomes[report.nodeid] = report.outcome


def main(argv):
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    campaign = Campaign()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-m", "fault", os.path.join(ROOT, "tests"), *argv], plugins=[campaign]
    )
    if not campaign.outcomes:
        print("fault_campaign.py: no test marked 'fault' ran", file=sys.stderr)
        return 1
    by_file = collections.defaultdict(collections.Counter)
    print("\n# failure campaign")
    for nodeid, outcome in sorted(campaign.outcomes.items()):
        by_file[nodeid.split("::")[0]][outcome] += 1
        print(f"{outcome:7s} {nodeid}\n        {campaign.docs.get(nodeid, '')}")
    print()
    for path, counts in sorted(by_file.items()):
        print(f"{path}: {sum(counts.values())} tried, {counts['passed']} handled, {counts['failed']} failing")
    total = collections.Counter(campaign.outcomes.values())
    print(
        f"bad inputs tried {sum(total.values())}, clear errors or documented handling {total['passed']}, "
        f"silent wrong results or data lost {total['failed']}, skipped {total['skipped']}"
    )
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
