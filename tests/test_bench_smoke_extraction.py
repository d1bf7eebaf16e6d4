"""bench/extraction_bench.py runs end to end on small notebooks and shows linear growth.

Growth is judged on the benchmark's work counts (Python lines and calls, exact on any
machine), never on its times: a loaded machine can stretch one run and not the next.
The times are only checked to be there. The reader this guards against made 16x the
work for a 4x larger cell.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ["tiny_statements", "long_line", "many_cells", "huge_string", "deep_nesting", "damaged_cells"]


def test_extraction_bench_shows_linear_work_for_every_shape():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "extraction_bench.py"), "--base", "60",
                           "--scales", "1,4", "--repeat", "1", "--count", "--json"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["shape"], r["scale"]) for r in rows] == [(s, k) for s in SHAPES for k in (1, 4)]
    for row in rows:
        assert row["graded_found"] and row["chunks"] >= 1, row  # no cap cut the notebook short
        assert row["bytes"] > 0 and row["load_cpu_s"] >= 0 and row["extract_cpu_s"] >= 0, row
        assert row["load_events"] > 0 and row["extract_events"] > 0, row
    for small, large in zip(rows[::2], rows[1::2]):
        assert large["n"] == 4 * small["n"] and large["bytes"] > 2 * small["bytes"], (small, large)
        for step in ("load", "extract"):
            ratio = large[f"{step}_ratio"]
            assert ratio == round(large[f"{step}_events"] / small[f"{step}_events"], 2)
            assert ratio < 6, f"{large['shape']}: 4x the notebook cost {ratio}x the {step} work (quadratic is 16x)"


def test_extraction_bench_prints_a_table_by_default():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "extraction_bench.py"), "--base", "20",
                           "--scales", "1,2", "--repeat", "1", "--shapes", "tiny_statements,many_cells"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["shape", "scale", "n"]
    assert [line.split()[0] for line in lines[2:6]] == ["tiny_statements"] * 2 + ["many_cells"] * 2
    assert "quadratic" in lines[-1]
