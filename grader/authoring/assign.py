"""Master notebook -> student template.

The instructor keeps a single master notebook with the solutions written inline. This
module derives everything students receive from it, so the two can never disagree:

* solution regions (`### BEGIN SOLUTION` ... `### END SOLUTION`) become a
  `# YOUR CODE HERE` / `raise NotImplementedError()` stub at the region's indentation,
  so the function still parses and fails loudly when it is called before being written;
* hidden material (cells tagged `hidden`, `### BEGIN HIDDEN TESTS` regions) is dropped,
  so the instructor's own checks cannot leak to students;
* outputs are cleared, so no solution leaks through a printed value or a plot;
* written answer cells (tagged `written:ID`, see grader.assignment.written) keep their tag and hold
  only the placeholder `YOUR ANSWER HERE`: the model answer in the master never reaches
  students, whatever the cell contains;
* every code cell is labelled for the grader in `cell.metadata["grader"]`. A graded cell
  (one holding a solution region) gets `{"grade": True, "exercise": NAME}`, where NAME is
  its tag, and it keeps its tags because the grader finds exercises by tag first. Every
  other code cell gets `{"locked": True, "checksum": SHA256}`, so that edits to code the
  student was given can be reported (`edited_locked_cells`) instead of silently changing
  what the notebook does.

Masters can be `.ipynb` files or Jupytext percent-format `.py` files. The `.py` form diffs
cleanly under version control; both produce the same template.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import re
import shutil
import sys
from pathlib import Path

import nbformat

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
HIDDEN_TAG = "hidden"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
MARKDOWN_STUB = ("YOUR ANSWER HERE",)

# Cell metadata that means something to Jupyter or to the grader. Anything else
# (Jupytext's layout hints, editor state) is authoring detail and stays in the master.
_KEPT_CELL_METADATA = ("tags", "grader", "editable", "deletable", "jupyter", "collapsed", "scrolled")
_TOP_LEVEL_DEF = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)


class MasterError(ValueError):
    """A master notebook that cannot be turned into a template, with the cell to look at."""


def checksum(source: str) -> str:
    """SHA-256 of a cell's source, ignoring differences that do not change what it does.

    Line endings and trailing whitespace vary between editors and operating systems, and
    Jupyter may add or drop a final newline. A checksum that changed for those reasons
    would report students for edits they never made.
    """
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).strip("\n").encode("utf-8")).hexdigest()


def read_master(path: str | Path) -> nbformat.NotebookNode:
    """Read an `.ipynb` master, or a Jupytext percent `.py` master, as nbformat v4.

    Jupytext gives every cell a random id, so notebooks read from `.py` get ids from
    their position instead: rebuilding then changes no byte that the source did not.
    """
    path = Path(path)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    if path.suffix == ".py":
        import jupytext  # only needed for text masters

        nb = jupytext.read(path, fmt="py:percent")
        for index, cell in enumerate(nb.cells):
            cell["id"] = f"cell-{index:02d}"
        return nb
    raise MasterError(f"{path}: a master must be a .ipynb file or a Jupytext percent .py file")


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def answer_question(cell) -> str | None:
    """The question id a master cell answers (its `written:ID` tag), or None."""
    from grader.notebook.answers import answer_tags

    ids = sorted(answer_tags(cell))
    return ids[0] if ids else None


def _regions(source: str, begin: str, end: str, where: str) -> list[tuple[int, int]]:
    """(first, last) line numbers of each begin/end region, inclusive; unbalanced markers are errors."""
    regions, start = [], None
    for number, line in enumerate(source.split("\n")):
        marker = line.strip()
        if marker == begin:
            if start is not None:
                raise MasterError(f"{where}: '{begin}' on line {number + 1} opens a region inside "
                                  f"the one opened on line {start + 1}")
            start = number
        elif marker == end:
            if start is None:
                raise MasterError(f"{where}: '{end}' on line {number + 1} has no '{begin}' before it")
            regions.append((start, number))
            start = None
    if start is not None:
        raise MasterError(f"{where}: '{begin}' on line {start + 1} is never closed by '{end}'")
    return regions


def _replace_regions(source: str, regions: list[tuple[int, int]], stub: tuple[str, ...]) -> str:
    lines = source.split("\n")
    for first, last in reversed(regions):
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        lines[first:last + 1] = [indent + s for s in stub]
    return "\n".join(lines)


def _exercise_name(cell, where: str) -> str:
    """The tag naming a graded cell's exercise.

    The grader looks exercises up by tag, so a graded cell without one would be
    ungradable. When a cell carries several tags, the exercise is the one naming a
    function or class the cell defines.
    """
    tags = [t for t in _tags(cell) if t != HIDDEN_TAG]
    defined = set(_TOP_LEVEL_DEF.findall(cell.source))
    named = [t for t in tags if t in defined]
    if len(named) == 1:
        return named[0]
    if len(tags) == 1:
        return tags[0]
    if not tags:
        raise MasterError(f"{where}: holds a solution but has no tag naming its exercise "
                          f"(add the function's name as a cell tag)")
    raise MasterError(f"{where}: cannot tell which of the tags {tags} names the exercise; "
                      f"exactly one should match a function defined in the cell")


def annotate(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Everything `make_template` does except replacing the solutions.

    The result is what a student who solved every exercise would hand in. Sample
    submissions are built from it, so they carry exactly the metadata real ones do.
    """
    nb = copy.deepcopy(master)
    kept = []
    for index, cell in enumerate(nb.cells):
        where = f"cell {index}"
        if HIDDEN_TAG in _tags(cell):
            continue
        hidden = _regions(cell.source, BEGIN_HIDDEN, END_HIDDEN, where)
        if hidden:
            cell.source = _replace_regions(cell.source, hidden, ())
            if not cell.source.strip():
                continue
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in _KEPT_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if _regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, where):
                cell.metadata["grader"] = {"grade": True, "exercise": _exercise_name(cell, where)}
            else:
                cell.metadata["grader"] = {"locked": True, "checksum": checksum(cell.source)}
                # Jupyter honours these, which keeps students from editing given code by
                # accident; a deleted locked cell could not be reported afterwards.
                cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
        else:
            cell.metadata.pop("grader", None)  # only code cells are graded or locked
        if answer_question(cell) is not None and cell.cell_type == "code":
            raise MasterError(f"{where}: is tagged as the answer to written question "
                              f"{answer_question(cell)!r} but is a code cell; written answers are text: make it "
                              f"a Markdown cell (students' answers are read, never run)")
        kept.append(cell)
    nb.cells = kept
    nb.metadata.pop("jupytext", None)
    return nb


