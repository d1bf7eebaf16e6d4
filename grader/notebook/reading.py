"""Read a submitted notebook and decide which of its code the sandbox will run.

Nothing here executes student code: the notebook is only parsed (JSON, then `ast`).
Two halves:

* `load_notebook` turns a path into a v4 `NotebookNode` or a `LoadError`. A batch of
  hundreds of submissions must not stop at one broken file, and the student who sent it
  needs to know *what* is wrong with it in their own terms, so every failure is a value
  whose one-line message names the file and the problem.
* `extract_program` picks the statements worth running. A student's notebook is a
  record of an interactive session: it trains models, plots, prints, installs packages,
  and often defines the same function several times while they iterate. Re-running all
  of that would be slow, fragile and sometimes harmful, and the grader only needs the
  definitions. So it keeps imports, `def`, `class` and constant assignments, in
  notebook order, and exactly one definition of each graded function.
"""
from __future__ import annotations

import ast
import codecs
import difflib
import json
import logging
import os
import re
import stat
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import nbformat
from nbformat.validator import ValidationError

__all__ = [
    "MAX_NOTEBOOK_BYTES",
    "Chunk",
    "LoadError",
    "Located",
    "Program",
    "code_cells",
    "extract_program",
    "load_notebook",
    "source_of",
]

# Far above any real notebook (even with embedded images), low enough that one odd
# upload cannot exhaust the grading process's memory.
MAX_NOTEBOOK_BYTES = 256 * 1024 * 1024


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadError:
    """Why a file could not be graded at all, worded for the student who submitted it."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class _Rejected(Exception):
    """Carries a student-facing problem to the one place that turns it into a LoadError,
    so the helpers below can bail out from any depth without each building the value."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


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
    except _Rejected as rejected:
        return LoadError(shown, _one_line(rejected.problem))
    except Exception as exc:  # noqa: BLE001 - a batch must survive anything a file can do to nbformat
        problem = f"could not be read as a notebook ({type(exc).__name__}: {exc})"
        return LoadError(shown, _one_line(problem)[:300])


def _load(path: str) -> nbformat.NotebookNode:
    raw = _read_bytes(path)
    text = _decode(raw)
    data = _parse_json(text, len(raw))
    _check_structure(data)
    nb = _to_v4(data)
    _repair(nb)
    return _validated(nb)


def _read_bytes(path: str) -> bytes:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise _Rejected("is a symbolic link to a file that does not exist") from None
        raise _Rejected("does not exist") from None
    except NotADirectoryError:
        raise _Rejected("does not exist (part of its folder path is a file, not a folder)") from None
    except PermissionError:
        raise _Rejected("is not readable (permission denied)") from None
    except OSError as exc:
        raise _Rejected(f"could not be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise _Rejected("is a directory, not a notebook file")
    if not stat.S_ISREG(info.st_mode):
        raise _Rejected("is not a regular file (a device, pipe or socket), not a notebook file")
    if info.st_size == 0:
        raise _Rejected("is empty (0 bytes)")
    if info.st_size > MAX_NOTEBOOK_BYTES:
        raise _Rejected(
            f"is too large to be graded ({info.st_size // 2**20} MB; the limit is "
            f"{MAX_NOTEBOOK_BYTES // 2**20} MB) — clear the cell outputs and submit again"
        )
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_NOTEBOOK_BYTES + 1)
    except PermissionError:
        raise _Rejected("is not readable (permission denied)") from None
    except OSError as exc:
        raise _Rejected(f"could not be read ({exc.strerror or exc})") from None
    if not raw:  # emptied between stat and read
        raise _Rejected("is empty (0 bytes)")
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
            raise _Rejected(f"is {what}, not a Jupyter notebook (.ipynb)")
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
        raise _Rejected(
            f"is not UTF-8 text (invalid byte 0x{raw[at]:02x} at position {at}, line {line}) — "
            "was it saved by another program? Download it again from Jupyter"
        ) from None


