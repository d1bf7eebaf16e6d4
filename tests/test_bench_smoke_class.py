"""bench/class_bench.py generates course-layout notebooks, grades them in a timed process
and writes a well-formed report (timings not asserted: they belong to the machine)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_class_bench_grades_a_tiny_class_and_reports_it(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "class_bench.py"), "--n", "2", "--jobs", "1",
                           "--json", "--out", str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["n"] == 2 and report["assignment"] == "dls_c4w1a2" and report["scores_agree"]
    assert report["target"]["met"] is None  # judged only for the 75 the target names
    (row,) = report["rows"]
    assert row["n"] == 2 and row["ungraded"] == 0 and row["jobs"] == 1
    assert Path(row["grader_from"]) == ROOT
    assert 0 < row["startup_seconds"] <= row["wall_seconds"]
    assert report["scores"] == [14.0]  # both generated notebooks are correct course notebooks
    assert len(list(tmp_path.glob("class_bench-*.json"))) == 1


def test_generated_class_has_the_course_imports_and_the_real_mistakes(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import class_bench
    finally:
        sys.path.remove(str(ROOT / "bench"))
    paths = class_bench.generate(tmp_path, 30)
    assert len({p.read_bytes() for p in paths}) == 30
    kinds = [p.stem.split("_", 1)[1] for p in paths]
    assert kinds.count("relu_first") == 3 and kinds.count("truncated") == 1
    text = paths[0].read_text()
    for needed in ("import matplotlib.pyplot", "import scipy", "import h5py", "from PIL import Image",
                   "import pandas", "from cnn_utils import", "from test_utils import", "%matplotlib inline",
                   "load_happy_dataset()", ".fit("):
        assert needed in text, needed
