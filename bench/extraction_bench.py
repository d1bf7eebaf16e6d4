"""Reading a notebook: does the cost grow linearly with its size, whatever its shape?

    python bench/extraction_bench.py [--base 250] [--scales 1,4,16] [--repeat 3] [--count] [--json]

For each shape below, a notebook is generated at `base` x each scale, written to a
temporary file, then loaded (`load_notebook`: JSON, structure, schema repairs) and
extracted (`extract_program`: parse, locate, select). Each step is timed in CPU seconds
(the best of `--repeat` runs, so other processes on the machine inflate it less), and the
ratio to the previous scale is printed: about 4x per 4x is linear, 16x quadratic.

With `--count`, each step's work is also counted as the number of Python lines and calls
it runs (sys.settrace / sys.setprofile). Counts are exact and the same on any machine,
so they are what tests/test_bench_smoke_extraction.py checks; they cannot see work done
inside one C call (a long string slice), which is why the times are printed too.

Shapes:
* tiny_statements: one cell of `n` one-line assignments (the reader was quadratic
  here: 4,096 lines took 20 s);
* long_line: `n` statements on one line, separated by semicolons, with non-ASCII text
  (column offsets are UTF-8 byte offsets);
* many_cells: `n` cells, each an import and a function;
* huge_string: one constant of 60 x `n` characters;
* deep_nesting: blocks nested 20 deep, `n` lines in all, and a 50-deep literal;
* damaged_cells: `n` cells, each with a malformed output and an unknown key, which
  nbformat can only describe (slowly) with jsonschema.

Output: a table, or with --json one JSON object per shape and scale per line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # run as a script from a checkout

from grader.notebook import LoadError, extract_program, load_notebook  # noqa: E402

HAPPY = "def happyModel():\n    return 'graded'\n"


def _code(source: str, **extra: Any) -> dict[str, Any]:
    cell = {"cell_type": "code", "metadata": {}, "source": source, "outputs": [], "execution_count": None}
    cell.update(extra)
    return cell


def _notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": cells}


def tiny_statements(n: int) -> dict[str, Any]:
    return _notebook([_code("\n".join(f"a{i} = {i}" for i in range(n)) + "\n" + HAPPY)])


def long_line(n: int) -> dict[str, Any]:
    return _notebook([_code("; ".join(f"é{i} = 'ü{i}'" for i in range(n)) + "\n" + HAPPY)])


def many_cells(n: int) -> dict[str, Any]:
    cells = [_code(f"import os\ndef f{i}():\n    return {i}\n") for i in range(n)]
    return _notebook(cells + [_code(HAPPY, metadata={"tags": ["happyModel"]})])


def huge_string(n: int) -> dict[str, Any]:
    return _notebook([_code("S = '" + "x" * (60 * n) + "'\n" + HAPPY)])


def deep_nesting(n: int) -> dict[str, Any]:
    block = "".join("    " * depth + "if x:\n" for depth in range(20)) + "    " * 20 + "pass\n"
    literal = "X = " + "[" * 50 + "1" + "]" * 50 + "\n"
    return _notebook([_code("x = 1\n" + literal + block * -(-n // 21) + HAPPY)])


def damaged_cells(n: int) -> dict[str, Any]:
    bad = [{"output_type": "stream", "name": "stdout"}]  # a stream output without its text
    cells = [_code(f"x{i} = {i}", outputs=bad, vscode_extra=i) for i in range(n)]
    return _notebook(cells + [_code(HAPPY)])


SHAPES: dict[str, Callable[[int], dict[str, Any]]] = {
    shape.__name__: shape
    for shape in (tiny_statements, long_line, many_cells, huge_string, deep_nesting, damaged_cells)
}


def count_events(function: Callable[..., Any], *args: Any) -> int:
    """Python lines and calls (Python and built-in) run by `function(*args)`."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        count += 1
        return tracer

    def profiler(frame, event, arg):
        nonlocal count
        count += event.startswith("c_")

    sys.settrace(tracer)
    sys.setprofile(profiler)
    try:
        function(*args)
    finally:
        sys.settrace(None)
        sys.setprofile(None)
    return count


