"""One JSON object per line: the CLI's `--format json` contract for scripts and batch logs.

One line means one submission even for tools that split on any Unicode line break
(Python's str.splitlines splits on U+2028 too), hence ASCII-only output with every
non-ASCII character escaped. Details are the instructor's: this is never shown to a
student as is.
"""
from __future__ import annotations

import json
from typing import Any

from grader.results import SubmissionResult

from grader.render import _common as c


def to_dict(result: SubmissionResult) -> dict[str, Any]:
    return {
        "submission": result.submission,
        "score": c.final_score(result),
        "max_score": float(result.max_score),
        "execution_time": round(result.execution_time, 3),
        "tests": [
            {
                "name": t.name,
                "exercise": t.exercise,
                "score": float(t.score),
                "max_score": float(t.max_score),
                "status": t.status.external,
                "output": c.details_plain(t),
                "visibility": t.visibility.value,
                "diagnosis": t.diagnosis,
            }
            for t in result.tests
        ],
        "errors": list(result.errors),
        "warnings": list(result.warnings),
        "notes": list(getattr(result, "notes", [])),  # the instructor's only (e.g. declared-missing modules)
        "isolation": result.isolation,
    }


def to_json_line(result: SubmissionResult) -> str:
    """The line, without its trailing newline (the caller writes one per submission)."""
    return json.dumps(to_dict(result), ensure_ascii=True, separators=(",", ":"))
