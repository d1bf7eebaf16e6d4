"""The statements that build one top-level value a test asks for, and nothing else.

Many notebooks build their model at the top level of a cell that also trains it:
`model = nn.Sequential(...)`, `optimizer = optim.SGD(model.parameters(), ...)`,
`train_part34(model, optimizer)`. The default selection (`program`) never runs such
statements (they are calls), so the model is not there to grade. Running the whole cell
would train. Here a backward def-use walk over the notebook's top-level statements picks
the statements the requested name needs: its own binding, the calls that change it in
place (`model.add(...)`, `model.compile(...)`, `nn.init.kaiming_normal_(model[0].weight)`),
and, transitively, the assignments of every name they read. Training, data loading and
plotting calls are never picked: a value that needs one is explained, not built.

One pass backwards over the statements, each visited once: time linear in the notebook.
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grader.notebook.cells import _Cell, _cells, _shorten, _start_line
from grader.notebook.locate import _tags_of
from grader.notebook.model import Chunk
from grader.notebook.program import _parse_cells
from grader.notebook.statements import _import_names, _is_def, _target_names

# Calls that train, evaluate, load data, plot or wait: a statement holding one is never run.
_DENIED = frozenset({
    "fit", "fit_generator", "train_on_batch", "evaluate", "evaluate_generator", "predict",
    "predict_generator", "predict_on_batch", "backward", "step", "show", "imshow", "plot",
    "savefig", "figure", "subplot", "subplots", "hist", "scatter", "load_data", "load_dataset",
    "dataloader", "cifar10", "cifar100", "mnist", "imagefolder", "read_csv", "load", "loadtxt",
    "urlretrieve", "urlopen", "download", "sleep", "open", "system", "run", "popen",
    "get_file", "image_dataset_from_directory", "flow_from_directory", "save", "save_weights",
    "load_weights", "load_model", "load_state_dict", "tqdm",
})
_DENIED_PREFIXES = ("train", "check_accuracy", "load_", "plot", "evaluate", "test_")
# Methods that change their object in place and are cheap: `model.add(Dense(1))`.
_MUTATORS = frozenset({
    "add", "compile", "build", "to", "cpu", "float", "double", "half", "eval", "apply",
    "add_module", "register_buffer", "register_parameter", "requires_grad_", "zero_grad",
    "add_param_group", "append", "extend", "insert", "update", "reset_parameters", "pop",
    "set_weights", "fill_", "zero_", "normal_", "uniform_",
})
_BUILTINS = frozenset(dir(builtins))
_COMPOUND = {
    ast.If: "an `if` block", ast.For: "a `for` loop", ast.AsyncFor: "a `for` loop",
    ast.While: "a `while` loop", ast.With: "a `with` block", ast.AsyncWith: "a `with` block",
    ast.Try: "a `try` block",
}


@dataclass(frozen=True)
class ValueSlice:
    """What to run, after the default program, to have `name` as the notebook built it.

    `chunks` are in notebook order; `cell`/`line`/`source` say which binding of the name is
    graded (shown to the student); `problem` (worded for the student) is set when there is
    none; `notes` say what the walk left out and why (a dependency built by training)."""

    name: str
    chunks: tuple[Chunk, ...] = ()
    cell: int = -1
    line: int = 0
    source: str = ""
    problem: str = ""
    notes: tuple[str, ...] = field(default=())
    # The statements this name itself needs (`chunks` may hold more: every value its cell
    # builds). Only their failures are this value's.
    own: tuple[Chunk, ...] = field(default=())
    cell_name: str = ""  # `cell` as the student finds it (grader.notebook.cellnames)

    @property
    def where(self) -> str:
        return f"{self.cell_name}, line {self.line}" if self.cell >= 0 else ""


@dataclass
class _Stmt:
    cell: _Cell
    node: ast.stmt
    binds: set[str]  # names rebound outright
    mutates: set[str]  # names changed in place (kept needed: an earlier binding still counts)
    compound: str = ""  # "a `for` loop" when the statement is a block the walk never runs


def select_value(nb: Any, name: str, *, exercise: str | None = None, marker: str | None = None,
                 graded: Sequence[str] = ()) -> ValueSlice:
    """The slice that builds top-level `name` (`model`, `optimizer`).

    Which binding: the last in a cell tagged `exercise` (when given and found), else in the
    last code cell containing `marker` (a line of the template's text, matched ignoring
    case and spacing), else the last anywhere. When the chosen cell has none, the first
    binding in the cells after it (a student who moved the code down a cell). Statements
    that would rebind a graded function (`graded`) are never run."""
    nb_cells = _cells(nb)
    cells, _ = _parse_cells(nb_cells)
    stmts = [_describe(cell, node) for cell in cells if cell.tree is not None for node in cell.tree.body]
    anchor, how = _anchor(cells, nb_cells, exercise, marker)
    if anchor is None and marker:  # the last binding anywhere may be another exercise's
        return ValueSlice(name, problem=f"no cell says \"{_shorten(marker.strip(), 70)}\" any more, so the "
                          f"grader cannot tell which `{name} = ...` is the exercise's; put that line back "
                          "above your code")
    end = _target(stmts, name, anchor)
    if end is None:
        return ValueSlice(name, problem=_absent(name, how, stmts))
    chosen = _walk(stmts, {name}, end, frozenset(graded), name)
    if anchor is None or chosen.problem:
        return chosen
    # Every value the anchor's cell builds, in one slice: a test that reads `model`,
    # `optimizer` and `channel_1` from one cell then needs one child, not three.
    together = [i for i, s in enumerate(stmts) if s.cell.index == stmts[end].cell.index and not s.compound
                and (s.binds or s.mutates) and not _provided(s) and not _denied_call(s.node)]
    names = set().union(*(stmts[i].binds | stmts[i].mutates for i in together)) - set(graded)
    whole = _walk(stmts, names | {name}, max(together + [end]), frozenset(graded), name)
    if whole.problem:
        return chosen
    return dataclasses.replace(whole, cell=chosen.cell, line=chosen.line, source=chosen.source,
                               notes=chosen.notes, own=chosen.chunks, cell_name=chosen.cell_name)


def _provided(s: _Stmt) -> bool:
    """Imports, defs and classes: the default program runs them already."""
    return isinstance(s.node, (ast.Import, ast.ImportFrom, ast.ClassDef)) or _is_def(s.node)


def _anchor(cells: list[_Cell], nb_cells: list[Any], exercise: str | None, marker: str | None) -> tuple[int | None, str]:
    if exercise:
        tagged = [c.index for c in cells if exercise in _tags_of(nb_cells[c.index])]
        if tagged:
            return tagged[-1], f"the cell tagged `{exercise}`"
    if marker:
        wanted = _normalized(marker)
        found = [c.index for c in cells if wanted in _normalized(c.original)]
        if found:
            return found[-1], f"the cell that says \"{_shorten(marker.strip(), 70)}\""
        return None, ""
    return None, "the notebook"


def _normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _target(stmts: list[_Stmt], name: str, anchor: int | None) -> int | None:
    """Index of the last statement that forms the value: its last plain binding in the
    anchor's region, then the in-place changes that follow it there."""
    def region(cell_test) -> list[int]:
        return [i for i, s in enumerate(stmts) if cell_test(s.cell.index) and not s.compound
                and (name in s.binds or name in s.mutates)]

    found = region(lambda c: c == anchor) if anchor is not None else region(lambda c: True)
    if not found and anchor is not None:
        later = [i for i in region(lambda c: c > anchor)]
        if later:
            first_cell = stmts[later[0]].cell.index
            found = [i for i in later if stmts[i].cell.index == first_cell]
    if not found or not any(name in stmts[i].binds for i in found):
        # only in-place changes here: still graded, the walk finds the binding before
        return found[-1] if found else None
    return found[-1]