def _parse_json(text: str, nbytes: int) -> Any:
    if not text.strip():
        raise _Rejected(f"contains only whitespace ({nbytes} bytes), no notebook")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Rejected(_describe_json_error(text, exc, nbytes)) from None
    except RecursionError:
        raise _Rejected("is nested too deeply to be a notebook") from None


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
        raise _Rejected(
            f"is JSON but not a Jupyter notebook (it holds {_json_kind(data)}, not an object with 'cells')"
        )
    if not any(key in data for key in ("cells", "nbformat", "worksheets")):
        raise _Rejected("is JSON but not a Jupyter notebook (no 'cells' and no 'nbformat' field)")
    if "nbformat" not in data:
        # Hand-assembled or tool-generated files sometimes omit the version; the rest of
        # the file says which layout it uses.
        data["nbformat"] = 3 if "worksheets" in data and "cells" not in data else 4
    major = data["nbformat"]
    if type(major) is not int:
        raise _Rejected(
            f"has an invalid format version ('nbformat': {json.dumps(major)[:40]}; expected a number such as 4)"
        )
    if major not in nbformat.versions:
        known = sorted(nbformat.versions)
        raise _Rejected(
            f"uses notebook format version {major}, which this grader cannot read "
            f"(it reads versions {known[0]} to {known[-1]})"
        )
    if major >= 4:
        if "cells" not in data:
            raise _Rejected("is a notebook missing its 'cells' list")
        _check_cells(data["cells"], "")
        if "nbformat_minor" not in data or type(data["nbformat_minor"]) is not int:
            has_ids = any("id" in cell for cell in data["cells"])
            data["nbformat_minor"] = 5 if has_ids else 4
        elif data["nbformat_minor"] < 5 and any("id" in cell for cell in data["cells"]):
            # Cell ids were added in 4.5; a file claiming an older minor version but
            # carrying ids was written by a newer Jupyter and is otherwise fine.
            data["nbformat_minor"] = 5
        if not isinstance(data.get("metadata"), dict):
            data["metadata"] = {}
    elif major == 3:
        worksheets = data.get("worksheets")
        if not isinstance(worksheets, list):
            raise _Rejected("is a format-3 notebook missing its 'worksheets' list")
        for w, sheet in enumerate(worksheets):
            if not isinstance(sheet, dict) or not isinstance(sheet.get("cells"), list):
                raise _Rejected(f"is a format-3 notebook whose worksheet {w + 1} has no 'cells' list")
            _check_cells(sheet["cells"], f"worksheet {w + 1}, ")
        if not isinstance(data.get("metadata"), dict):
            data["metadata"] = {}


