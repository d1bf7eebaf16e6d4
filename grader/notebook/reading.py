"""Read a submitted file into a v4 notebook, or say in the student's terms why not.

A batch of hundreds of submissions must not stop at one broken file, and the student who
sent it needs to know *what* is wrong with it, so every failure is a `LoadError` whose
one-line message names the file and the problem. Each stage (file system, bytes, text,
JSON, notebook structure, schema) is checked separately, because nbformat's own
exceptions do not tell a student whether their file is truncated, re-encoded, a web
page, or hand-edited.
"""
from __future__ import annotations

import codecs
import json
import os
import re
import stat
from dataclasses import dataclass
from typing import Any

import nbformat

from grader.notebook.cells import _size
from grader.notebook.limits import (
    MAX_CELLS,
    MAX_CODE_CHARS,
    MAX_JSON_CONTAINERS,
    MAX_JSON_DEPTH,
    MAX_NOTEBOOK_BYTES,
    MAX_OUTPUTS,
)
from grader.notebook.schema import Rejected, one_line, repair, to_v4, validated


@dataclass(frozen=True)
class LoadError:
    """Why a file could not be graded at all, worded for the student who submitted it."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def load_notebook(path: str | os.PathLike) -> nbformat.NotebookNode | LoadError:
    """Return the notebook as nbformat v4, or a LoadError; never raises for bad input.

    Each stage (file system, bytes, text, JSON, notebook structure, schema) is checked
    separately rather than left to `nbformat.read`, because nbformat's own exceptions
    ("Notebook does not appear to be JSON: '{\\n \"cells\"...'") do not tell a student
    whether their file is truncated, re-encoded, a web page, or hand-edited.
    Cosmetic deviations that nbformat can repair (missing cell ids, duplicate ids,
    unknown metadata, malformed outputs) are repaired instead of rejected: outputs and
    metadata play no part in grading, and old or third-party front ends write them.
    """
    shown = os.fsdecode(os.fspath(path))
    try:
        return _load(shown)
    except Rejected as rejected:
        return LoadError(shown, one_line(rejected.problem))
    except Exception as exc:  # noqa: BLE001 - a batch must survive anything a file can do to nbformat
        problem = f"could not be read as a notebook ({type(exc).__name__}: {exc})"
        return LoadError(shown, one_line(problem)[:300])


def _load(path: str) -> nbformat.NotebookNode:
    raw = _read_bytes(path)
    text = _decode(raw)
    data = _parse_json(text, len(raw))
    _check_nesting(data)
    _check_structure(data)
    nb = to_v4(data)
    repair(nb)
    return validated(nb)


def _read_bytes(path: str) -> bytes:
    """The file's bytes, read through one descriptor opened without following a link in
    its last component: whatever was checked (regular file, size) is what gets read, and a
    link swapped in after the batch looked at the folder is refused, not followed to the
    master notebook or a system file. Non-blocking, so a FIFO cannot stall the read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        if os.path.islink(path):
            raise Rejected("is a symbolic link to a file that does not exist") from None
        raise Rejected("does not exist") from None
    except NotADirectoryError:
        raise Rejected("does not exist (part of its folder path is a file, not a folder)") from None
    except PermissionError:
        raise Rejected("is not readable (permission denied)") from None
    except IsADirectoryError:
        raise Rejected("is a directory, not a notebook file") from None
    except OSError as exc:
        if os.path.islink(path):
            if not os.path.exists(path):
                raise Rejected("is a symbolic link to a file that does not exist") from None
            raise Rejected("is a symbolic link: a notebook must be a regular file (a link could point at "
                           "another student's notebook, the master notebook or a system file), so it was "
                           "not read") from None
        raise Rejected(f"could not be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise Rejected("is a directory, not a notebook file")
        if not stat.S_ISREG(info.st_mode):
            raise Rejected("is not a regular file (a device, pipe or socket), not a notebook file")
        if info.st_size == 0:
            raise Rejected("is empty (0 bytes)")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise Rejected(
                f"is too large to be graded ({info.st_size // 2**20} MB; the limit is "
                f"{MAX_NOTEBOOK_BYTES // 2**20} MB) — clear the cell outputs and submit again"
            )
        try:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
        except OSError as exc:
            raise Rejected(f"could not be read ({exc.strerror or exc})") from None
    if not raw:  # emptied between the check and the read
        raise Rejected("is empty (0 bytes)")
    return raw


# Files students upload by mistake; recognized by their first bytes so the message says
# what the file is instead of "invalid byte 0x89".
_FOREIGN_FORMATS = (
    (b"PK\x03\x04", "a zip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


def _decode(raw: bytes) -> str:
    for magic, what in _FOREIGN_FORMATS:
        if raw.startswith(magic):
            raise Rejected(f"is {what}, not a Jupyter notebook (.ipynb)")
    # Windows shells write UTF-16 when a notebook is redirected with `>`; the content is
    # fine, so read it rather than reject it.
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    offset = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + offset
        line = raw.count(b"\n", 0, at) + 1
        raise Rejected(
            f"is not UTF-8 text (invalid byte 0x{raw[at]:02x} at position {at}, line {line}) — "
            "was it saved by another program? Download it again from Jupyter"
        ) from None


def _parse_json(text: str, nbytes: int) -> Any:
    if not text.strip():
        raise Rejected(f"contains only whitespace ({nbytes} bytes), no notebook")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise Rejected(_describe_json_error(text, exc, nbytes)) from None
    except RecursionError:
        raise Rejected("is nested too deeply to be a notebook") from None


_CONFLICT_MARKER = re.compile(r"^(?:<{7}|={7}|>{7})(?: |$).*$", re.MULTILINE)


def _describe_json_error(text: str, exc: json.JSONDecodeError, nbytes: int) -> str:
    head = text.lstrip()[:200].lower()
    if head.startswith(("<!doctype html", "<html")):
        return (
            "is an HTML web page, not a notebook — it was probably saved from the browser "
            "instead of downloaded as a .ipynb file"
        )
    conflict = _CONFLICT_MARKER.search(text)
    if conflict:
        line = text.count("\n", 0, conflict.start()) + 1
        return (
            f"contains unresolved merge-conflict markers (line {line}: `{conflict.group(0)[:40]}`) "
            "— keep one version and delete the marker lines"
        )
    if exc.msg.startswith("Unterminated string") or exc.pos >= len(text.rstrip()):
        return (
            f"ends in the middle of the JSON (truncated at byte {nbytes}) — the save or upload "
            "was probably interrupted; submit the complete file"
        )
    if exc.msg == "Extra data":
        return (
            f"has extra text after the end of the notebook (line {exc.lineno}, column {exc.colno}) "
            "— were two files pasted together, or the file edited by hand?"
        )
    first = text.lstrip().split("\n", 1)[0]
    at_start = exc.pos == len(text) - len(text.lstrip())
    if at_start and re.match(r"(#|import\s|from\s|def\s|class\s|print\()", first):
        return "is a Python script, not a Jupyter notebook (.ipynb) — submit the notebook file itself"
    return (
        f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}) "
        "— was the file truncated or edited by hand?"
    )


def _check_nesting(data: Any) -> None:
    """Refuse JSON nested deeper than `MAX_JSON_DEPTH`, or holding more lists and objects
    than `MAX_JSON_CONTAINERS`, before nbformat sees it. nbformat copies and validates
    recursively, one Python object at a time: deep nesting anywhere (even in metadata
    nobody grades) fails at whichever step first runs out of stack, and a million empty
    objects took 10 s and 1.5 GB here. This walk keeps its own stack and sees every
    value once."""
    stack: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, (dict, list)) else []
    containers = 0
    while stack:
        value, depth = stack.pop()
        containers += 1
        if depth > MAX_JSON_DEPTH:
            raise Rejected(
                f"is nested too deeply to be a notebook (more than {MAX_JSON_DEPTH} levels of lists and objects)"
            )
        if containers > MAX_JSON_CONTAINERS:
            raise Rejected(
                f"holds more than {MAX_JSON_CONTAINERS:,} JSON lists and objects, more than the grader reads "
                "— clear the cell outputs (Edit > Clear All Outputs) and submit again"
            )
        inner = value.values() if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in inner if isinstance(item, (dict, list)))


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return f"`{json.dumps(value)}`"
    if isinstance(value, (int, float)):
        return "a number"
    return "an object"


