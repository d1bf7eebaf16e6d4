"""The student-install benchmark runs end to end on one kit, sizes only, and writes a report
whose parts add up: no network, pip isolated from this machine's configuration and given
only a folder of wheels repacked from this environment (tests/wheelhouse.py, as
tests/test_student_path.py does). Those wheels are stored uncompressed, so the sizes are
not the real download's (bench/README.md has those); what is checked is that every
resolved file is counted once, the grader's own wheel apart, and the target's ratio is
the total's."""
from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path

import pytest

from test_student_path import _pins, _requires_of
from wheelhouse import wheelhouse

BENCH = Path(__file__).resolve().parent.parent / "bench" / "student_install_bench.py"


def _bench():
    spec = importlib.util.spec_from_file_location("student_install_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.slow
def test_student_install_bench_reports_sizes_that_add_up(tmp_path, capsys):
    bench = _bench()
    wheels = tmp_path / "wheels"
    grader_wheel = bench.build_wheel(tmp_path / "built")
    pins = _pins(_requires_of(grader_wheel), {"keras", "student"})
    wheelhouse(pins, wheels)

    report = bench.main(["--kits", "keras", "--method", "report", "--no-check", "--out", str(tmp_path / "out"),
                         "--pip-arg=--isolated", "--pip-arg=--no-index", f"--pip-arg=--find-links={wheels}"])

    written = list((tmp_path / "out").glob("student_install_bench-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text()) == json.loads(json.dumps(report))
    assert list(report["kits"]) == ["keras"] and report["method"] == "report"
    kit = report["kits"]["keras"]
    assert kit["readme_line"] == f'pip install "{grader_wheel.name}[keras,student]"'
    packages = kit["packages"]
    assert all(p["bytes"] > 0 for p in packages) and kit["total_bytes"] > 0
    assert sum(p["bytes"] for p in packages) == kit["total_bytes"] and kit["count"] == len(packages)
    # every pin resolved, from the wheelhouse, each once; the grader's wheel counted apart
    assert sorted(f"{p['name']}=={p['version']}" for p in packages) == sorted(
        bench._canonical(pin.split("==")[0]) + "==" + pin.split("==")[1] for pin in pins)
    assert {p["source"] for p in packages} == {str(wheels)}
    for p in packages:
        assert (wheels / p["file"]).stat().st_size == p["bytes"] and zipfile.is_zipfile(wheels / p["file"])
    assert "grader" not in {p["name"] for p in packages} and kit["grader_wheel_bytes"] > 0
    # the five largest, largest first; TensorFlow (one, the CPU package) leads
    assert [t["bytes"] for t in kit["top5"]] == sorted((p["bytes"] for p in packages), reverse=True)[:5]
    assert kit["top5"][0]["name"] == "tensorflow-cpu" and "tensorflow" not in {p["name"] for p in packages}
    assert kit["target_bytes"] == 600 * 10**6
    assert kit["target_ratio"] == round(kit["total_bytes"] / kit["target_bytes"], 3) > 0
    assert "check" not in kit
    out = capsys.readouterr().out
    assert "target <= 600 MB" in out and "tensorflow-cpu" in out


def test_sizes_are_summed_apart_from_the_grader_wheel():
    """The summary alone, on made-up entries: fast, and the arithmetic the report rests on."""
    bench = _bench()
    files = [bench._entry(name, "1", f"{name}.whl", size, "here")
             for name, size in (("grader", 7), ("a_b", 5), ("c", 40), ("d", 1), ("e", 2), ("f", 3), ("g", 4))]
    summary = bench.summarize(files, "torch")
    assert summary["total_bytes"] == 55 and summary["count"] == 6 and summary["grader_wheel_bytes"] == 7
    assert [t["name"] for t in summary["top5"]] == ["c", "a-b", "g", "f", "e"]
    assert "target_ratio" not in summary  # only the Keras 3 kit has a target
    assert bench.summarize(files, "keras")["target_ratio"] == round(55 / 600e6, 3)