def _check_cells(cells: Any, where: str) -> None:
    if not isinstance(cells, list):
        raise _Rejected(f"is a notebook whose 'cells' field is {_json_kind(cells)}, not a list")
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict):
            raise _Rejected(f"has a damaged cell ({where}cell {i + 1} is {_json_kind(cell)}, not an object)")
        for key in ("source", "input"):
            text = cell.get(key, "")
            lines = isinstance(text, list) and all(isinstance(s, str) for s in text)
            if not (isinstance(text, str) or lines):
                raise _Rejected(
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


class _Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _to_v4(data: dict[str, Any]) -> nbformat.NotebookNode:
    try:
        return _convert(data)
    except (KeyError, AttributeError, ValidationError, ValueError, TypeError):
        # nbformat's readers walk outputs and attachments and crash on malformed ones;
        # neither is graded, so a second try without them costs the student nothing.
        for cell in _raw_cells(data):
            if cell.get("cell_type") == "code":
                cell["outputs"] = []
            cell.pop("attachments", None)
    major = data["nbformat"]
    doing = "read as a notebook" if major == 4 else f"converted from notebook format {major} to format 4"
    try:
        return _convert(data)
    except (KeyError, AttributeError) as exc:  # NotebookNode reports a missing key as AttributeError
        detail = _one_line(str(exc.args[0] if exc.args else exc))[:60]
        if " has no attribute " in detail:
            raise _Rejected(f"could not be {doing} (a field has the wrong type)") from None
        raise _Rejected(f"could not be {doing} (a required field '{detail}' is missing)") from None
    except (ValidationError, ValueError, TypeError) as exc:
        raise _Rejected(f"could not be {doing} ({_one_line(str(exc))[:160]})") from None


def _raw_cells(data: dict[str, Any]) -> list[dict[str, Any]]:
    if data["nbformat"] >= 4:
        return data["cells"]
    return [cell for sheet in data.get("worksheets", []) for cell in sheet["cells"]]


def _convert(data: dict[str, Any]) -> nbformat.NotebookNode:
    major = data["nbformat"]
    minor = data.get("nbformat_minor", 0)
    # Upgrading from v3 logs schema complaints about the *old* file to stderr; the
    # converted notebook is validated afterwards, which is the verdict that matters.
    from traitlets.log import get_logger

    logger, silence = get_logger(), _Silence()
    logger.addFilter(silence)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.versions[major].to_notebook_json(data, minor=minor)
            return nbformat.convert(nb, 4)
    finally:
        logger.removeFilter(silence)


def _repair(nb: nbformat.NotebookNode) -> None:
    """Fill in what old or third-party front ends leave out, none of which affects grading.

    Tags get special care: the schema wants a list of unique strings, and nbformat's
    metadata stripping would otherwise delete a tag list like ["happyModel",
    "happyModel"] wholesale, losing the one fact about the cell the grader needs.
    """
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.NotebookNode()
    for cell in nb.get("cells", []):
        if not isinstance(cell.get("metadata"), dict):
            cell["metadata"] = nbformat.NotebookNode()
        tags = cell["metadata"].get("tags")
        if tags is not None:
            if isinstance(tags, str):
                tags = [tags]
            if not isinstance(tags, list):
                tags = []
            clean = [t.strip() for t in tags if isinstance(t, str) and t.strip() and "," not in t]
            cell["metadata"]["tags"] = list(dict.fromkeys(clean))
        if cell.get("cell_type") == "code":
            if not isinstance(cell.get("outputs"), list):
                cell["outputs"] = []
            cell.setdefault("execution_count", None)


def _validated(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _, fixed = nbformat.validator.normalize(nb, strip_invalid_metadata=True)
        except Exception:  # noqa: BLE001 - metadata stripping is best effort; validation below decides
            _, fixed = nbformat.validator.normalize(nb)
        nb = nbformat.from_dict(fixed)
        # Two kinds of schema errors are repaired rather than reported, because neither
        # carries anything the grader reads: malformed outputs (Colab, VS Code and
        # nbconvert bugs) are dropped with their cell's other outputs, and keys the
        # schema does not know (newer or third-party front ends) are removed. Every
        # round repairs something or stops, and each repair removes data, so it ends.
        for _ in range(len(nb.cells) + 16):
            errors = list(nbformat.validator.iter_validate(nb))
            if not errors:
                return nb
            unfixable = [e for e in errors if not _repairable(e, nb)]
            if unfixable:
                break
            for error in errors:
                _apply_repair(error, nb)
    first = unfixable[0] if unfixable else errors[0]
    raise _Rejected(f"does not match the Jupyter notebook format ({_describe_validation_error(first, nb)})")


def _unknown_keys(error: ValidationError) -> list[str]:
    if getattr(error, "validator", None) != "additionalProperties":
        return []
    instance, schema = getattr(error, "instance", None), getattr(error, "schema", None)
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return []
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in known and not any(p.search(k) for p in patterns)]


def _repairable(error: ValidationError, nb: nbformat.NotebookNode) -> bool:
    return bool(_unknown_keys(error)) or _output_error_cell(error, nb) is not None


def _apply_repair(error: ValidationError, nb: nbformat.NotebookNode) -> None:
    for key in _unknown_keys(error):
        error.instance.pop(key, None)
    index = _output_error_cell(error, nb)
    if index is not None:
        if nb.cells[index].get("cell_type") == "code":
            nb.cells[index]["outputs"] = []
        nb.cells[index].pop("attachments", None)


def _output_error_cell(error: ValidationError, nb: nbformat.NotebookNode) -> int | None:
    where = list(getattr(error, "relative_path", []) or [])
    inside_cell = len(where) >= 3 and where[0] == "cells" and isinstance(where[1], int)
    if inside_cell and where[2] in ("outputs", "attachments"):
        if 0 <= where[1] < len(nb.cells) and nb.cells[where[1]].get("cell_type") == "code":
            return where[1]
        if where[2] == "attachments":
            return where[1]
    return None


def _describe_validation_error(error: ValidationError, nb: nbformat.NotebookNode) -> str:
    where = list(getattr(error, "relative_path", []) or [])
    message = str(getattr(error, "message", error))
    place = "the notebook"
    if len(where) >= 2 and where[0] == "cells" and isinstance(where[1], int):
        place = f"cell {where[1] + 1}"
        cell = nb.cells[where[1]] if 0 <= where[1] < len(nb.cells) else {}
        kind = cell.get("cell_type") if isinstance(cell, dict) else None
        if kind not in ("code", "markdown", "raw"):
            return f"{place} has an unknown cell type {json.dumps(kind)[:40]}; expected code, markdown or raw"
        rest = [str(p) for p in where[2:]]
        if rest:
            place += ", field " + ".".join(rest)
    elif where:
        place = "field " + ".".join(str(p) for p in where)
    if "is not valid under any of the given schemas" in message:
        message = "has an invalid structure"
    return f"{place}: {_one_line(message)[:160]}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------
# Choosing what runs
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """One top-level statement for the sandbox to compile and run on its own.

    One statement per chunk, so that one failing import or helper does not take the
    statements after it down. `line` is where the statement (decorators included)
    starts in its cell; compile the chunk with its line numbers shifted by `line - 1`
    and tracebacks point into the cell as the student sees it.
    """

    source: str
    cell: int  # index in nb.cells (markdown cells count), shown to students as "cell {cell+1}"
    line: int
    kind: str  # "import" | "def" | "class" | "assign"
    label: str  # compile() filename: "cell 7 [happyModel]" or "cell 3"


@dataclass(frozen=True)
class Located:
    exercise: str
    cell: int
    how: str  # "tag" (in a cell tagged for the exercise) or "def" (found by name)
    line: int


@dataclass(frozen=True)
class Program:
    chunks: tuple[Chunk, ...]
    located: dict[str, Located]
    missing: dict[str, str]  # exercise -> why it is missing, worded for the student
    warnings: tuple[str, ...]
    skipped: int  # top-level statements not run (training, plots, prints, magics, stale defs)
    # `from __future__` features the notebook imports. IPython applies them to every
    # later cell, but a future import only affects its own compile() call, so the
    # sandbox must pass them as compile flags to every chunk instead.
    future: tuple[str, ...] = field(default=())


def code_cells(nb: Any) -> list[tuple[int, str]]:
    """(index in nb.cells, source) of every code cell, tolerating list-of-lines sources
    so it also works on notebooks that did not come through load_notebook."""
    out = []
    for index, cell in enumerate(_cells(nb)):
        if cell.get("cell_type") == "code":
            out.append((index, _text(cell.get("source", ""))))
    return out


def source_of(program: Program, exercise: str) -> str:
    """The graded definition's source, or "" when the exercise is missing, so that a
    plagiarism pass over a whole class can treat absent code as empty."""
    where = program.located.get(exercise)
    if where is None:
        return ""
    for chunk in program.chunks:
        if chunk.kind == "def" and chunk.cell == where.cell and chunk.line == where.line:
            return chunk.source
    return ""


def _cells(nb: Any) -> list[Any]:
    cells = nb.get("cells", []) if isinstance(nb, dict) else getattr(nb, "cells", [])
    return [c for c in cells if isinstance(c, dict)]


def _text(source: Any) -> str:
    text = "".join(source) if isinstance(source, list) else str(source or "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- IPython syntax ----------------------------------------------------------------------

_HELP_LINE = re.compile(r"(\?{1,2}\s*[\w.]+(\(\))?|[\w.]+(\(\))?\s*\?{1,2})\s*")
_MAGIC_ASSIGNMENT = re.compile(r"[\w.]+(\s*,\s*[\w.]+)*\s*=\s*[%!]")


def _is_ipython_line(stripped: str) -> bool:
    return (
        stripped.startswith(("%", "!"))
        or bool(_HELP_LINE.fullmatch(stripped))
        or bool(_MAGIC_ASSIGNMENT.match(stripped))
    )


def _neutralize_ipython(text: str) -> str:
    """Replace IPython-only lines (`%magic`, `!shell`, `x = !cmd`, `obj?`) by `pass`.

    Keeps indentation and line count, so the result parses wherever the original ran
    under IPython and line numbers stay those the student sees. Only lines that start
    a logical line are touched: a `%` that continues an expression inside brackets
    (`("%d"\\n % n)`) or a `!` inside a docstring is Python, not a magic; a small
    scanner follows brackets, strings and backslash continuations to tell them apart.
    """
    out: list[str] = []
    depth = 0
    in_triple: str | None = None
    continued = False
    for line in text.split("\n"):
        stripped = line.strip()
        if in_triple is None and depth == 0 and not continued and stripped and _is_ipython_line(stripped):
            out.append(line[: len(line) - len(line.lstrip())] + "pass")
            continue
        depth, in_triple, continued = _scan_line(line, depth, in_triple)
        out.append(line)
    return "\n".join(out)


def _scan_line(line: str, depth: int, in_triple: str | None) -> tuple[int, str | None, bool]:
    i, n = 0, len(line)
    while i < n:
        if in_triple is not None:
            if line[i] == "\\":
                i += 2
            elif line.startswith(in_triple, i):
                i += 3
                in_triple = None
            else:
                i += 1
            continue
        ch = line[i]
        if ch == "#":
            break
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in "'\"":
            if line.startswith(ch * 3, i):
                in_triple = ch * 3
                i += 3
                continue
            i += 1
            while i < n and line[i] != ch:
                i += 2 if line[i] == "\\" else 1
        elif ch == "\\" and not line[i + 1 :].strip():
            return depth, in_triple, True
        i += 1
    return depth, in_triple, False


# --- per-cell parsing --------------------------------------------------------------------


@dataclass
class _Cell:
    index: int
    original: str  # as the student wrote it, for quoting lines back
    text: str  # IPython lines neutralized; what statements are sliced from
    tree: ast.Module | None = None
    problem: str = ""  # why it does not parse
    magic: str = ""  # the cell magic that makes the whole cell IPython's, e.g. "%%time"

    @property
    def name(self) -> str:
        return f"cell {self.index + 1}"


def _parse_cell(index: int, source: str) -> _Cell:
    cell = _Cell(index, source, source)
    first = next((line.strip() for line in source.split("\n") if line.strip()), "")
    if first.startswith("%%"):
        cell.magic = first.split()[0]
        return cell
    cell.text = _neutralize_ipython(source)
    try:
        cell.tree = ast.parse(cell.text)
    except SyntaxError as exc:
        cell.problem = _syntax_problem(exc, source)
    except ValueError:
        cell.problem = "it contains a null byte (was the file damaged?)"
    except (RecursionError, MemoryError):
        cell.problem = "it is nested too deeply for Python to parse"
    return cell


def _syntax_problem(exc: SyntaxError, source: str) -> str:
    lines = source.split("\n")
    number = exc.lineno or 0
    if 1 <= number <= len(lines):
        code = lines[number - 1].strip()
    else:
        code = (exc.text or "").strip()
    message = exc.msg or "invalid syntax"
    if code:
        return f"{message} at line {number}: `{_shorten(code)}`"
    return f"{message} at line {number}"


def _shorten(code: str, limit: int = 80) -> str:
    return code if len(code) <= limit else code[: limit - 1] + "…"


def _def_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}\b", re.MULTILINE)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _start_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decorators])


def _segment(text: str, node: ast.stmt) -> str:
    """The statement exactly as written, decorators included (ast puts a decorated
    def's position at the `def` keyword, and columns are UTF-8 byte offsets, so
    ast.get_source_segment does the byte arithmetic on a widened span)."""
    start = _start_line(node)
    span = SimpleNamespace(
        lineno=start,
        col_offset=0 if start != node.lineno else node.col_offset,
        end_lineno=node.end_lineno,
        end_col_offset=node.end_col_offset,
    )
    segment = ast.get_source_segment(text, span)
    return segment if segment is not None else ast.unparse(node)


# --- which statements run ----------------------------------------------------------------

_NUMERIC_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift)


