"""bench/model_speed_bench.py: a tiny run measures a U-Net submission against a baseline in
the same run and writes a well-formed report (times and memory not asserted: they belong
to the machine); the baseline is given an assignment it lacks without the spec keys its
grader would refuse."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("model_speed_bench", ROOT / "bench" / "model_speed_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_tables_the_baseline_does_not_know_are_dropped():
    bench = _bench()
    spec = ('name = "x"\nexercises = ["f"]\n\n[modules]\ntest_utils = "missing"\n'
            '"keras.utils.vis_utils" = "missing"\n\n[[written]]\nid = "q"\npoints = 1\n')
    kept = bench._without_tables(spec, {"modules"})
    assert "test_utils" not in kept and "vis_utils" not in kept and "[modules]" not in kept
    assert 'name = "x"' in kept and "[[written]]" in kept and 'id = "q"' in kept


def test_an_assignment_the_baseline_lacks_is_copied_in(tmp_path):
    """A baseline tree whose grader knows every key but `modules` gets dls_c4w3a2 and its
    reference, with `[modules]` removed; an assignment it has is left as it is."""
    bench = _bench()
    ours = bench._spec_source(ROOT)  # wherever this checkout keeps the spec module
    (tmp_path / "grader").mkdir()
    (tmp_path / "grader" / "assignment.py").write_text(
        "\n".join(line for line in ours.splitlines() if 'Key("modules"' not in line), encoding="utf-8")
    (tmp_path / "assignments" / "dls_c4w2a1").mkdir(parents=True)
    assert bench.bring_assignment(tmp_path, "dls_c4w2a1") == "its own copy"
    how = bench.bring_assignment(tmp_path, "dls_c4w3a2")
    assert how == "copied from this checkout, without modules", how
    spec = (tmp_path / "assignments" / "dls_c4w3a2" / "assignment.toml").read_text(encoding="utf-8")
    assert "[modules]" not in spec and 'exercises = ["conv_block", "upsampling_block", "unet_model"]' in spec
    assert (tmp_path / "reference" / "dls_c4w3a2.py").is_file()
    assert (tmp_path / "assignments" / "dls_c4w3a2" / "probes.py").is_file()


@pytest.mark.slow
def test_model_speed_bench_measures_a_unet_submission_against_a_baseline(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "model_speed_bench.py"), "--only", "unet", "--k", "1",
                           "--baseline-ref", "HEAD", "--json", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    now, base = report["current"]["unet"], report["baseline"]["unet"]
    assert "unavailable" not in now, now
    assert Path(now["grader_from"]) == ROOT and Path(base["grader_from"]) != ROOT
    assert now["assignment"] == "dls_c4w3a2" and now["full_marks"], now["runs"]
    assert [r["warmup"] for r in now["runs"]] == [True, False]
    for run in now["runs"]:
        assert run["wall"] > 0 and run["grading_cpu"] > 0 and run["score"] == run["max_score"] == 30
        assert run["peak_mib"] > 200  # TensorFlow in the grading process and in the worker
    assert base["assignment_from"] == "its own copy" and base["full_marks"]
    ratios = report["ratios"]["unet"]
    assert ratios["comparable"] and all(ratios[k] > 0 for k in ("wall", "cpu", "peak")), ratios
    assert set(report["targets"]["unet"]) == {"seconds", "peak_mib", "time_met", "peak_met"}
    assert report["targets"]["unet"]["seconds"] == 3.0 and "resnet" not in report["current"]
    assert len(list(tmp_path.glob("model_speed_bench-*.json"))) == 1
