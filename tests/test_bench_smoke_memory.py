"""bench/memory_bench.py runs its long run (tiny here) in a measured process and writes a
well-formed report (memory and timings not asserted: they belong to the machine)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_memory_bench_samples_a_long_run_and_reports_growth_and_peak(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "memory_bench.py"), "--n", "3", "--every", "1",
                           "--resnet", "0", "--json", "--out", str(tmp_path), "--baseline-ref", "HEAD"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    run, baseline = report["long_runs"]
    # Each ran the grader it names: this checkout, then the committed one exported elsewhere.
    assert Path(run["grader_from"]) == ROOT and baseline["label"] == "baseline HEAD"
    assert Path(baseline["grader_from"]) != ROOT and baseline["n"] == 3
    assert run["n"] == 3 and [s["graded"] for s in run["samples"]] == [1, 2, 3]
    for sample in run["samples"]:
        assert sample["grading_rss_mib"] > 100 and sample["worker_pss_mib"] > 100  # TensorFlow on both sides
    assert run["peak_mib"] >= max(s["grading_rss_mib"] for s in run["samples"]) * 0.5
    assert isinstance(run["growth_mib_per_1000"], float) and run["cpu_per_submission"] > 0
    assert report["resnet"] is None
    assert set(report["targets"]) == {"growth_mib_per_1000", "peak_mib", "flat_met", "peak_met"}
    assert len(list(tmp_path.glob("memory_bench-*.json"))) == 1
