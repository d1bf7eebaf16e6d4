"""Bring a parsed notebook to a valid nbformat v4 document, repairing what grading ignores.

Cosmetic deviations that nbformat can repair (missing cell ids, duplicate ids, unknown
metadata, malformed outputs) are repaired instead of rejected: outputs and metadata play
no part in grading, and old or third-party front ends write them.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from typing import Any

import nbformat
from nbformat.validator import ValidationError


class Rejected(Exception):
    """Carries a student-facing problem to the one place that turns it into a LoadError,
    so the helpers can bail out from any depth without each building the value."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


_Rejected = Rejected


def one_line(text: str) -> str:
    return " ".join(str(text).split())


_one_line = one_line


class _Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def to_v4(data: dict[str, Any]) -> nbformat.NotebookNode:
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


def repair(nb: nbformat.NotebookNode) -> None:
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


def validated(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
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
