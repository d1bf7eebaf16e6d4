"""The self-check benchmark runs end to end and writes a well-formed report (timings are the
machine's, not asserted); one process started one worker for all its checks; a baseline
revision runs as its own arm, from its own extracted checkout."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "selfcheck_bench.py"


@pytest.mark.slow
def test_selfcheck_bench_writes_a_well_formed_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("selfcheck_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    report = bench.main(["--n", "1", "--warm", "1", "--prime", "0", "--baseline-ref", "HEAD", "--out", str(tmp_path)])

    written = list(tmp_path.glob("selfcheck_bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    assert report["workers_started"] == 1  # the warm call reused the first call's worker
    assert report["score"] == [7.0, 7.0]
    assert report["isolation"].split(",")[0] in ("full", "namespace", "process")
    for value in (report["check_first"], report["grader_check"]["median"], report["check_warm"]["median"],
                  report["baseline"]["median"], report["speedup"]):
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    # each arm graded the sample fully, with its own grader package
    assert report["grader_check"]["score"] == report["baseline"]["score"] == [21.0, 21.0]
    assert report["baseline"]["grader"] != report["grader_check"]["grader"]
    assert report["baseline"]["grader"].startswith("/tmp") or "grader-selfcheck-base-" in report["baseline"]["grader"]
    for arm in (report["grader_check"], report["baseline"]):  # CPU where perf can count it
        assert arm["cpu_median"] is None or (math.isfinite(arm["cpu_median"]) and arm["cpu_median"] > 0)
        assert len(arm["cpu"]) in (0, 1)
    assert set(report["targets"]) == {"cold_under_seconds", "cold_met", "warm_under_seconds", "warm_met",
                                      "first_not_slower_met"}
    out = capsys.readouterr().out
    assert "check() warm" in out and "baseline HEAD" in out