def _is_number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex))


def _is_arithmetic(node: ast.expr, budget: list[int]) -> bool:
    """Arithmetic on number literals whose cost is obviously tiny.

    Powers and shifts need both operands to be plain literals and a small exponent,
    so `2**10` and `1 << 20` pass but `2**10**10` (which would stall whoever evaluates
    it) does not. Only numbers: `"ab" * 10**9` is not a constant in this sense.
    """
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if _is_number(node):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_arithmetic(node.operand, budget)
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, _NUMERIC_OPS)):
        return False
    if isinstance(node.op, (ast.Pow, ast.LShift, ast.RShift)):
        if not (_is_number(node.left) and _is_number(node.right)):
            return False
        exponent = node.right.operand if isinstance(node.right, ast.UnaryOp) else node.right
        return abs(exponent.value) <= 256  # type: ignore[union-attr]
    return _is_arithmetic(node.left, budget) and _is_arithmetic(node.right, budget)


def _is_literal(node: ast.expr, budget: list[int]) -> bool:
    """What `ast.literal_eval` would accept, plus cheap number arithmetic."""
    budget[0] -= 1
    if budget[0] < 0:
        return False
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(not isinstance(e, ast.Starred) and _is_literal(e, budget) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k, budget) for k in node.keys) and all(
            _is_literal(v, budget) for v in node.values
        )
    return _is_arithmetic(node, budget)


