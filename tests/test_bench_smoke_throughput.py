"""bench/throughput.py runs end to end on a tiny class and says something well-formed.

No wall-clock assertion: timings depend on the machine; only the shape of the output and
the agreement of the scores across configurations are checked.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIELDS = {"config": str, "n": int, "results": int, "ungraded": int, "seconds": float, "startup_seconds": float,
          "per_minute": float, "steady_per_minute": float, "jobs": int, "scores_agree": bool}


@pytest.mark.slow
def test_throughput_bench_reports_each_configuration():
    # One local configuration and the cluster: the "2" and "all" runs take the same path as
    # "1" with another number (their labels are checked below), and each costs a start-up.
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "throughput.py"), "--n", "2", "--json",
                           "--configs", "1,cluster"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["config"] for r in rows] in (["1 core", "LocalCluster, 2 workers"],
                                           ["1 core (all)", "LocalCluster, 2 workers"])
    assert [r["jobs"] for r in rows] == [1, 2]
    for row in rows:
        assert set(row) == set(FIELDS), row
        for name, kind in FIELDS.items():
            assert isinstance(row[name], kind) or (kind is float and isinstance(row[name], int)), (name, row)
        assert row["n"] == row["results"] == 2 and row["ungraded"] == 0 and row["scores_agree"]
        assert 0 < row["startup_seconds"] <= row["seconds"] and row["per_minute"] > 0 and row["steady_per_minute"] > 0


def test_configurations_measure_a_shared_core_count_once(monkeypatch):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import throughput
    finally:
        sys.path.remove(str(ROOT / "bench"))
    monkeypatch.setattr(throughput, "default_jobs", lambda: 2)
    assert throughput.configurations(["1", "2", "all", "cluster"]) == [
        ("1 core", 1), ("2 cores (all)", 2), ("LocalCluster, 2 workers", None)]
    monkeypatch.setattr(throughput, "default_jobs", lambda: 8)
    assert [label for label, _ in throughput.configurations(["1", "2", "all"])] == ["1 core", "2 cores", "8 cores (all)"]
    with pytest.raises(ValueError):
        throughput.configurations(["0"])
