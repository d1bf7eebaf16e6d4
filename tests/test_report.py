"""The class report: code normalization and clustering, mistake counts, a self-contained
page, and that page in a real browser (headless Chromium over the DevTools protocol):
it loads without console errors and its plots decode as images.

The gradebook here is filled by hand (a class of 30 with known mistakes and known
copies), so these tests need neither TensorFlow nor a sandbox.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from browser import Browser
from grader.classroom.batch import Graded
from grader.cli import main
from grader.classroom.gradebook import Gradebook
from grader.classroom.report import (build_report, cluster_code, normalize_source, phrase, similarity,
                           tokens, write_report)
from grader.results import Status, SubmissionResult
from grader.results import TestResult as TR

# ---------------------------------------------------------------- normalization

ORIGINAL = '''
def standardize(X_train, X_test):
    """Per-channel statistics from X_train."""
    axes = tuple(range(X_train.ndim - 1))   # all but channels
    mean = X_train.mean(axis=axes)
    std = X_train.std(axis=axes)
    return ((X_train - mean) / std).astype(np.float32), ((X_test - mean) / std).astype(np.float32)
'''

DISGUISED = '''
def standardize(a,   b):
    # my own work!!!
    ax = tuple(range(a.ndim - 1))

    m = a.mean(axis = ax)
    """commented-out idea"""
    s = a.std(axis=ax)
    return ((a - m) / s).astype(np.float32), ((b - m) / s).astype(np.float32)
'''


def test_comments_docstrings_layout_and_local_names_do_not_count():
    assert normalize_source(ORIGINAL) == normalize_source(DISGUISED)
    normalized = normalize_source(ORIGINAL)
    assert "def standardize(v0, v1):" in normalized and "np.float32" in normalized
    assert "axis=v2" in normalized  # keyword names and attributes are kept, locals renamed
    assert "#" not in normalized and '"""' not in normalized


def test_what_the_code_does_still_counts():
    other_global = ORIGINAL.replace("np.float32", "np.float64")
    assert normalize_source(other_global) != normalize_source(ORIGINAL)
    leak = ORIGINAL.replace("((X_test - mean) / std)", "((X_test - X_test.mean()) / X_test.std())")
    assert normalize_source(leak) != normalize_source(ORIGINAL)
    assert 0.8 < similarity(tokens(normalize_source(leak)), tokens(normalize_source(ORIGINAL))) < 1.0


def test_unparsable_source_is_compared_as_collapsed_text():
    assert normalize_source("def f(:\n   pass") == "def f(: pass"


def test_nested_functions_imports_and_exceptions_are_renamed_consistently():
    a = normalize_source("def f(x):\n    import numpy as q\n    def g(y):\n        return q.abs(y) + x\n"
                         "    try:\n        return g(x)\n    except ValueError as err:\n        raise err\n")
    b = normalize_source("def f(z):\n    import numpy as w\n    def h(k):\n        return w.abs(k) + z\n"
                         "    try:\n        return h(z)\n    except ValueError as e:\n        raise e\n")
    assert a == b and "ValueError" in a


# ---------------------------------------------------------------- clustering

MODEL = '''
def happyModel():
    model = tf.keras.Sequential([tf.keras.Input(shape=(64, 64, 3)), tfl.ZeroPadding2D(padding=3),
        tfl.Conv2D(32, 7, strides=1), tfl.BatchNormalization(axis=3), tfl.ReLU(), tfl.MaxPooling2D(),
        tfl.Flatten(), tfl.Dense(1, activation="sigmoid")])
    return model
'''
SWAPPED = MODEL.replace("tfl.BatchNormalization(axis=3), tfl.ReLU()", "tfl.ReLU(), tfl.BatchNormalization(axis=3)")
DIFFERENT = '''
def happyModel():
    inputs = tf.keras.Input(shape=(64, 64, 3))
    x = tfl.Conv2D(16, 3, padding="same")(inputs)
    for _ in range(3):
        x = tfl.Conv2D(16, 3, padding="same", activation="relu")(x)
    outputs = tfl.Dense(1, activation="sigmoid")(tfl.GlobalAveragePooling2D()(x))
    return tf.keras.Model(inputs, outputs)
'''