def _module_attribute(node: ast.expr, imported: set[str]) -> bool:
    """`np.float32`, `tf.keras.activations.relu`: a dotted name rooted at something an
    earlier import bound. Deliberately narrow: no calls, subscripts or arithmetic, and
    the whole value must be the attribute, because reading an attribute of a library
    runs only that library's code (at most a lazy import), never the student's."""
    depth = 0
    while isinstance(node, ast.Attribute):
        node = node.value
        depth += 1
    return depth >= 1 and isinstance(node, ast.Name) and node.id in imported


def _target_names(target: ast.expr) -> list[str] | None:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names: list[str] = []
        for element in target.elts:
            inner = _target_names(element)
            if inner is None:
                return None
            names.extend(inner)
        return names
    return None


def _constant_assignment(node: ast.stmt, imported: set[str]) -> list[str] | None:
    """Names bound, if `node` is a plain constant assignment; None otherwise."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None and node.simple:
        targets, value = [node.target], node.value
    else:
        return None
    names: list[str] = []
    for target in targets:
        bound = _target_names(target)
        if bound is None:
            return None
        names.extend(bound)
    if _is_literal(value, [200]) or _module_attribute(value, imported):
        return names
    return None


def _import_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    names = []
    for alias in node.names:
        if alias.name == "*":
            continue
        names.append(alias.asname or alias.name.split(".")[0])
    return names


def _classify(node: ast.stmt, imported: set[str]) -> tuple[str, list[str]] | None:
    """(kind, names bound) for a statement worth running, None for one to skip."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "import", _import_names(node)
    if _is_def(node):
        return "def", [node.name]
    if isinstance(node, ast.ClassDef):
        return "class", [node.name]
    names = _constant_assignment(node, imported)
    if names is not None:
        return "assign", names
    return None


