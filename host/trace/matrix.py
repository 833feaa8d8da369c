"""Requirements, recorded test results, and the matrix and gate built from them.

Standard library only: the pytest plugin imports this in every pytest run,
and `tonus-trace` must work where nothing but the results file is present.
The results file carries the requirements it was recorded against, so it
renders the same wherever it is copied to.
"""

import json
import os
import tomllib

from host.errors import TonusError

FORMAT = 1
RESULTS_FILE = "results.json"

# what pytest reports for one test, worst first where one test has several
FAILED, ERROR, PASSED, SKIPPED, XFAILED, XPASSED = (
    "failed",
    "error",
    "passed",
    "skipped",
    "xfailed",
    "xpassed",
)
OUTCOMES = (FAILED, ERROR, PASSED, SKIPPED, XFAILED, XPASSED)

# a requirement's result; only PASSED satisfies the gate
UNTESTED = "untested"
REQUIREMENT_RESULTS = (FAILED, PASSED, SKIPPED, UNTESTED)


_GATE_TESTS_SHOWN = 5  # per requirement; the matrix lists them all
_GATE_MESSAGE_MAX = 120


def _first_line(text):
    line = text.strip().split("\n")[0]
    return line if len(line) <= _GATE_MESSAGE_MAX else line[: _GATE_MESSAGE_MAX - 3] + "..."


class TraceError(TonusError):
    """Requirements or results that cannot be read; the message says why."""


class NoResults(TraceError):
    pass