def test_identical_and_near_identical_code_cluster_and_the_rest_does_not():
    entries = [("ann", "ann.ipynb", normalize_source(MODEL)),
               ("ben", "ben.ipynb", normalize_source(MODEL.replace("model", "m"))),
               ("cat", "cat.ipynb", normalize_source(SWAPPED)),
               ("dan", "dan.ipynb", normalize_source(DIFFERENT)),
               ("eve", "eve.ipynb", normalize_source("def happyModel():\n    return None")),
               ("fay", "fay.ipynb", normalize_source("def happyModel():\n    return None"))]
    clusters = cluster_code(entries, threshold=0.9, exercise="happyModel")
    assert len(clusters) == 1  # "return None" is too short to mean anything
    c = clusters[0]
    assert [s for s, _ in c.members] == ["ann", "ben", "cat"]
    assert not c.identical and c.variants == 2 and 0.9 <= c.similarity < 1.0  # order matters
    assert c.code == normalize_source(MODEL)
    strict = cluster_code(entries, threshold=0.999, exercise="happyModel")
    assert [([s for s, _ in c.members], c.identical) for c in strict] == [(["ann", "ben"], True)]


def test_a_cluster_that_is_the_reference_says_so():
    ref = normalize_source(MODEL)
    entries = [("ann", "a", ref), ("ben", "b", ref), ("cat", "c", normalize_source(SWAPPED)),
               ("dan", "d", normalize_source(SWAPPED))]
    labels = {tuple(s for s, _ in c.members): c.reference for c in cluster_code(entries, threshold=0.999,
                                                                                   reference=ref)}
    assert labels == {("ann", "ben"): "identical", ("cat", "dan"): ""}
    near = cluster_code(entries[2:], threshold=0.9, reference=ref)
    assert [c.reference for c in near] == ["near"]


def test_every_diagnosis_has_words():
    assert phrase("relu_before_bn") == "ReLU before BatchNormalization"
    assert phrase("wrong_params:Conv2D") == "wrong settings of a Conv2D layer"
    assert phrase("something_new") == "something new"


# ---------------------------------------------------------------- a class, by hand

class FakeAssignment:
    name = "conv_bn"
    title = "Input standardization & <BatchNormalization>"
    root = Path("/nowhere")
    reference = Path(__file__).resolve().parent.parent / "reference" / "conv_bn.py"
    exercises = ("standardize", "happyModel")
    total_points = None
    fingerprint = "f" * 16


def _class_gradebook(folder: Path, n: int = 30) -> Gradebook:
    """30 students: 23 put ReLU before BatchNormalization (ten of them copied one notebook
    with renamed variables, thirteen changed a little more), 4 leak test statistics, one
    notebook is unreadable, and one student's id tries to inject markup."""
    book = Gradebook(folder)
    book.bind(FakeAssignment())
    run = book.start_run(fingerprint="f" * 16, command="test", backend="local", found=n, to_grade=n)
    for i in range(n):
        student = f"s{i:02d}" if i != 7 else "<script>alert(1)</script>"
        key = f"{student}.ipynb"
        if i == 29:
            result = SubmissionResult(key, "conv_bn", errors=[f"{key}: ends in the middle of the JSON"])
            code = {}
        else:
            relu_first = i < 23
            leak = 23 <= i < 27
            tests = [
                TR("values", "standardize", 0.0 if leak else 3.0, 3.0, Status.FAILED if leak else Status.PASSED,
                   diagnosis="test_stats_leak" if leak else ""),
                TR("layer order", "happyModel", 0.0 if relu_first else 4.0, 4.0,
                   Status.FAILED if relu_first else Status.PASSED, diagnosis="relu_before_bn" if relu_first else ""),
                TR("outputs", "happyModel", 0.0 if relu_first else 3.0, 3.0,
                   Status.NOT_RUN if relu_first else Status.PASSED),
            ]
            result = SubmissionResult(key, "conv_bn", tests=tests, execution_time=0.4 + i / 10, isolation="full")
            if i < 10:
                source = SWAPPED.replace("model", f"net{i}")  # the copied notebook
            elif relu_first:
                source = SWAPPED + f"\n# student {i}\n" + "\n" * (i % 3)
                source = source.replace("strides=1", f"strides=1, name='c{i}'")  # their own touch
            else:
                source = DIFFERENT.replace("16", str(8 + i))
            code = {"happyModel": {"source": source, "normalized": normalize_source(source)},
                    "standardize": {"source": ORIGINAL, "normalized": normalize_source(ORIGINAL)}}
        graded = Graded(Path(key), result, sha256=f"{i:064x}", code=code, host=f"host{i % 2}:1", wall=1.0 + i / 10,
                        fingerprint="f" * 16, order=1 if i < 2 else i)
        book.record(submission=key, student_key=student, graded=graded, run_id=run, mtime=1.0, fingerprint="f" * 16)
    return book


