"""The self-check benchmark runs end to end and writes a well-formed report (timings are the
machine's, not asserted); one process started one worker for all its checks."""
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

    report = bench.main(["--n", "1", "--warm", "1", "--out", str(tmp_path)])

    written = list(tmp_path.glob("selfcheck_bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    assert report["workers_started"] == 1  # the warm call reused the first call's worker
    assert report["score"] == [7.0, 7.0]
    assert report["isolation"].split(",")[0] in ("full", "namespace", "process")
    for value in (report["check_first"], report["grader_check"]["median"], report["check_warm"]["median"]):
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    assert set(report["targets"]) == {"warm_under_seconds", "warm_met", "first_not_slower_met"}
    assert "check() warm" in capsys.readouterr().out