def _check_structure(data: Any) -> None:
    """Reject, with a specific reason, shapes that nbformat would only crash on."""
    if not isinstance(data, dict):
        raise Rejected(
            f"is JSON but not a Jupyter notebook (it holds {_json_kind(data)}, not an object with 'cells')"
        )
    if not any(key in data for key in ("cells", "nbformat", "worksheets")):
        raise Rejected("is JSON but not a Jupyter notebook (no 'cells' and no 'nbformat' field)")
    if "nbformat" not in data:
        # Hand-assembled or tool-generated files sometimes omit the version; the rest of
        # the file says which layout it uses.
        data["nbformat"] = 3 if "worksheets" in data and "cells" not in data else 4
    major = data["nbformat"]
    if type(major) is not int:
        raise Rejected(
            f"has an invalid format version ('nbformat': {json.dumps(major)[:40]}; expected a number such as 4)"
        )
    if major not in nbformat.versions:
        known = sorted(nbformat.versions)
        raise Rejected(
            f"uses notebook format version {major}, which this grader cannot read "
            f"(it reads versions {known[0]} to {known[-1]})"
        )
    if major >= 4:
        if "cells" not in data:
            raise Rejected("is a notebook missing its 'cells' list")
        _check_cells(data["cells"], "")
        _check_size(data["cells"])
        if "nbformat_minor" not in data or type(data["nbformat_minor"]) is not int or data["nbformat_minor"] < 0:
            has_ids = any("id" in cell for cell in data["cells"])
            data["nbformat_minor"] = 5 if has_ids else 4
        elif data["nbformat_minor"] < 5 and any("id" in cell for cell in data["cells"]):
            # Cell ids were added in 4.5; a file claiming an older minor version but
            # carrying ids was written by a newer Jupyter and is otherwise fine.
            data["nbformat_minor"] = 5
        if not isinstance(data.get("metadata"), dict):
            data["metadata"] = {}
    elif major == 1:
        if not isinstance(data.get("cells"), list):
            raise Rejected("is a format-1 notebook missing its 'cells' list")
        _check_cells(data["cells"], "")
        _check_size(data["cells"])
    else:  # formats 2 and 3 keep their cells in worksheets
        worksheets = data.get("worksheets")
        if not isinstance(worksheets, list):
            raise Rejected(f"is a format-{major} notebook missing its 'worksheets' list")
        for w, sheet in enumerate(worksheets):
            if not isinstance(sheet, dict) or not isinstance(sheet.get("cells"), list):
                raise Rejected(f"is a format-{major} notebook whose worksheet {w + 1} has no 'cells' list")
            _check_cells(sheet["cells"], f"worksheet {w + 1}, ")
        _check_size([cell for sheet in worksheets for cell in sheet["cells"]])
    if major < 4:
        if type(data.get("nbformat_minor")) is not int or data["nbformat_minor"] < 0:
            data["nbformat_minor"] = 0
        if not isinstance(data.get("metadata"), dict):
            data["metadata"] = {}