def _is_future(node: ast.stmt) -> bool:
    return isinstance(node, ast.ImportFrom) and node.module == "__future__"


# The grader's own self-check (`from grader import check`) is for the student's kernel; it
# is not installed in the sandbox and no graded function needs it.
_GRADER_MODULES = frozenset({"grader"})


def _is_grader_import(node: ast.stmt) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level == 0 and (node.module or "").split(".")[0] in _GRADER_MODULES
    if isinstance(node, ast.Import):
        return all(alias.name.split(".")[0] in _GRADER_MODULES for alias in node.names)
    return False


# --- finding the graded definitions ------------------------------------------------------


def _tags_of(cell: Any) -> set[str]:
    """Exercise names a cell is tagged for, in the three conventions assignments use:
    a plain tag, nbgrader's grade_id, and otter's `exercise:NAME` tag."""
    metadata = cell.get("metadata") or {}
    if not isinstance(metadata, dict):
        return set()
    tags = metadata.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    names: set[str] = set()
    for tag in tags if isinstance(tags, list) else []:
        if not isinstance(tag, str):
            continue
        tag = tag.strip()
        names.add(tag)
        if tag.startswith("exercise:"):
            names.add(tag[len("exercise:") :].strip())
    nbgrader = metadata.get("nbgrader")
    if isinstance(nbgrader, dict) and isinstance(nbgrader.get("grade_id"), str):
        names.add(nbgrader["grade_id"].strip())
    return names


@dataclass
class _Candidate:
    cell: _Cell
    line: int
    node: ast.stmt | None  # None when the cell does not parse or is a cell magic
    tagged: bool

    @property
    def where(self) -> str:
        return f"cell {self.cell.index + 1} (line {self.line})"


def _candidates(name: str, cells: list[_Cell], tagged: set[int]) -> list[_Candidate]:
    found = []
    pattern = _def_pattern(name)
    for cell in cells:
        if cell.tree is not None:
            for node in cell.tree.body:
                if _is_def(node) and node.name == name:
                    found.append(_Candidate(cell, _start_line(node), node, cell.index in tagged))
        else:
            # Unparsable and cell-magic cells are searched as text, so a student whose
            # function has a typo hears about the typo rather than "not found".
            for match in pattern.finditer(cell.original):
                line = _line_of(cell.original, match.start())
                found.append(_Candidate(cell, line, None, cell.index in tagged))
    return found


_CONTAINERS = {
    ast.If: "an `if` block",
    ast.For: "a `for` loop",
    ast.AsyncFor: "a `for` loop",
    ast.While: "a `while` loop",
    ast.With: "a `with` block",
    ast.AsyncWith: "a `with` block",
    ast.Try: "a `try` block",
}


def _is_def(node: ast.AST) -> bool:
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))


def _container(node: ast.stmt) -> str:
    if _is_def(node):
        return f"the function `{node.name}`"
    if isinstance(node, ast.ClassDef):
        return f"the class `{node.name}`"
    for kind, words in _CONTAINERS.items():
        if isinstance(node, kind):
            return words
    return "another statement"


