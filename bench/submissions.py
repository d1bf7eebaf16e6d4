"""Generate a class's worth of varied conv_bn submissions, deterministically.

    python bench/submissions.py OUT_DIR --n 40 [--seed 0]

Each submission starts from one of the assignment's sample notebooks (the correct
solution, or one of the known mistakes) and gets small student-like variations in its
graded cells: comments, blank lines, a renamed local variable, a harmless extra line. The
same (n, seed) always gives byte-identical files, so a test can compare gradings of them
across runs, and the variations keep the class report's code clustering honest (renamed
copies must still cluster). About one in five students submits a folder instead of a
file, and one submission in a class is a truncated file that cannot be graded at all.
"""
from __future__ import annotations

import argparse
import ast
import copy
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "assignments" / "conv_bn" / "samples"
EXERCISES = ("standardize", "batchnorm_forward", "happyModel", "convolutional_model")

# Sample notebook -> how often it is drawn after each kind has appeared once.
KINDS = {
    "correct": 6,
    "relu_before_bn": 3,
    "bn_missing": 2,
    "test_stats_leak": 2,
    "eps_outside_sqrt": 2,
    "broken_tags": 1,
    "mixed": 1,
    "template": 1,
}
UNREADABLE = "unreadable"  # a truncated upload: the one that must not stop the batch

COMMENTS = ("# my solution", "# TODO: check this again", "# based on the lecture notes",
            "# channels last", "# works on my machine", "# see the exercise text above")
SUFFIXES = ("_val", "_tmp", "_out", "_2", "_arr")


@dataclass(frozen=True)
class Generated:
    path: Path
    student: str
    kind: str


def _load(kind: str):
    import nbformat
    path = SAMPLES / f"{kind}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python assignments/conv_bn/build.py` first")
    return nbformat.read(path, as_version=4)


def _graded_function(source: str):
    """(tree, function node) of the first graded definition in a cell, or None."""
    if not any(re.search(rf"^def {name}\b", source, re.MULTILINE) for name in EXERCISES):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in EXERCISES:
            return tree, node
    return None


def _rename_local(source: str, function: ast.FunctionDef, rng: random.Random) -> str:
    params = {a.arg for a in function.args.args + function.args.kwonlyargs}
    stored = sorted({n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                    - params)
    if not stored:
        return source
    old = rng.choice(stored)
    taken = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)}
    new = old + rng.choice(SUFFIXES)
    if new in taken:
        return source
    lines = source.split("\n")
    spots = sorted(((n.lineno, n.col_offset, n.end_col_offset) for n in ast.walk(function)
                    if isinstance(n, ast.Name) and n.id == old), reverse=True)
    for line, start, end in spots:  # from the end, so earlier offsets stay valid
        raw = lines[line - 1].encode()
        lines[line - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return "\n".join(lines)


def _insert_before_statement(source: str, function: ast.FunctionDef, rng: random.Random, make) -> str:
    lines = source.split("\n")
    body = function.body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1:
        body = body[1:]  # keep the docstring first
    statement = rng.choice(body)
    line = lines[statement.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    lines.insert(statement.lineno - 1, make(indent))
    return "\n".join(lines)


def vary(source: str, rng: random.Random) -> str:
    """Cosmetic edits a student makes; each kept only if the cell still parses."""
    found = _graded_function(source)
    if found is None:
        return source
    edits = [
        lambda s, f: _insert_before_statement(s, f, rng, lambda ind: ind + rng.choice(COMMENTS)),
        lambda s, f: _insert_before_statement(s, f, rng, lambda ind: ""),
        lambda s, f: _rename_local(s, f, rng),
        lambda s, f: _insert_before_statement(s, f, rng, lambda ind: ind + "_ = None  # scratch"),
        lambda s, f: s.replace("\n", "  \n", 1),  # trailing spaces after the first line
    ]
    for edit in rng.sample(edits, k=rng.randint(1, 3)):
        found = _graded_function(source)
        if found is None:
            break
        changed = edit(source, found[1])
        try:
            ast.parse(changed)
        except SyntaxError:
            continue
        source = changed
    return source


def generate(out: str | Path, n: int = 40, *, seed: int = 0) -> list[Generated]:
    """Write n submissions into `out` and say what each one is."""
    import nbformat
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    kinds = list(KINDS) + [UNREADABLE]
    while len(kinds) < n:
        kinds.append(rng.choices(list(KINDS), weights=list(KINDS.values()))[0])
    kinds = kinds[:n]
    cache: dict = {}
    made = []
    for i, kind in enumerate(kinds):
        student = f"student{i + 1:03d}"
        local = random.Random(f"{seed}-{i}")
        path = out / student / "submission.ipynb" if i % 5 == 4 else out / f"{student}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == UNREADABLE:
            text = nbformat.writes(cache.setdefault("correct", _load("correct")))
            path.write_text(text[: len(text) // 2], encoding="utf-8")
        else:
            nb = copy.deepcopy(cache.setdefault(kind, _load(kind)))
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.source = vary(cell.source, local)
            nbformat.write(nb, path)
        made.append(Generated(path, student, kind))
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for g in generate(args.out, args.n, seed=args.seed):
        print(f"{g.path}\t{g.kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
