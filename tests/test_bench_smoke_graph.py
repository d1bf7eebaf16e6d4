"""The graph benchmark runs end to end and reports what it claims to measure (timings
not asserted: they belong to the machine, not to the code); the verdicts it reports are
behaviour and are asserted: the bomb is refused, ResNet50 matches itself and a copy with
one changed Conv2D fails on that Conv2D."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "graph_bench.py"


@pytest.mark.slow
def test_graph_bench_writes_a_well_formed_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("graph_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    report = bench.main(["--calls", "2", "--depth", "3", "--repeat", "1", "--out", str(tmp_path)])

    written = list(tmp_path.glob("graph_bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    growth = report["growth"]
    assert (growth["small_nodes"], growth["large_nodes"]) == (8, 16)
    assert math.isfinite(growth["ratio"]) and growth["ratio"] > 0
    assert report["bomb"]["refused"] and report["bomb"]["diagnosis"] == "graph_too_large"
    assert report["bomb"]["unrolled_calls"] == 5 ** 8
    resnet = report["resnet50"]
    assert resnet["params"] == 23_600_006 and 150 < resnet["nodes"] < 200
    assert resnet["same_verdict"] == "passed"
    assert (resnet["changed_verdict"], resnet["changed_diagnosis"]) == ("failed", "wrong_params:Conv2D")
    out = capsys.readouterr().out
    assert "nested walk" in out and "nested bomb" in out and "ResNet50" in out