def _why_not_found(name: str, cells: list[_Cell], nb_cells: list[Any], defined: list[str]) -> list[str]:
    """Hints for a missing exercise: the near misses a student actually makes."""
    hints: list[str] = []
    for cell in cells:
        if cell.tree is None:
            continue
        for top in cell.tree.body:
            if isinstance(top, (ast.Assign, ast.AnnAssign)):
                targets = top.targets if isinstance(top, ast.Assign) else [top.target]
                if any(name in (_target_names(t) or []) for t in targets):
                    if isinstance(top.value, ast.Lambda):
                        hints.append(
                            f"{cell.name} (line {top.lineno}) assigns a lambda to `{name}`; the grader needs "
                            f"a function written as `def {name}(...):`"
                        )
                    else:
                        hints.append(
                            f"{cell.name} (line {top.lineno}) assigns `{name} = ...`; the grader needs "
                            f"a function written as `def {name}(...):`"
                        )
            elif isinstance(top, ast.ClassDef) and top.name == name:
                hints.append(
                    f"{cell.name} (line {top.lineno}) defines `class {name}`; the grader needs "
                    f"a function `def {name}(...):`"
                )
            elif isinstance(top, (ast.Import, ast.ImportFrom)) and name in _import_names(top):
                hints.append(
                    f"{cell.name} (line {top.lineno}) imports `{name}` instead of defining it in the notebook"
                )
            elif not _is_def(top) or top.name != name:
                for inner in ast.walk(top):
                    if inner is not top and _is_def(inner) and inner.name == name:
                        hints.append(
                            f"{cell.name} (line {inner.lineno}) has `def {name}` indented inside "
                            f"{_container(top)}; it must start at the beginning of a line, outside any block"
                        )
                        break
    pattern = _def_pattern(name)
    for index, nb_cell in enumerate(nb_cells):
        kind = nb_cell.get("cell_type")
        if kind in ("markdown", "raw") and pattern.search(_text(nb_cell.get("source", ""))):
            hints.append(
                f"cell {index + 1} contains `def {name}` but is a {kind} cell; change its type to Code"
            )
    if not hints:
        others = [d for d in defined if d != name]
        close = [d for d in others if d.lower() == name.lower()]
        close += difflib.get_close_matches(name, [d for d in others if d not in close], n=1, cutoff=0.75)
        if close:
            hints.append(f"did you rename it? the notebook defines `{close[0]}`")
    return hints


@dataclass
class _Selection:
    located: dict[str, Located]
    missing: dict[str, str]
    warnings: list[str]
    chosen: set[int]  # id() of each chosen def node, for the chunk pass
    reported_cells: set[int]  # cells whose syntax error or magic already appears in `missing`


def _select(exercises: Sequence[str], cells: list[_Cell], nb_cells: list[Any]) -> _Selection:
    tags = {index: _tags_of(cell) for index, cell in enumerate(nb_cells)}
    notebook_uses_tags = any(names & set(exercises) for names in tags.values())
    defined = sorted({node.name for c in cells if c.tree for node in c.tree.body if _is_def(node)})
    result = _Selection({}, {}, [], set(), set())
    for name in exercises:
        tagged = {i for i, names in tags.items() if name in names and nb_cells[i].get("cell_type") == "code"}
        found = _candidates(name, cells, tagged)
        pool = [c for c in found if c.tagged] or found
        if not pool:
            if tagged:
                first = min(tagged) + 1
                base = f"cell {first} is tagged '{name}' but no code cell has a top-level `def {name}`"
            else:
                base = (
                    f"no cell defines `{name}` (no cell tagged '{name}' and no top-level "
                    f"`def {name}` in any code cell)"
                )
            result.missing[name] = "; ".join([base] + _why_not_found(name, cells, nb_cells, defined))
            continue
        chosen = pool[-1]
        cell = chosen.cell
        if chosen.node is None:
            result.reported_cells.add(cell.index)
            if cell.magic:
                result.missing[name] = (
                    f"{cell.name} defines `{name}` but starts with the cell magic `{cell.magic}`, so the "
                    f"grader does not run it; move `{name}` to a cell without `{cell.magic}`"
                )
            else:
                note = f"tagged '{name}'" if chosen.tagged else f"which defines `{name}`"
                result.missing[name] = f"{cell.name} ({note}) does not parse: {cell.problem}"
            continue
        how = "tag" if chosen.tagged else "def"
        result.located[name] = Located(name, cell.index, how, chosen.line)
        result.chosen.add(id(chosen.node))
        if how == "def" and tagged:
            result.warnings.append(
                f"cell {min(tagged) + 1} is tagged '{name}' but does not define it; grading `def {name}` "
                f"found by name in {cell.name}"
            )
        elif how == "def" and notebook_uses_tags:
            result.warnings.append(f"`{name}` found in {cell.name} by name; its '{name}' tag is missing")
        if len(found) > 1:
            reason = "the tagged one" if chosen.tagged and len(pool) < len(found) else "the last one"
            others = ", ".join(c.where for c in found if c is not chosen)
            result.warnings.append(
                f"`{name}` is defined {len(found)} times; grading {reason}, {chosen.where}, "
                f"and ignoring {others}"
            )
    return result