def load_requirements(path):
    """The requirements in file order, as dicts with id, title, text, source, safety."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise TraceError(f"no requirements file {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise TraceError(f"{path}: {e}") from None
    reqs = []
    for r in doc.get("requirement", []):
        if "id" not in r:
            raise TraceError(f"{path}: a [[requirement]] without id")
        reqs.append(
            {
                "id": r["id"],
                "title": r.get("title", ""),
                "text": r.get("text", ""),
                "source": r.get("source", ""),
                # anything but an explicit `false` counts as safety: the gate errs towards failing
                "safety": r.get("safety", True) is not False,
                # verified only by a pass on a board or an emulated board, never by the simulator alone
                "board": r.get("board", False) is True,
            }
        )
    return reqs


SIMULATOR = "simulator"  # a target kind: the simulator, in-process or over a socket


def on_board(test):
    """Did this test run on a board or an emulated board (a HIL target that is not the simulator)?"""
    return test.get("leg") == "hil" and test.get("target_kind") not in (None, SIMULATOR)


def test_key(test):
    # the same test on two HIL targets is two results
    return (test["nodeid"], test.get("target"))


class Results:
    """One or more pytest runs: the requirements, the runs, and each test's last result.

    A test is a dict: nodeid, leg ("cpython", "micropython" or "hil"), target
    (the HIL target URL or None), reqs, outcome (one of OUTCOMES), duration
    (seconds), message (why it did not pass), details (the traceback) and run
    (index into runs).
    """

    def __init__(self, requirements, runs, tests):
        self.requirements = list(requirements)
        self.runs = list(runs)
        self.tests = list(tests)

    def to_json(self):
        return {"format": FORMAT, "requirements": self.requirements, "runs": self.runs, "tests": self.tests}

    @classmethod
    def from_json(cls, doc):
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TraceError(f"results in an unknown format (expected format {FORMAT:d})")
        return cls(doc["requirements"], doc["runs"], doc["tests"])

    @classmethod
    def load(cls, directory):
        path = os.path.join(directory, RESULTS_FILE)
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise NoResults(f"no test results in {directory}: run pytest first") from None
        except ValueError as e:
            raise TraceError(f"{path}: {e}") from None
        return cls.from_json(doc)

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, RESULTS_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=1)
        os.replace(tmp, path)  # a reader never sees half a file
        return path

    def after(self, earlier):
        """These results recorded after `earlier`: a test run again replaces its old result.

        The requirements are this run's: the file as it is now.
        """
        offset = len(earlier.runs)
        mine = {test_key(t) for t in self.tests}
        kept = [t for t in earlier.tests if test_key(t) not in mine]
        moved = [dict(t, run=t["run"] + offset) for t in self.tests]
        return Results(self.requirements, earlier.runs + self.runs, kept + moved)

    def rows(self):
        """One Row per requirement, in file order."""
        by_req: dict[str, list[dict]] = {}
        for t in self.tests:
            for rid in t["reqs"]:
                by_req.setdefault(rid, []).append(t)
        return [Row(r, by_req.get(r["id"], [])) for r in self.requirements]

    def unknown_ids(self):
        """Requirement IDs that recorded tests name but the requirements no longer list."""
        known = {r["id"] for r in self.requirements}
        return sorted({rid for t in self.tests for rid in t["reqs"] if rid not in known})

    def gate_failures(self, board=False):
        """The safety requirements without a passing test, as Rows; with `board`, also the requirements
        marked `board = true` without a test that passed on a board or an emulated board.

        A failing test beside a passing one fails the run by itself; the
        gate is about what no test verified.
        """
        return [
            row
            for row in self.rows()
            if (row.req["safety"] and not row.counts.get(PASSED))
            or (board and row.req.get("board") and not row.board_passes)
        ]

    def targets(self):
        return sorted({t["target"] for t in self.tests if t.get("target")})


class Row:
    """A requirement, the tests that name it and what their results add up to."""

    def __init__(self, req, tests):
        self.req = req
        self.tests = sorted(tests, key=lambda t: t["nodeid"])
        self.counts: dict[str, int] = {}
        for t in self.tests:
            self.counts[t["outcome"]] = self.counts.get(t["outcome"], 0) + 1
        self.board_passes = sum(t["outcome"] == PASSED and on_board(t) for t in self.tests)
        if not self.tests:
            self.result = UNTESTED
        elif self.counts.get(FAILED) or self.counts.get(ERROR):
            self.result = FAILED
        elif self.counts.get(PASSED):
            self.result = PASSED
        else:
            # skipped, xfailed, or an xfail test that passed by chance: nothing verified
            self.result = SKIPPED

    def summary(self):
        """`3 passed, 1 skipped` or `untested`."""
        if not self.tests:
            return UNTESTED
        return ", ".join(f"{self.counts[o]:d} {o}" for o in OUTCOMES if o in self.counts)

    def why_not_passed(self):
        """For the gate: what happened to this requirement's tests."""
        if not self.tests:
            return "no test names it"
        if self.counts.get(PASSED) and self.req.get("board") and not self.board_passes:
            return (
                "needs a pass on a board or an emulated board; it passed only on the simulator "
                f"({self.summary()})"
            )
        n = len(self.tests)
        if self.counts.get(SKIPPED) == n:
            head = f"all {n:d} tests skipped" if n > 1 else "its test was skipped"
        else:
            head = f"no test passed ({self.summary()})"
        lines = [head + ":"]
        for t in self.tests[:_GATE_TESTS_SHOWN]:
            line = "{}: {}".format(t["nodeid"], t["outcome"])
            if t.get("message"):
                line += " ({})".format(_first_line(t["message"]))
            lines.append(line)
        if n > _GATE_TESTS_SHOWN:
            lines.append(f"and {n - _GATE_TESTS_SHOWN:d} more (see the matrix)")
        return "\n".join(lines)


def gate_report(results, board=False):
    """The gate's verdict as text, or None when every safety requirement has a passing test (and, with
    `board`, every requirement marked `board = true` a pass on a board or an emulated board)."""
    rows = results.gate_failures(board)
    if not rows:
        return None
    what = "safety requirement(s) without a passing test"
    if board:
        what += ", or board requirement(s) without a pass on a board"
    out = [f"{len(rows)} {what}:"]
    out += [
        "  {} {}: {}".format(row.req["id"], row.req["title"], row.why_not_passed().replace("\n", "\n      "))
        for row in rows
    ]
    return "\n".join(out)