def _absent(name: str, how: str, stmts: list[_Stmt]) -> str:
    blocks = [s for s in stmts if s.compound and name in s.binds]
    if blocks:
        s = blocks[-1]
        return (f"`{name}` is only assigned inside {s.compound} ({s.cell.name}, line {_start_line(s.node)}), "
                f"which the grader does not run; assign it at the top level of the cell")
    return f"no top-level assignment `{name} = ...` was found in {how}"


def _walk(stmts: list[_Stmt], names: set[str], end: int, graded: frozenset[str], name: str) -> ValueSlice:
    needed = set(names)
    picked: list[int] = []
    notes: list[str] = []
    for i in range(end, -1, -1):
        s = stmts[i]
        hits = (s.binds | s.mutates) & needed
        if not hits:
            continue
        if s.compound:
            notes.append(f"{s.cell.name} (line {_start_line(s.node)}) is {s.compound}, which the grader does not "
                         f"run: what it does to `{sorted(hits)[0]}` is not part of the graded value")
            continue
        if _provided(s):
            needed -= s.binds
            continue
        if s.binds & graded:
            notes.append(f"{s.cell.name} (line {_start_line(s.node)}) is not run: it would replace the graded "
                         f"`{sorted(s.binds & graded)[0]}`")
            needed -= s.binds
            continue
        denied = _denied_call(s.node)
        if denied:
            what = sorted(hits)[0]
            notes.append(f"`{what}` comes from {s.cell.name}, line {_start_line(s.node)} "
                         f"(`{_shorten(s.cell.segment(s.node).splitlines()[0], 60)}`), which calls `{denied}(...)`: "
                         "training, data loading and plotting are never run by the grader")
            if i == end:
                return ValueSlice(name, problem=notes[-1], notes=tuple(notes))
            needed -= s.binds
            continue
        picked.append(i)
        needed -= s.binds
        needed |= _uses(s.node)
    picked.reverse()
    chunks = tuple(Chunk(stmts[i].cell.segment(stmts[i].node), stmts[i].cell.index, _start_line(stmts[i].node),
                         "assign", stmts[i].cell.name) for i in picked)
    last = stmts[end]
    binding = next((stmts[i] for i in reversed(picked) if name in stmts[i].binds), last)
    return ValueSlice(name, chunks, binding.cell.index, _start_line(binding.node),
                      binding.cell.segment(binding.node), notes=tuple(notes), own=chunks,
                      cell_name=binding.cell.name)