def extract_program(nb: Any, exercises: Sequence[str]) -> Program:
    """Select, in notebook order, the statements the sandbox runs, and where each
    exercise's graded definition is.

    Kept: imports (one chunk per statement; `from __future__` becomes `Program.future`),
    `def` / `async def` / `class` (decorators included), and assignments of constants
    to plain names. A constant is a literal (`1e-3`, `(64, 64, 3)`, `{"a": [1, 2]}`),
    cheap number arithmetic (`2**10`, `-1 / 255`), or a dotted name rooted at an
    earlier import (`DTYPE = np.float32`). Everything else (calls, loops, `with`, `if`
    including `if __name__ == "__main__":`, bare expressions, assignments computed at
    run time such as `x = load_data()`) is skipped and counted in `skipped`.

    Each exercise gets exactly one definition: the last top-level `def` in a cell tagged
    for it, else the last top-level `def` anywhere. Every other statement that would
    rebind that name (another `def`, a class, a constant assignment, an import) is
    dropped so that stale code later in the notebook cannot replace the graded one.
    """
    if isinstance(exercises, str):  # a lone name, not its characters
        exercises = [exercises]
    exercises = list(dict.fromkeys(exercises))
    nb_cells = _cells(nb)
    cells = [_parse_cell(i, source) for i, source in code_cells({"cells": nb_cells}) if source.strip()]
    selection = _select(exercises, cells, nb_cells)
    graded = set(exercises)

    warnings_out: list[str] = []
    for cell in cells:
        if cell.index in selection.reported_cells:
            continue
        if cell.problem:
            warnings_out.append(f"{cell.name} skipped: it does not parse ({cell.problem})")
        elif cell.magic and any(_def_pattern(name).search(cell.original) for name in exercises):
            inside = [name for name in exercises if _def_pattern(name).search(cell.original)]
            warnings_out.append(
                f"{cell.name} skipped: it starts with the cell magic `{cell.magic}`; the "
                + ", ".join(f"`def {n}`" for n in inside)
                + " in it is ignored"
            )
    warnings_out.extend(selection.warnings)

    chunks: list[Chunk] = []
    future: list[str] = []
    imported: set[str] = set()
    skipped = 0
    for cell in cells:
        if cell.tree is None:
            continue
        for node in cell.tree.body:
            if _is_future(node):
                future.extend(a.name for a in node.names if a.name not in future)  # type: ignore[union-attr]
                skipped += 1
                continue
            if _is_grader_import(node):
                skipped += 1
                continue
            classified = _classify(node, imported)
            if classified is None:
                skipped += 1
                continue
            kind, names = classified
            line = _start_line(node)
            if id(node) not in selection.chosen:
                clashes = [n for n in names if n in graded]
                if clashes:
                    skipped += 1
                    # A missing exercise's reason already names what binds it instead.
                    if kind != "def" and clashes[0] in selection.located:
                        source = _segment(cell.text, node).split("\n", 1)[0]
                        warnings_out.append(
                            f"{cell.name} (line {line}): `{_shorten(source, 60)}` is not run because it would "
                            f"replace the graded `{clashes[0]}`"
                        )
                    continue
            if kind == "import":
                imported.update(names)
            label = f"{cell.name} [{names[0]}]" if kind in ("def", "class") else cell.name
            chunks.append(Chunk(_segment(cell.text, node), cell.index, line, kind, label))

    return Program(
        chunks=tuple(chunks),
        located={n: selection.located[n] for n in exercises if n in selection.located},
        missing={n: selection.missing[n] for n in exercises if n in selection.missing},
        warnings=tuple(warnings_out),
        skipped=skipped,
        future=tuple(future),
    )
