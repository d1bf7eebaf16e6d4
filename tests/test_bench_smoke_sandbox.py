"""The sandbox benchmark runs end to end and writes a well-formed report (timings not asserted:
they belong to the machine, not to the code)."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "sandbox_bench.py"


@pytest.mark.slow
def test_sandbox_bench_writes_a_well_formed_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("sandbox_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    report = bench.main(["--n", "1", "--n-fresh", "1", "--out", str(tmp_path), "--baseline-ref", "HEAD"])

    written = list(tmp_path.glob("sandbox_bench-*.json"))
    assert len(written) == 1
    assert json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    assert report["isolation"] in ("full", "namespace", "process")
    for mode in ("preloaded", "fresh"):
        block = report[mode]
        assert block["n"] == 1
        for key in ("wall_mean", "wall_median", "cpu_mean", "cpu_median", "peak_mib"):
            assert isinstance(block[key], float) and math.isfinite(block[key]) and block[key] > 0, (mode, key)
        assert all({"wall", "cpu", "peak_mib", "warmup"} <= set(run) for run in block["runs"])
    assert len(report["preloaded"]["runs"]) == 2 and report["preloaded"]["runs"][0]["warmup"]
    assert report["speedup_wall"] > 0
    assert set(report["targets"]) == {"speedup_wall", "steady_cpu_seconds", "steady_wall_seconds", "speedup_met",
                                      "cpu_met", "wall_met"}
    assert report["targets"]["steady_cpu_seconds"] == report["targets"]["steady_wall_seconds"] == 0.25  # issue 14
    base = report["baseline"]  # the same arm, run by the committed grader in a process of its own
    assert base["ref"] == "HEAD" and base["n"] == 1 and base["cpu_median"] > 0 and base["grading_cpu_median"] > 0
    assert Path(base["grader_from"]) != BENCH.parent.parent  # the exported revision, not this checkout
    table = capsys.readouterr().out
    assert "preloaded worker" in table and "fresh process per submission" in table and "speed-up" in table
    assert "baseline HEAD" in table