def make_template(master: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook students receive: `annotate`, then every solution region replaced by a
    stub and every written answer cell by the placeholder."""
    nb = annotate(master)
    for index, cell in enumerate(nb.cells):
        if answer_question(cell) is not None:
            # The whole cell is the model answer: nothing of it is kept, markers or not.
            cell.source = "\n".join(MARKDOWN_STUB)
            continue
        regions = _regions(cell.source, BEGIN_SOLUTION, END_SOLUTION, f"cell {index}")
        if regions:
            stub = CODE_STUB if cell.cell_type == "code" else MARKDOWN_STUB
            cell.source = _replace_regions(cell.source, regions, stub)
    return nb


def assign(source_path: str | Path, out_dir: str | Path) -> Path:
    """Write the template for `source_path` (.ipynb or percent .py) into `out_dir`.

    The template is named after the master (`conv_bn.py` -> `conv_bn.ipynb`). Data files
    the notebook imports are the caller's to copy: only it knows which belong together.
    """
    source_path = Path(source_path)
    template = make_template(read_master(source_path))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (source_path.stem + ".ipynb")
    nbformat.write(template, target)
    return target


def edited_locked_cells(student_nb: nbformat.NotebookNode) -> list[int]:
    """Indices of locked cells whose source no longer matches the checksum they were given.

    A deleted locked cell cannot be reported here (it has left no trace), which is why
    the template also marks locked cells as not deletable.
    """
    edited = []
    for index, cell in enumerate(student_nb.cells):
        info = cell.get("metadata", {}).get("grader", {})
        if isinstance(info, dict) and info.get("locked") and checksum(cell.get("source", "")) != info.get("checksum"):
            edited.append(index)
    return edited


# ---------------------------------------------------------------- command line

def register(subparsers):
    """`grader assign SOURCE --out release/`."""
    p = subparsers.add_parser(
        "assign", help="make the student template from an instructor's master notebook",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Turn a master notebook (.ipynb, or a Jupytext percent-format .py) into
the notebook students receive:

  - solution regions (### BEGIN SOLUTION ... ### END SOLUTION) become
    `raise NotImplementedError()` stubs
  - cells tagged `hidden` and ### BEGIN HIDDEN TESTS regions are dropped
  - outputs are cleared
  - written answer cells (tagged written:ID) keep their tag and hold only
    YOUR ANSWER HERE: the model answer stays in the master
  - every code cell is labelled for the grader: graded (with its
    exercise) or locked (edits to it are reported)

The template is named after the master: conv_bn.py -> DIR/conv_bn.ipynb.""",
        epilog="example:\n  grader assign assignments/conv_bn/source/conv_bn.py \\\n"
               "      --out assignments/conv_bn/release --copy assignments/conv_bn/faces.py")
    p.add_argument("source", metavar="SOURCE", help="the master notebook (.ipynb or percent-format .py)")
    p.add_argument("--out", "-o", default="release", metavar="DIR",
                   help="folder to write the template into (default: release)")
    p.add_argument("--copy", action="append", default=[], metavar="FILE",
                   help="also copy this file (data, helper module) next to the template; repeatable")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    """0 when the template was written, 1 when the master cannot become one, 2 for a bad path."""
    source = Path(args.source)
    if not source.is_file():
        print(f"grader: {source}: no such file", file=sys.stderr)
        return EXIT_USAGE
    missing = [f for f in args.copy if not Path(f).is_file()]
    if missing:
        print(f"grader: cannot copy {', '.join(missing)}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        target = assign(source, args.out)
    except MasterError as exc:
        print(f"grader: {source}: {exc}", file=sys.stderr)
        return EXIT_UNGRADED
    for extra in args.copy:
        shutil.copyfile(extra, Path(args.out) / Path(extra).name)
    template = nbformat.read(target, as_version=4)
    graded = [c.metadata["grader"]["exercise"] for c in template.cells
              if c.metadata.get("grader", {}).get("grade")]
    locked = sum(1 for c in template.cells if c.metadata.get("grader", {}).get("locked"))
    answers = [q for q in map(answer_question, template.cells) if q is not None]
    print(f"wrote {target}: {len(graded)} graded cells ({', '.join(graded) or 'none'}), {locked} locked cells"
          + (f", {len(answers)} written answer cells ({', '.join(answers)})" if answers else "")
          + (f"; copied {', '.join(Path(f).name for f in args.copy)}" if args.copy else ""))
    if not graded:
        print("warning: no cell holds a solution region, so there is nothing to grade", file=sys.stderr)
    return EXIT_OK