@pytest.fixture
def class_results(tmp_path):
    folder = tmp_path / "results"
    _class_gradebook(folder).close()
    return folder


def test_report_counts_students_per_mistake(class_results):
    with Gradebook(class_results, create=False) as book:
        report = build_report(book, threshold=0.9)
    mistakes = {ex: [(m.phrase, len(m.students)) for m in found] for ex, found in report.mistakes.items()}
    assert mistakes == {"standardize": [("X_test standardized with its own statistics (test-set leak)", 4)],
                        "happyModel": [("ReLU before BatchNormalization", 23)]}
    rates = {(r.exercise, r.name): (r.passed, r.total) for r in report.rates}
    assert rates[("happyModel", "layer order")] == (6, 29) and rates[("standardize", "values")] == (25, 29)
    times = [row.execution_time for _, row in report.slowest]
    assert len(times) == 10 and times == sorted(times, reverse=True) and times[0] == pytest.approx(3.2)
    # the ten copies and the thirteen with a touch of their own; the six others alike
    relu_first, others = report.clusters["happyModel"]
    assert (len(relu_first.members), relu_first.identical, relu_first.largest) == (23, False, 10)
    assert relu_first.code == normalize_source(SWAPPED.replace("model", "net0"))
    assert (len(others.members), others.identical) == (6, False)
    # everyone wrote the same standardize: one identical cluster of all graded students
    assert [len(c.members) for c in report.clusters["standardize"]] == [29]


def test_report_page_is_self_contained_and_escapes_student_text(class_results, capsys):
    assert main(["report", str(class_results)]) == 0
    page = class_results / "report.html"
    assert capsys.readouterr().out.strip() == str(page)
    html = page.read_text()
    assert "ReLU before BatchNormalization</b>: 23 students" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;BatchNormalization&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from anywhere
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == 2
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert "ends in the middle of the JSON" in html

    class Checker(HTMLParser):  # well-formed enough that every tag opened is closed
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta", "img", "br", "link"):
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
            self.stack.pop()
    checker = Checker()
    checker.feed(html)
    assert checker.stack == []


# ---------------------------------------------------------------- in a browser

def test_report_renders_in_a_browser_with_its_plots_and_no_console_errors(class_results, tmp_path, chromium):
    binary = chromium  # conftest: skips naming how to install it, or fails under CI=true
    report = write_report(class_results)
    with Browser(binary, tmp_path / "profile", width=1200) as browser:
        page = browser.new_page()
        page.goto(report.resolve().as_uri())
        images = page.evaluate(
            "Promise.all(Array.from(document.images).map(i => i.decode().then("
            "() => [i.alt, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width],"
            "() => [i.alt, 0, 0, 0])))", await_promise=True)
        text = page.evaluate("document.body.innerText")
        size = page.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = page.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 6000), "scale": 1}})
        time.sleep(0.2)
        page.evaluate("1")  # flush late events
        problems = page.problems()
    screenshot = tmp_path / "report.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    if os.environ.get("GRADER_REPORT_SCREENSHOT"):
        shutil.copy(screenshot, os.environ["GRADER_REPORT_SCREENSHOT"])
    assert problems == []
    assert [alt for alt, *_ in images] == ["Histogram of total scores", "Pass rate per test"]
    for alt, width, height, shown in images:
        assert width > 300 and height > 100 and shown > 300, (alt, width, height, shown)
    assert "ReLU before BatchNormalization: 23 students" in text
    assert "Identical or near-identical code" in text and "23 submissions, near-identical" in text
    assert "10 of them identical" in text
    assert screenshot.stat().st_size > 20_000
