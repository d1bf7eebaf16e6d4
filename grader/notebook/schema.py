"""Bring a parsed notebook to a valid nbformat v4 document, repairing what grading ignores.

Cosmetic deviations that nbformat can repair (missing cell ids, duplicate ids, unknown
metadata, malformed outputs) are repaired instead of rejected: outputs and metadata play
no part in grading, and old or third-party front ends write them.
"""
from __future__ import annotations

import functools
import json
import logging
import os
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


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def to_v4(data: dict[str, Any]) -> nbformat.NotebookNode:
    try:
        return _convert(data)
    except Exception:  # noqa: BLE001 - nbformat's converters crash in many ways on odd data
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
        detail = one_line(str(exc.args[0] if exc.args else exc))[:60]
        if " has no attribute " in detail:
            raise Rejected(f"could not be {doing} (a field has the wrong type)") from None
        raise Rejected(f"could not be {doing} (a required field '{detail}' is missing)") from None
    except (ValidationError, ValueError, TypeError) as exc:
        raise Rejected(f"could not be {doing} ({one_line(str(exc))[:160]})") from None
    except RecursionError:
        raise Rejected(f"could not be {doing} (it is nested too deeply)") from None
    except Exception:  # noqa: BLE001 - e.g. an assertion inside nbformat's converter
        raise Rejected(f"could not be {doing} (its structure is damaged)") from None


