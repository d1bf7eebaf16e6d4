"""JUnit XML for CI dashboards and instructors' tooling: one `<testsuite>` per submission.

Built with ElementTree so quoting is never hand-rolled; ElementTree does not, however,
refuse characters XML 1.0 forbids (most control characters), which student output
contains easily, so all text first goes through `_common.safe_text`, which rewrites them
as visible escapes. This is an instructor format: hidden tests appear in full.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable

from grader.results import Status, SubmissionResult

from grader.render import _common as c

# A failure `message` attribute is a one-line summary; the full text is the element body.
_MESSAGE_MAX = 300


def _x(text: object) -> str:
    return c.safe_text(str(text))


def _one_line(text: str) -> str:
    line = " ".join(_x(text).split())
    return line if len(line) <= _MESSAGE_MAX else line[:_MESSAGE_MAX - 1] + "…"


def _time(seconds: float) -> str:
    return f"{max(0.0, float(seconds)):.3f}"


def _suite(result: SubmissionResult) -> tuple[ET.Element, dict[str, int]]:
    suite = ET.Element("testsuite", name=_x(result.submission))
    props = ET.SubElement(suite, "properties")
    for name, value in (("assignment", result.assignment), ("student", result.student),
                        ("score", c.fmt_score(c.final_score(result))),
                        ("max_score", c.fmt_score(result.max_score)),
                        ("isolation", result.isolation),
                        ("hidden_tests_run", str(result.hidden_tests_run).lower())):
        if value != "":
            ET.SubElement(props, "property", name=name, value=_x(value))

    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for t in result.tests:
        case = ET.SubElement(suite, "testcase",
                             classname=_x(f"{result.assignment}.{t.exercise}" if t.exercise
                                          else result.assignment),
                             name=_x(t.name), time=_time(t.duration))
        counts["tests"] += 1
        if t.status is Status.NOT_RUN:
            ET.SubElement(case, "skipped", message=_one_line(f"not run: {c.not_run_reason(t)}"))
            counts["skipped"] += 1
        elif t.status is Status.FAILED:
            failure = ET.SubElement(case, "failure", message=_one_line(t.message or "failed"),
                                    type=_x(t.diagnosis or "CheckFailed"))
            failure.text = c.details_plain(t)
            counts["failures"] += 1
        out = [] if t.status is Status.FAILED else [f"{c.NOTE_LABEL} {n}" for n in t.notes]
        if t.output.strip() and t.status is not Status.FAILED:
            # A failure's body already quotes the output (and the notes); elsewhere no other home.
            out.append(t.output)
        if out:
            ET.SubElement(case, "system-out").text = _x("\n".join(out))
    if result.errors:
        # One test case carries the fatal errors, so CI tools that only count test cases
        # still show the submission as broken rather than as an empty pass.
        case = ET.SubElement(suite, "testcase", classname=_x(result.assignment or "grader"),
                             name=c.NOT_GRADED, time=_time(result.execution_time))
        err = ET.SubElement(case, "error", message=_one_line(result.errors[0]), type="GradingError")
        err.text = "\n".join(_x(e) for e in result.errors)
        counts["tests"] += 1
        counts["errors"] += 1
    if result.warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(_x(w) for w in result.warnings)
    for key, n in counts.items():
        suite.set(key, str(n))
    suite.set("time", _time(result.execution_time))
    return suite, counts


def to_junit(results: Iterable[SubmissionResult], *, suite_name: str = "grader") -> str:
    """A JUnit XML document (UTF-8, with declaration) for any number of submissions."""
    root = ET.Element("testsuites", name=_x(suite_name))
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for result in results:
        suite, counts = _suite(result)
        root.append(suite)
        for k in totals:
            totals[k] += counts[k]
        total_time += result.execution_time
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("time", _time(total_time))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