def _check_size(cells: list[Any]) -> None:
    """Refuse, before nbformat walks it, a notebook past the caps in `limits`: checking
    the schema and parsing the code of such a file could hold the grading process for
    minutes, and no real assignment comes near them."""
    if len(cells) > MAX_CELLS:
        raise Rejected(
            f"has {len(cells):,} cells, more than the {MAX_CELLS:,} the grader reads "
            "— submit the assignment's notebook, not a generated one"
        )
    chars = outputs = 0
    for cell in cells:
        if cell.get("cell_type") == "code":
            text = cell.get("source", cell.get("input", ""))
            chars += len(text) if isinstance(text, str) else sum(len(line) for line in text)
            outputs += len(cell["outputs"]) if isinstance(cell.get("outputs"), list) else 0
    if outputs > MAX_OUTPUTS:
        # Outputs are never graded; checking each against the schema costs about 0.1 ms
        # (three times over), so past the budget they all go and grading goes on.
        for cell in cells:
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
    if chars > MAX_CODE_CHARS:
        raise Rejected(
            f"holds {_size(chars)} of code in its code cells, more than the {_size(MAX_CODE_CHARS)} the "
            "grader reads — remove pasted data or generated code and submit again"
        )


def _check_cells(cells: Any, where: str) -> None:
    if not isinstance(cells, list):
        raise Rejected(f"is a notebook whose 'cells' field is {_json_kind(cells)}, not a list")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise Rejected(f"has a damaged cell ({where}cell {i + 1} is {_json_kind(cell)}, not an object)")
        for key in ("source", "input"):
            text = cell.get(key, "")
            lines = isinstance(text, list) and all(isinstance(s, str) for s in text)
            if not (isinstance(text, str) or lines):
                raise Rejected(
                    f"has a damaged cell ({where}cell {i + 1}: its '{key}' is neither text nor a list of lines)"
                )
        # nbformat's readers index these unconditionally; scripts that generate
        # notebooks often leave them out or garble them, and grading needs none of them.
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = {}
        if "attachments" in cell and not isinstance(cell["attachments"], dict):
            del cell["attachments"]
        if cell.get("cell_type") == "code":
            if not isinstance(cell.get("outputs"), list):
                cell["outputs"] = []
            if type(cell.get("execution_count")) is not int:
                cell["execution_count"] = None
        if "id" in cell and not (isinstance(cell["id"], str) and _CELL_ID.fullmatch(cell["id"])):
            del cell["id"]  # normalize() gives it a fresh one


_CELL_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
