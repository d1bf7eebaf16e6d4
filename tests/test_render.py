"""Renderers checked against their formats, and the hidden-test policy checked in all of them.

The results are built by hand so these tests need neither TensorFlow nor a sandbox; the
adversarial ones (a forged "All tests passed", `<script>`, control characters) stand for
what a student's print statements can put into captured output.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from grader.render import (
    is_hidden_from_student, render_html, render_html_fragment, render_markdown, render_text,
    to_coursera, to_gradescope, to_json_line, to_junit, write_coursera, write_gradescope,
)
from grader.render import _common
from grader.render.coursera import FEEDBACK_MAX_BYTES
# Aliased: a module-level name starting with "Test" would be collected by pytest.
from grader.results import Status, SubmissionResult, Table, Visibility
from grader.results import TestResult as TR

SECRET = "expected 0.12345"
FORGED = "All tests passed"
ANSI = re.compile(r"\x1b\[[0-9;]*m")

LAYERS = Table(
    headers=("expected", "found"),
    rows=(("ZeroPadding2D (3, 3)", "ZeroPadding2D (3, 3)"),
          ("Conv2D 32 @ 7x7, stride 1", "Conv2D 32 @ 7x7, stride 1"),
          ("BatchNormalization (channels)", "ReLU"),
          ("ReLU", "BatchNormalization (channels)"),
          ("MaxPooling2D 2x2", "MaxPooling2D 2x2")),
    marked=2,
)
STUDENT_OUTPUT = (f"{FORGED}\n<script>alert('x')</script>\n**bold** [click](http://evil.example)\n"
                  "```\n# heading\n\x1b[2J\x1b[32mfake green\r")


def _passed(name="shape and dtype", exercise="standardize", pts=2.0, **kw) -> TR:
    return TR(name, exercise, pts, pts, Status.PASSED, **kw)


def _hidden(visibility=Visibility.HIDDEN, status=Status.FAILED) -> TR:
    score = 2.0 if status is Status.PASSED else 0.0
    return TR("output on hidden inputs", "convolutional_model", score, 2.0, status,
                      visibility=visibility, message=f"{SECRET} at index 3, found 0.5",
                      hint="the secret hint", output="printed hidden input 42",
                      table=Table(("expected",), (("0.12345",),), marked=0),
                      diagnosis="wrong_value")


def _result(tests, **kw) -> SubmissionResult:
    kw.setdefault("execution_time", 0.93)
    kw.setdefault("isolation", "full")
    return SubmissionResult("/home/student/my_notebook.ipynb", "conv_bn", tests=tests, **kw)


def mixed(visibility=Visibility.HIDDEN) -> SubmissionResult:
    """Every kind of line: pass, failure with hint, table + forged output, not run, hidden."""
    return _result([
        _passed(),
        TR("values on hidden data", "standardize", 0.0, 3.0, Status.FAILED,
                   message="Your X_test_std has mean ≈ 0 and std ≈ 1 per channel, but it should "
                           "not: X_test must be scaled with the mean and standard deviation of "
                           "X_train. Computing statistics on the test set leaks information.",
                   hint="compute mean and std once, from X_train.", diagnosis="test_stats_leak"),
        TR("layer order", "happyModel", 0.0, 4.0, Status.FAILED,
                   message="ReLU comes before BatchNormalization.", table=LAYERS,
                   output=STUDENT_OUTPUT, diagnosis="relu_before_bn",
                   student_traceback='  File "nb", line 3, in happyModel\nValueError: <bad>'),
        TR("output on hidden inputs", "happyModel", 0.0, 3.0, Status.NOT_RUN,
                   message="fix the layer order first"),
        TR("partial", "batchnorm_forward", 1.5, 3.0, Status.FAILED,
                   message="training mode right, inference mode wrong"),
        _hidden(visibility),
    ])


def all_visible_pass_hidden_fails(visibility=Visibility.HIDDEN) -> SubmissionResult:
    return _result([_passed(), _passed("layer graph", "happyModel", 4), _hidden(visibility)])


def all_pass_with_hidden() -> SubmissionResult:
    return _result([_passed(), _hidden(status=Status.PASSED)])


def hidden_not_run() -> SubmissionResult:
    return _result([_passed(), _passed("layer graph", "happyModel", 4)], hidden_tests_run=False)


def all_pass() -> SubmissionResult:
    return _result([_passed(), _passed("layer graph", "happyModel", 4)])


def fatal() -> SubmissionResult:
    return _result([], errors=["my_notebook.ipynb: not a valid notebook (line 3: Expecting value)"],
                   execution_time=0.1)


def nasty() -> SubmissionResult:
    """Characters that break XML, terminals and one-line JSON if passed through raw."""
    bad = "a<b & c>d \"q\" 'q' \x00\x07\x0c\x1b[31m \x85\u2028\u2029 \ud800 \ufffe \u202e end"
    return _result([
        TR(f"name {bad}", "ex<1>", 0.0, 1.0, Status.FAILED, message=bad, hint=bad,
                   output=bad, student_traceback=bad, diagnosis=bad,
                   table=Table((bad, "found"), ((bad, bad),), marked=0)),
        TR("skipped", "ex", 0.0, 1.0, Status.NOT_RUN, message=bad),
        _passed(output=bad),
    ], warnings=[bad], isolation=bad)


STUDENT_RENDERERS = {
    "text": lambda r: render_text(r),
    "text-color": lambda r: render_text(r, color=True),
    "markdown": lambda r: render_markdown(r),
    "html": lambda r: render_html(r),
    "html-fragment": lambda r: render_html_fragment(r, audience="student"),
    "coursera": lambda r: to_coursera(r)["feedback"],
    "gradescope-top-level": lambda r: to_gradescope(r)["output"],
}
INSTRUCTOR_RENDERERS = {
    "text": lambda r: render_text(r, audience="instructor"),
    "markdown": lambda r: render_markdown(r, audience="instructor"),
    "html": lambda r: render_html(r, audience="instructor"),
    "junit": lambda r: to_junit([r]),
    "jsonl": lambda r: json.loads(to_json_line(r))["tests"][-1]["output"],
    "gradescope-per-test": lambda r: to_gradescope(r)["tests"][-1]["output"],
}
HIDING = [Visibility.HIDDEN, Visibility.AFTER_DUE_DATE, Visibility.AFTER_PUBLISHED]


# --- shared helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [(2.0, "2"), (2.5, "2.5"), (13.000000001, "13"),
                                         (1 / 3, "0.33"), (-0.0, "0"), (0.0, "0"), (100, "100")])
def test_scores_have_no_useless_decimals(value, text):
    assert _common.fmt_score(value) == text


def test_only_visible_tests_are_visible_to_students():
    for v in Visibility:
        assert is_hidden_from_student(_hidden(v)) is (v is not Visibility.VISIBLE)


def test_unknown_audience_is_refused_not_treated_as_instructor():
    with pytest.raises(ValueError):
        render_text(mixed(), audience="students")
    with pytest.raises(ValueError):
        render_html(mixed(), audience="teacher")


# --- the hidden-test policy, in every student-facing renderer -------------------------------------

@pytest.mark.parametrize("renderer", STUDENT_RENDERERS)
@pytest.mark.parametrize("visibility", HIDING)
def test_students_never_see_hidden_details(renderer, visibility):
    for result in (mixed(visibility), all_visible_pass_hidden_fails(visibility)):
        out = STUDENT_RENDERERS[renderer](result)
        for leak in ("0.12345", "the secret hint", "printed hidden input", "wrong_value"):
            assert leak not in out.replace("\\", ""), (renderer, leak)
        if renderer != "gradescope-top-level":
            assert "output on hidden inputs" in out  # the title itself is shown


@pytest.mark.parametrize("renderer", INSTRUCTOR_RENDERERS)
def test_instructors_and_gradescope_tests_keep_hidden_details(renderer):
    out = INSTRUCTOR_RENDERERS[renderer](all_visible_pass_hidden_fails())
    assert "0.12345" in out.replace("\\", "")


@pytest.mark.parametrize("renderer", STUDENT_RENDERERS)
@pytest.mark.parametrize("make", [all_visible_pass_hidden_fails, all_pass_with_hidden, hidden_not_run])
def test_all_tests_passed_is_never_claimed_over_hidden_tests(renderer, make):
    out = ANSI.sub("", STUDENT_RENDERERS[renderer](make()))
    assert FORGED not in out
    if renderer != "gradescope-top-level":
        assert "All visible tests passed" in out.replace("\\", "")


@pytest.mark.parametrize("renderer", STUDENT_RENDERERS)
def test_all_tests_passed_when_true(renderer):
    assert FORGED in STUDENT_RENDERERS[renderer](all_pass())


def test_instructor_verdicts_are_about_all_tests():
    assert FORGED not in render_text(all_visible_pass_hidden_fails(), audience="instructor")
    assert "All tests passed" in render_text(all_pass_with_hidden(), audience="instructor")
    text = render_text(hidden_not_run(), audience="instructor")
    assert FORGED not in text and "hidden tests were not run" in text


def test_footer_when_hidden_tests_were_not_run():
    text = render_text(hidden_not_run())
    assert text.rstrip().endswith(_common.HIDDEN_NOT_RUN)
    assert "Hidden tests also count toward your final grade; they are not shown here." in text
    assert "visible tests: 6 / 6 points" in text.splitlines()[0]


def test_student_header_counts_visible_tests_only():
    r = mixed()
    assert r.score == 3.5 and r.max_score == 17
    student = render_text(r).splitlines()[0]
    instructor = render_text(r, audience="instructor").splitlines()[0]
    assert "visible tests: 3.5 / 15 points" in student
    assert " 3.5 / 17 points" in instructor and "visible" not in instructor


# --- text ---------------------------------------------------------------------------------------

def test_text_layout():
    lines = render_text(mixed()).splitlines()
    assert lines[0] == ("conv_bn · my_notebook.ipynb · visible tests: 3.5 / 15 points · "
                        "graded in 0.9 s (isolation: full)")
    by_start = {l.split("  ")[0]: l for l in lines if l and l[0] in "✔✘–•"}
    assert by_start["✔ standardize · shape and dtype"].endswith("2 / 2")
    assert by_start["✘ standardize · values on hidden data"].endswith("0 / 3")
    assert by_start["✘ batchnorm_forward · partial"].endswith("1.5 / 3")
    assert by_start["– happyModel · output on hidden inputs"].endswith(
        "0 / 3   (not run: fix the layer order first)")
    assert by_start["• convolutional_model · output on hidden inputs"].endswith("? / 2")
    # scores share one column
    assert len({l.index(" / ") for l in by_start.values()}) == 1
    assert "    Fix: compute mean and std once, from X_train." in lines
    i = lines.index("    " + _common.HIDDEN_NOTE)
    assert lines[i - 1].startswith("• convolutional_model")


def test_text_table_has_numbered_columns_and_marked_row():
    lines = render_text(mixed()).splitlines()
    header = next(l for l in lines if l.strip().startswith("#"))
    assert re.fullmatch(r" {6}# {2}expected {2,}found", header)
    marked = [l for l in lines if "→" in l]
    assert len(marked) == 1
    assert marked[0].startswith("    → 3  BatchNormalization (channels)  ReLU")
    assert marked[0].endswith("← first difference")
    row4 = next(l for l in lines if l.startswith("      4  "))
    assert row4.index("BatchNormalization") == marked[0].index("ReLU")


def test_text_student_output_is_quoted_and_defused():
    text = render_text(mixed())
    lines = text.splitlines()
    assert "    " + _common.OUTPUT_LABEL in lines
    assert "    " + _common.TRACEBACK_LABEL in lines
    for line in lines:
        if FORGED in line or "fake green" in line or "<script>" in line:
            assert line.startswith("    │ "), line
    assert "\x1b" not in text and "\r" not in text  # escapes shown, not executed
    assert "\\x1b[2J" in text


def test_text_color_reads_the_same_without_colour():
    for r in (mixed(), all_pass(), fatal(), hidden_not_run(), nasty()):
        for audience in ("student", "instructor"):
            plain = render_text(r, audience=audience)
            colored = render_text(r, color=True, audience=audience)
            assert colored != plain and "\x1b[" in colored
            assert ANSI.sub("", colored) == plain


def test_text_student_text_cannot_start_lines_of_its_own():
    for audience in ("student", "instructor"):
        text = render_text(nasty(), audience=audience)
        # no line break but "\n" survives, whatever splits the lines
        assert len(text.splitlines()) == text.count("\n")
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202e]", text)
        assert "\\u2028" in text and "\\x1b[31m" in text  # shown, not acted on


def test_text_wraps_prose_at_100_columns():
    long = " ".join(["word"] * 200)
    text = render_text(_result([TR("t", "e", 0, 1, Status.FAILED, message=long, hint=long)]))
    assert max(len(l) for l in text.splitlines()) <= 100
    assert text.count("word") == 400


def test_text_fatal_errors_are_prominent():
    text = render_text(fatal())
    assert ("could not be graded: my_notebook.ipynb: not a valid notebook "
            "(line 3: Expecting value)") in text.splitlines()
    assert "0 points (not graded)" in text.splitlines()[0]
    assert FORGED not in text


def test_text_warnings_section():
    r = all_pass()
    r.warnings += ["the cell starting `print 'x'` skipped: it does not parse", ""]
    text = render_text(r)
    assert "Warnings:\n  ! the cell starting `print 'x'` skipped: it does not parse\n" in text


# --- markdown -----------------------------------------------------------------------------------

def _outside_fences(md: str) -> str:
    out, fence = [], None
    for line in md.splitlines():
        m = re.match(r"^(`{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and line.rstrip() == fence:
            fence = None
        elif fence is None:
            out.append(line)
    assert fence is None, "unclosed fence"
    return "\n".join(out)


def test_markdown_student_text_is_fenced_and_the_rest_escaped():
    r = mixed()
    r.tests[1].message += " <img src=x onerror=alert(1)> [x](http://evil) *emph* | pipe"
    md = render_markdown(r)
    outside = _outside_fences(md)
    assert FORGED not in outside
    assert not re.search(r"(?<!\\)[<>]", outside)  # every angle bracket escaped
    assert "](http" not in outside and "http://" not in outside
    # the student output contains ``` so the fence must be longer
    assert "````text" in md
    assert "<script>alert('x')</script>" in md  # verbatim, but inside the fence


def test_markdown_table_marks_first_difference_in_bold():
    md = render_markdown(mixed())
    rows = [l for l in md.splitlines() if l.startswith("| ")]
    marked = next(l for l in rows if "first difference" in l)
    assert "**→ 3**" in marked and "**ReLU**" in marked
    assert any(re.match(r"\| \\# \| expected \| found \|", l) for l in rows)
    # every table row has the same number of cells
    table = [l for l in rows if "Padding" in l or "→" in l]
    assert len({l.count(" | ") for l in table}) == 1


def test_markdown_layout():
    md = render_markdown(mixed())
    assert md.startswith("## conv\\_bn · my\\_notebook\\.ipynb\n")
    assert "### ✘ standardize · values on hidden data — 0 / 3" in md
    assert "**Fix:** compute mean and std once, from X\\_train\\." in md
    assert "not run: fix the layer order first" in md
    assert "**could not be graded:**" in render_markdown(fatal())


# --- HTML ---------------------------------------------------------------------------------------

class _Checker(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.attrs, self.problems = [], [], [], []
        self.pre_text, self.other_text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_data(self, data):
        (self.pre_text if "pre" in self.stack else self.other_text).append(data)


def _check_html(doc: str) -> _Checker:
    p = _Checker()
    p.feed(doc)
    p.close()
    assert not p.problems and not p.stack, (p.problems, p.stack)
    assert "script" not in p.tags and "iframe" not in p.tags and "img" not in p.tags
    for name, value in p.attrs:
        assert name not in ("src", "href", "action") and not name.startswith("on"), name
    css = "".join(re.findall(r"<style>(.*?)</style>", doc, re.S))
    assert css and not re.search(r"url\(|@import|https?:|//", css)
    return p


@pytest.mark.parametrize("audience", ["student", "instructor"])
def test_html_page_is_self_contained_and_escaped(audience):
    for r in (mixed(), fatal(), nasty(), all_pass()):
        doc = render_html(r, audience=audience)
        assert doc.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in doc
        p = _check_html(doc)
        assert "<script>" not in doc
        if r.tests and r.tests[2:3] and r.tests[2].output == STUDENT_OUTPUT:
            assert "&lt;script&gt;" in doc
            # the forged verdict only appears inside the quoted student output
            assert any(FORGED in t for t in p.pre_text)
            assert not any(FORGED in t for t in p.other_text)


def test_html_fragment_is_one_div():
    frag = render_html_fragment(mixed(), audience="student")
    assert frag.startswith('<div class="grader-feedback">') and frag.endswith("</div>")
    _check_html(frag)
    assert "<html" not in frag


def test_html_content():
    doc = render_html(mixed())
    assert 'class="fatal"' in render_html(fatal())
    assert '<tr class="marked"><td class="num">→ 3</td>' in doc
    assert "← first difference" in doc
    assert "(not run: fix the layer order first)" in doc
    assert _common.HIDDEN_NOTE in doc


# --- Gradescope ---------------------------------------------------------------------------------

VIS = {"hidden", "after_due_date", "after_published", "visible"}


def _check_gradescope(d):
    assert isinstance(d["score"], float)
    assert isinstance(d["execution_time"], int)
    assert isinstance(d["output"], str) and d["output_format"] == "md"
    assert d["visibility"] in VIS and d["stdout_visibility"] in VIS
    assert isinstance(d["tests"], list)
    for t in d["tests"]:
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
        assert t["status"] in ("passed", "failed")
        assert isinstance(t["name"], str) and isinstance(t["number"], str)
        assert isinstance(t["output"], str) and t["output_format"] == "md"
        assert isinstance(t["tags"], list) and t["visibility"] in VIS
    json.loads(json.dumps(d))


def test_gradescope_results_json():
    r = mixed(Visibility.AFTER_PUBLISHED)
    d = to_gradescope(r, stdout_visibility="visible")
    _check_gradescope(d)
    assert d["score"] == 3.5 and d["execution_time"] == 1 and d["stdout_visibility"] == "visible"
    assert [t["status"] for t in d["tests"]] == ["passed", "failed", "failed", "failed", "failed", "failed"]
    assert [t["number"] for t in d["tests"]] == ["1", "2", "3", "4", "5", "6"]
    assert d["tests"][0]["name"] == "standardize · shape and dtype"
    assert d["tests"][0]["tags"] == ["standardize"]
    assert d["tests"][-1]["visibility"] == "after_published"
    assert d["tests"][1]["extra_data"] == {"diagnosis": "test_stats_leak"}
    assert "0\\.12345" in d["tests"][-1]["output"]
    assert "0.12345" not in d["output"].replace("\\", "")


def test_gradescope_fatal_submission_gets_zero_and_one_failed_test():
    r = fatal()
    r.tests.append(_passed())  # whatever ran before the fatal problem does not count
    d = to_gradescope(r)
    _check_gradescope(d)
    assert d["score"] == 0.0 and len(d["tests"]) == 1
    assert d["tests"][0]["status"] == "failed" and "not a valid notebook" in d["tests"][0]["output"]
    assert "not a valid notebook" in d["output"]


def test_gradescope_number_and_validation(tmp_path):
    r = all_pass()
    r.tests[0].number = "3.1"
    assert to_gradescope(r)["tests"][0]["number"] == "3.1"
    with pytest.raises(ValueError):
        to_gradescope(r, stdout_visibility="public")
    path = write_gradescope(nasty(), tmp_path / "results" / "results.json")
    _check_gradescope(json.loads(path.read_text(encoding="utf-8")))


# --- JUnit --------------------------------------------------------------------------------------

def test_junit_counts_and_structure():
    results = [mixed(), fatal(), all_pass(), nasty()]
    root = ET.fromstring(to_junit(results, suite_name="conv_bn batch").encode("utf-8"))
    assert root.tag == "testsuites" and root.get("name") == "conv_bn batch"
    suites = root.findall("testsuite")
    assert len(suites) == 4
    for r, s in zip(results, suites):
        cases = s.findall("testcase")
        assert int(s.get("tests")) == len(cases)
        assert int(s.get("failures")) == sum(t.status is Status.FAILED for t in r.tests)
        assert int(s.get("skipped")) == sum(t.status is Status.NOT_RUN for t in r.tests)
        assert int(s.get("errors")) == (1 if r.errors else 0)
        assert len(s.findall("testcase/failure")) == int(s.get("failures"))
        assert len(s.findall("testcase/skipped")) == int(s.get("skipped"))
        props = {p.get("name"): p.get("value") for p in s.iter("property")}
        assert float(props["score"]) == _common.final_score(r)
        assert float(props["max_score"]) == r.max_score
        float(s.get("time"))
    for key in ("tests", "failures", "errors", "skipped"):
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites)
    s = suites[0]
    assert s.get("name") == "/home/student/my_notebook.ipynb"
    layer = s.find("testcase[@name='layer order']")
    assert layer.get("classname") == "conv_bn.happyModel"
    failure = layer.find("failure")
    assert failure.get("type") == "relu_before_bn"
    assert "first difference" in failure.text and "<script>" in failure.text
    assert s.find("testcase[@name='partial']/failure").get("type") == "CheckFailed"
    assert s.find("testcase[@name='output on hidden inputs']/skipped").get("message") == \
        "not run: fix the layer order first"
    err = suites[1].find("testcase/error")
    assert "not a valid notebook" in err.get("message") and "not a valid notebook" in err.text


def test_junit_is_well_formed_with_hostile_text():
    doc = to_junit([nasty()])
    doc.encode("utf-8")  # no lone surrogates left
    root = ET.fromstring(doc.encode("utf-8"))
    failure = root.find(".//failure")
    assert "a<b & c>d" in failure.get("message") and "\\x1b[31m" in failure.text
    assert "\ud800" not in doc and "\x00" not in doc and "\x1b" not in doc


# --- Coursera -----------------------------------------------------------------------------------

def test_coursera_feedback():
    for r in (mixed(), fatal(), all_pass(), hidden_not_run(), _result([]), nasty()):
        d = to_coursera(r)
        assert set(d) == {"fractionalScore", "feedback"}
        assert isinstance(d["fractionalScore"], float) and 0.0 <= d["fractionalScore"] <= 1.0
        assert "\x1b" not in d["feedback"]
    assert to_coursera(all_pass())["fractionalScore"] == 1.0
    assert to_coursera(mixed())["fractionalScore"] == pytest.approx(3.5 / 17)
    assert to_coursera(fatal())["fractionalScore"] == 0.0
    assert to_coursera(_result([]))["fractionalScore"] == 0.0
    assert to_coursera(mixed())["feedback"] == render_text(mixed())


def test_coursera_parts():
    r = mixed()
    parts = {"aB3dE": ["happyModel"], "Xy9Qz": ["standardize", "batchnorm_forward"]}
    happy = to_coursera(r, part_id="aB3dE", parts=parts)
    assert happy["fractionalScore"] == 0.0 and "standardize" not in happy["feedback"]
    other = to_coursera(r, part_id="Xy9Qz", parts=parts)
    assert other["fractionalScore"] == pytest.approx(3.5 / 8)
    unknown = to_coursera(r, part_id="nope", parts=parts)
    assert unknown["fractionalScore"] == 0.0 and "'nope'" in unknown["feedback"]
    # without a mapping the part id names the exercise
    assert to_coursera(r, part_id="standardize")["fractionalScore"] == pytest.approx(2 / 5)
    # a single-exercise notebook is the part, whatever it is called
    single = _result([_passed(), _passed("dtype")])
    assert to_coursera(single, part_id="aB3dE")["fractionalScore"] == 1.0


def test_coursera_feedback_is_capped(tmp_path):
    r = all_pass()
    r.tests.append(TR("big", "e", 0, 1, Status.FAILED, message="é" * 300_000))
    d = to_coursera(r)
    assert len(d["feedback"].encode("utf-8")) <= FEEDBACK_MAX_BYTES
    assert "feedback truncated" in d["feedback"]
    path = write_coursera(r, tmp_path / "shared" / "feedback.json", part_id="e")
    assert json.loads(path.read_text())["fractionalScore"] == 0.0


# --- JSON lines ---------------------------------------------------------------------------------

def test_json_line_contract():
    for r in (mixed(), fatal(), nasty(), all_pass()):
        line = to_json_line(r)
        assert len(line.splitlines()) == 1 and "\n" not in line
        d = json.loads(line)
        assert {"submission", "score", "max_score", "execution_time", "tests", "errors"} <= set(d)
        assert d["submission"] == r.submission and d["errors"] == r.errors
        assert d["score"] == _common.final_score(r) and d["max_score"] == r.max_score
        for t, src in zip(d["tests"], r.tests):
            assert {"name", "exercise", "score", "max_score", "status", "output"} <= set(t)
            assert t["status"] in ("passed", "failed") and t["name"] == src.name
    d = json.loads(to_json_line(mixed()))
    assert [t["status"] for t in d["tests"]][3] == "failed"  # NOT_RUN
    layer = d["tests"][2]["output"]
    assert layer.startswith("ReLU comes before BatchNormalization.\n")
    assert "→ 3  BatchNormalization (channels)  ReLU" in layer
    assert "Fix: compute mean and std once" in d["tests"][1]["output"]
    assert d["tests"][3]["output"] == "not run: fix the layer order first"
    assert SECRET in d["tests"][-1]["output"] and d["tests"][-1]["visibility"] == "hidden"
    assert d["tests"][-1]["diagnosis"] == "wrong_value"


# --- a passing test's teaching notes, in every format ----------------------------------------------

NOTE = ("nn.Conv2d(..., bias=True) before nn.BatchNorm2d: accepted; the batch norm subtracts the mean, so the "
        "convolution's bias has no effect — `bias=False` saves parameters.")


def noted(visibility=Visibility.VISIBLE) -> SubmissionResult:
    return _result([_passed(), _passed("layer order", "happy_model", 4.0, notes=(NOTE,), visibility=visibility)])


def _unescaped(text: str) -> str:
    return text.replace("\\", "").replace("&#x27;", "'").replace("&#x60;", "`")


NOTE_RENDERERS = {
    **{k: v for k, v in STUDENT_RENDERERS.items() if k != "gradescope-top-level"},
    **INSTRUCTOR_RENDERERS,
}


@pytest.mark.parametrize("renderer", NOTE_RENDERERS)
def test_a_passing_tests_note_is_shown_in_every_format(renderer):
    out = _unescaped(NOTE_RENDERERS[renderer](noted()))
    assert "Note:" in out and " ".join(NOTE.split()) in " ".join(out.split()), out


@pytest.mark.parametrize("renderer", [k for k in STUDENT_RENDERERS if k != "gradescope-top-level"])
@pytest.mark.parametrize("visibility", HIDING)
def test_a_hidden_tests_note_stays_hidden_from_students(renderer, visibility):
    out = _unescaped(STUDENT_RENDERERS[renderer](noted(visibility)))
    assert "bias=True" not in out and "Note:" not in out, out
    assert "bias=True" in _unescaped(INSTRUCTOR_RENDERERS["text"](noted(visibility)))


def test_text_shows_the_note_under_a_passed_test_and_still_says_all_passed():
    lines = render_text(noted()).splitlines()
    at = next(i for i, line in enumerate(lines) if "happy_model · layer order" in line)
    assert lines[at].startswith("✔") and lines[at].endswith("4 / 4")
    assert lines[at + 1].startswith("    Note: nn.Conv2d(..., bias=True) before nn.BatchNorm2d: accepted;")
    assert all(len(line) <= 100 for line in lines)
    assert lines[-1] == "All tests passed."


def test_junit_puts_a_passed_tests_note_in_its_system_out():
    root = ET.fromstring(to_junit([noted()]).split("\n", 1)[1])
    case = next(c for c in root.iter("testcase") if c.get("name") == "layer order")
    assert case.find("failure") is None
    assert case.find("system-out").text == f"Note: {NOTE}"


def test_gradescope_and_json_carry_the_note_with_the_test():
    tests = to_gradescope(noted())["tests"]
    assert NOTE.split(":")[0] in _unescaped(tests[1]["output"]) and tests[0]["output"] == ""
    line = json.loads(to_json_line(noted()))
    assert line["tests"][1]["output"] == f"Note: {NOTE}"


def test_notes_survive_the_round_trip_through_a_dict():
    from grader.results import submission_result_from_dict

    back = submission_result_from_dict(json.loads(json.dumps(noted().to_dict())))
    assert back.tests[1].notes == (NOTE,) and back.tests[0].notes == ()


def test_note_is_collected_only_inside_a_collector():
    from grader.results import collecting_notes, note

    note("dropped: nobody is collecting")
    with collecting_notes() as notes:
        note(NOTE)
        note(NOTE)  # the same note twice is one note
        note("  ")
    assert notes == [NOTE]