def _best_cpu(function: Callable[..., Any], args: tuple, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.process_time()
        result = function(*args)
        best = min(best, time.process_time() - started)
    return best, result


def measure(shape: str, n: int, folder: str, *, repeat: int = 3, count: bool = False) -> dict[str, Any]:
    """One row: the notebook's size, and what loading and extracting it cost."""
    path = os.path.join(folder, f"{shape}_{n}.ipynb")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(SHAPES[shape](n), f)
    load_s, nb = _best_cpu(load_notebook, (path,), repeat)
    if isinstance(nb, LoadError):
        raise RuntimeError(f"the generated notebook did not load: {nb}")
    extract_s, program = _best_cpu(extract_program, (nb, ["happyModel"]), repeat)
    row: dict[str, Any] = {
        "shape": shape, "n": n, "bytes": os.path.getsize(path), "cells": len(nb.cells),
        "chunks": len(program.chunks), "graded_found": "happyModel" in program.located,
        "load_cpu_s": round(load_s, 5), "extract_cpu_s": round(extract_s, 5),
    }
    if count:
        row["load_events"] = count_events(load_notebook, path)
        row["extract_events"] = count_events(extract_program, nb, ["happyModel"])
    return row


def run(base: int, scales: list[int], *, shapes: list[str] | None = None, repeat: int = 3,
        count: bool = False) -> list[dict[str, Any]]:
    """Rows for every shape and scale, each with its ratios to the previous scale."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        measure("tiny_statements", 1, folder, repeat=1)  # the first load compiles the schema validators
        for shape in shapes or list(SHAPES):
            previous = None
            for scale in scales:
                row = measure(shape, base * scale, folder, repeat=repeat, count=count)
                row["scale"] = scale
                for key in ("load_cpu_s", "extract_cpu_s", "load_events", "extract_events"):
                    if key in row:
                        before = previous.get(key) if previous else None
                        row[key.rsplit("_", 1)[0] + "_ratio"] = round(row[key] / before, 2) if before else None
                rows.append(row)
                previous = row
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    counted = "load_events" in rows[0]
    head = f"{'shape':16} {'scale':>5} {'n':>6} {'KB':>7} {'load s':>8} {'ratio':>6} {'extract s':>9} {'ratio':>6}"
    if counted:
        head += f" {'load ops':>10} {'ratio':>6} {'extract ops':>11} {'ratio':>6}"
    lines = [head, "-" * len(head)]

    def ratio(value: float | None) -> str:
        return f"{value:.1f}x" if value is not None else "-"

    for r in rows:
        line = (f"{r['shape']:16} {r['scale']:>5} {r['n']:>6} {r['bytes'] / 1024:>7.0f} {r['load_cpu_s']:>8.3f} "
                f"{ratio(r['load_cpu_ratio']):>6} {r['extract_cpu_s']:>9.3f} {ratio(r['extract_cpu_ratio']):>6}")
        if counted:
            line += (f" {r['load_events']:>10,} {ratio(r['load_ratio']):>6} {r['extract_events']:>11,} "
                     f"{ratio(r['extract_ratio']):>6}")
        lines.append(line)
    lines.append("ratio: cost at this scale / cost at the previous one; linear growth is the scale step (4x), "
                 "quadratic its square (16x)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=250, help="size n at scale 1 (default 250)")
    parser.add_argument("--scales", default="1,4,16", help="comma-separated multiples of --base (default 1,4,16)")
    parser.add_argument("--shapes", default="", help=f"comma-separated subset of {', '.join(SHAPES)}")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts (default 3)")
    parser.add_argument("--count", action="store_true", help="also count the work done (slow: traces every line)")
    parser.add_argument("--json", action="store_true", help="one JSON object per row instead of a table")
    args = parser.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    shapes = [s for s in args.shapes.split(",") if s.strip()] or None
    unknown = set(shapes or []) - set(SHAPES)
    if unknown or args.base < 1 or not scales or min(scales) < 1:
        parser.error(f"unknown shapes {sorted(unknown)}" if unknown else "--base and --scales must be positive")
    rows = run(args.base, scales, shapes=shapes, repeat=args.repeat, count=args.count)
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        print(_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