def _describe(cell: _Cell, node: ast.stmt) -> _Stmt:
    compound = next((label for kind, label in _COMPOUND.items() if isinstance(node, kind)), "")
    if compound:
        return _Stmt(cell, node, _stored(node), set(), compound)
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _Stmt(cell, node, set(_import_names(node)), set())
    if _is_def(node) or isinstance(node, ast.ClassDef):
        return _Stmt(cell, node, {node.name}, set())  # type: ignore[union-attr]
    binds: set[str] = set()
    mutates: set[str] = set()
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets = [node.target]
    elif isinstance(node, ast.AugAssign):
        root = _root(node.target)
        if root:
            mutates.add(root)
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        root = _mutated_by_call(node.value)
        if root:
            mutates.add(root)
    for target in targets:
        plain = _target_names(target)
        if plain is not None:
            binds.update(plain)
        else:
            root = _root(target)
            if root:
                mutates.add(root)
    return _Stmt(cell, node, binds, mutates)


def _stored(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _root(node: ast.expr) -> str | None:
    """`model` of `model.fc.weight[0]`."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated_by_call(call: ast.Call) -> str | None:
    """The name a bare call changes in place: `model.add(...)` (a known mutator method), or
    an in-place function on it, `nn.init.kaiming_normal_(model[0].weight)`."""
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _MUTATORS:
        return _root(func.value)
    if isinstance(func, (ast.Attribute, ast.Name)) and _called_name(func).endswith("_") and call.args:
        return _root(call.args[0])
    return None


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _denied_call(node: ast.stmt) -> str:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            called = _called_name(sub.func)
            lowered = called.lower()
            if called == "input" and isinstance(sub.func, ast.Name):  # the builtin waits for a keyboard
                return called
            if lowered in _DENIED or (lowered.startswith(_DENIED_PREFIXES) and not _is_mode_switch(sub)):
                return called
    return ""


def _is_mode_switch(call: ast.Call) -> bool:
    """`model.train()` only sets a mode; `train_part34(model, optimizer)` trains."""
    return isinstance(call.func, ast.Attribute) and call.func.attr == "train" and len(call.args) <= 1


def _uses(node: ast.stmt) -> set[str]:
    """Names the statement reads, less those it binds inside itself (comprehension
    variables, lambda arguments) and builtins."""
    loaded: set[str] = set()
    local: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            if isinstance(sub.ctx, ast.Load):
                loaded.add(sub.id)
        elif isinstance(sub, ast.comprehension):
            local |= _stored(sub.target)
        elif isinstance(sub, ast.Lambda):
            local |= {a.arg for a in ast.walk(sub.args) if isinstance(a, ast.arg)}
        elif isinstance(sub, ast.NamedExpr):
            local.add(sub.target.id)
    return (loaded - local) - _BUILTINS
