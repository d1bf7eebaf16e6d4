"""The assignment benchmark runs and writes a well-formed report (timings not asserted:
they belong to the machine, not to the code)."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "assignment_bench.py"


def test_assignment_bench_writes_a_well_formed_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("assignment_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    report = bench.main(["--repeats", "2", "--n-train", "12", "--n-test", "4", "--out", str(tmp_path)])

    (written,) = tmp_path.glob("assignment_bench-*.json")
    assert json.loads(written.read_text()) == json.loads(json.dumps(report))
    faces = report["faces"]
    assert (faces["n_train"], faces["n_test"]) == (12, 4) and len(faces["runs"]) == 2
    assert all(isinstance(t, float) and math.isfinite(t) and t > 0 for t in faces["runs"])
    assert faces["target"] == 2.0 and isinstance(faces["met"], bool)
    assert "master_notebook" not in report  # only with --notebook
    assert "16 faces: median" in capsys.readouterr().out
