"""The grading process is bounded in memory too (issue 20).

A student's functions may each return up to the reply cap; a submission whose replies
together are more than a grading process may hold gets a clear error naming the file and
the limit, and the next submission in the same batch is graded as usual. Real grading
processes (supervised, as `grader grade` runs them), real sandbox, real notebooks; the
limit is set low here so that a few replies of ~100 MiB cross it.
"""
from __future__ import annotations

import pytest

from conftest import notebook
from grader.classroom.process import Options
from grader.classroom.supervisor import supervised

SPEC = """\
name = "big_replies"
exercises = ["big"]
reference = "reference.py"
call_timeout = 60
secret = "big-replies-secret"
"""

REFERENCE = "import numpy as np\n\n\ndef big(i):\n    return np.full(3, i, dtype=np.float32)\n"

TESTS = '''\
import numpy as np

from grader.testing import exercise, points
''' + "".join(f'''

@points(1)
@exercise("big")
def test_big_{i}(submission):
    got = submission.call("big", {i})
    assert np.asarray(got).shape == (3,), "three values, please"
''' for i in range(5))

HOG = "import numpy as np\n\n\ndef big(i):\n    return np.full(28_000_000, i, dtype=np.float32)\n"  # 107 MiB each
HONEST = REFERENCE

LIMIT = 750 * 1024 ** 2  # TensorFlow and the tests hold ~400 MiB; five replies of 107 MiB do not fit


@pytest.mark.slow
def test_a_submission_over_the_memory_bound_is_told_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "big_replies"
    (root / "tests").mkdir(parents=True)
    (root / "assignment.toml").write_text(SPEC)
    (root / "reference.py").write_text(REFERENCE)
    (root / "tests" / "test_big.py").write_text(TESTS)
    hog = notebook(tmp_path / "hog.ipynb", HOG)
    honest = notebook(tmp_path / "honest.ipynb", HONEST)
    options = Options(assignment=str(root), memory_bytes=LIMIT)
    graded = {g.path.name: g for g in supervised([hog, honest], options, jobs=1, budget=600)}

    result = graded["hog.ipynb"].result
    said = " ".join([*result.errors, *(t.message for t in result.tests)])
    assert "memory" in said and result.score < result.max_score, said
    assert all(t.diagnosis != "grader_error" for t in result.tests), [t.message for t in result.tests]
    assert str(hog) in result.submission or any(str(hog) in e for e in result.errors)
    fine = graded["honest.ipynb"].result
    assert fine.score == fine.max_score == 5, (fine.errors, [t.message for t in fine.tests])