def _raw_cells(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell object, wherever this format version keeps them (v1 and v4 in `cells`,
    v2 and v3 in `worksheets`)."""
    found: list[Any] = []
    if isinstance(data.get("cells"), list):
        found.extend(data["cells"])
    for sheet in data.get("worksheets") if isinstance(data.get("worksheets"), list) else []:
        if isinstance(sheet, dict) and isinstance(sheet.get("cells"), list):
            found.extend(sheet["cells"])
    return [cell for cell in found if isinstance(cell, dict)]


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
    _repair_cells(nb)
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
        # round repairs every error it sees (a repair can uncover errors nested below
        # it, a few levels at most), and the cells were already repaired one by one,
        # so a fixed number of rounds bounds the work whatever the notebook's size.
        for _ in range(16):
            errors = list(nbformat.validator.iter_validate(nb))
            if not errors:
                return nb
            unfixable = [e for e in errors if not _repairable(e, nb)]
            if unfixable:
                break
            for error in errors:
                _apply_repair(error, nb)
    first = unfixable[0] if unfixable else errors[0]
    raise Rejected(f"does not match the Jupyter notebook format ({_describe_validation_error(first, nb)})")


# --- one cell at a time -----------------------------------------------------------------
#
# nbformat checks a notebook that has any schema error with jsonschema, walking every cell
# through a `oneOf` of cell types: about 3 ms per cell here, so a generated notebook with a
# bad output in each of 10,000 cells held the grading process for half a minute, and the
# repair loop below walks it again each round. Checking each cell on its own with a
# compiled validator (microseconds) and repairing it in place leaves nbformat a notebook
# that passes its own fast check, and describes a cell that cannot be repaired from that
# cell alone.


class _CellSchema:
    """Compiled validators for one cell and one output of a v4.x schema."""

    def __init__(self, minor: int) -> None:
        import fastjsonschema
        from nbformat import v4

        name = v4.nbformat_schema.get((4, minor)) or v4.nbformat_schema[(None, None)]
        with open(os.path.join(os.path.dirname(v4.__file__), name), encoding="utf-8") as f:
            schema = json.load(f)
        definitions = schema["definitions"]
        self.cell_schema = {"definitions": definitions, "$ref": "#/definitions/cell"}
        self.cell = fastjsonschema.compile(self.cell_schema)
        self.output = fastjsonschema.compile({"definitions": definitions, "$ref": "#/definitions/output"})
        self.keys = {
            kind: set(definitions[f"{kind}_cell"]["properties"]) for kind in ("code", "markdown", "raw")
        }
        self.metadata_keys = {
            kind: set(definitions[f"{kind}_cell"]["properties"]["metadata"].get("properties", {})) - {"tags"}
            for kind in ("code", "markdown", "raw")
        }
        self.needs_id = "id" in self.keys["code"]
        self.notebook = fastjsonschema.compile(schema)
        self.top_keys = set(schema["properties"])
        self.top_metadata_keys = set(schema["properties"]["metadata"].get("properties", {}))

    def valid(self, validator: Any, value: Any) -> bool:
        import fastjsonschema

        try:
            validator(value)
        except fastjsonschema.JsonSchemaException:
            return False
        except (RecursionError, TypeError, ValueError):  # deeply nested or odd metadata
            return False
        return True


@functools.lru_cache(maxsize=8)
def _cell_schema(minor: int) -> _CellSchema:
    return _CellSchema(minor)


def _repair_cells(nb: nbformat.NotebookNode) -> None:
    minor = nb.get("nbformat_minor")
    if nb.get("nbformat") != 4 or type(minor) is not int or minor < 0:
        return
    try:
        schema = _cell_schema(minor)
    except (ImportError, OSError, KeyError, ValueError):  # no fastjsonschema: nbformat's own path decides
        return
    _repair_top_level(schema, nb)
    cells = nb.get("cells")
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        if not isinstance(cell, dict):
            continue  # nbformat's own check names it
        if not _cell_ok(schema, cell):
            _repair_cell(schema, cell)
            if not _cell_ok(schema, cell):
                raise Rejected(f"does not match the Jupyter notebook format ({_describe_cell(schema, index, cell)})")


def _repair_top_level(schema: _CellSchema, nb: nbformat.NotebookNode) -> None:
    """The notebook minus its cells gets the same treatment: unknown keys go, and so do
    the schema-described metadata entries (`kernelspec`, `language_info`, ...) that are
    malformed, which nbformat would otherwise find by walking every cell with jsonschema."""
    shell = {key: value for key, value in nb.items() if key != "cells"}
    shell["cells"] = []
    if schema.valid(schema.notebook, shell):
        return
    for key in [k for k in nb if k not in schema.top_keys]:
        del nb[key]
        shell.pop(key, None)
    metadata = nb.get("metadata")
    if not isinstance(metadata, dict):
        return
    for key in [k for k in metadata if k in schema.top_metadata_keys]:
        if not schema.valid(schema.notebook, {**shell, "metadata": {key: metadata[key]}}):
            del metadata[key]


def _cell_ok(schema: _CellSchema, cell: Any) -> bool:
    if schema.needs_id and "id" not in cell and isinstance(cell, dict):
        cell = {**cell, "id": "placeholder"}  # nbformat's normalize gives it a real one
    return schema.valid(schema.cell, cell)


def _repair_cell(schema: _CellSchema, cell: dict[str, Any]) -> None:
    """Remove what grading never reads until the cell passes: unknown keys, malformed
    outputs (all of the cell's outputs go, as in the repair loop), attachments, then the
    schema-described metadata keys (`jupyter`, `collapsed`, ...) other than tags."""
    kind = cell.get("cell_type")
    if not isinstance(kind, str) or kind not in schema.keys:
        return
    for key in [k for k in cell if k not in schema.keys[kind]]:
        del cell[key]
    if _cell_ok(schema, cell):
        return
    if kind == "code" and not all(schema.valid(schema.output, output) for output in cell.get("outputs", [])):
        cell["outputs"] = []
    if _cell_ok(schema, cell):
        return
    cell.pop("attachments", None)
    metadata = cell.get("metadata")
    if isinstance(metadata, dict) and not _cell_ok(schema, cell):
        for key in [k for k in metadata if k in schema.metadata_keys[kind]]:
            del metadata[key]


def _describe_cell(schema: _CellSchema, index: int, cell: Any) -> str:
    """The schema's complaint about one cell, found by jsonschema on that cell alone and
    against its own cell type (the notebook schema's `oneOf` of types says only that
    the cell matches none of them)."""
    import jsonschema

    kind = cell.get("cell_type")
    if not isinstance(kind, str) or kind not in schema.keys:
        return f"cell {index + 1} has an unknown cell type {json.dumps(kind)[:40]}; expected code, markdown or raw"
    probe = {**cell, "id": "placeholder"} if schema.needs_id and "id" not in cell else cell
    of_kind = {"definitions": schema.cell_schema["definitions"], "$ref": f"#/definitions/{kind}_cell"}
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft4Validator(of_kind).iter_errors(probe))
    except Exception:  # noqa: BLE001 - a description is best effort; the verdict stands
        error = None
    if error is None:
        return f"cell {index + 1}: has an invalid structure"
    path = [str(p) for p in error.relative_path]
    place = f"cell {index + 1}" + (", field " + ".".join(path) if path else "")
    message = str(error.message)
    if "is not valid under any of the given schemas" in message:
        message = "has an invalid structure"
    return f"{place}: {one_line(message)[:160]}"


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
    return f"{place}: {one_line(message)[:160]}"
