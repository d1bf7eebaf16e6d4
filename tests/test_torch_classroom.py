"""A PyTorch class graded the way an instructor grades one: conv_bn_torch's samples through
`grader grade --out` (a roster, parallel grading processes with torch sandbox workers, the
SQLite gradebook), then the class report, the review page's scores and overrides, and the
LMS exports, each asserted on the scores the samples declare and on PyTorch's own names
(nn.BatchNorm2d, nn.ReLU, eval()) wherever the instructor or a student reads a mistake.

The class is graded once for the module; the later tests build on the same results folder
in file order (review, then override, then exports), as an instructor's week goes.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from grader.cli import main
from grader.classroom.gradebook import Gradebook

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn_torch" / "samples"
# sample -> (student id, declared score, score per exercise)
CLASS = {
    "correct": ("t001", 23, {"standardize": 5, "batchnorm_forward": 4, "happy_model": 7, "ConvolutionalModel": 7}),
    "relu_before_bn": ("t002", 16, {"happy_model": 0, "ConvolutionalModel": 7}),
    "wrong_num_features": ("t003", 16, {"happy_model": 7, "ConvolutionalModel": 0}),
    "batch_stats_at_eval": ("t004", 20, {"happy_model": 4}),
    "conv_bias_true": ("t005", 23, {"happy_model": 7, "ConvolutionalModel": 7}),
    "template": ("t006", 0, {"standardize": 0, "happy_model": 0}),
}
WRITTEN_POINTS = 5  # two written questions, 3 + 2, scored in review
KERAS_WORDS = ("BatchNormalization", "Conv2D", "Keras", "TensorFlow")


def _md(path: Path) -> str:
    """A feedback.md as a student reads it: Markdown's escapes (`nn\\.BatchNorm2d`) removed."""
    return path.read_text().replace("\\", "")


def _keras_words(text: str) -> list[str]:
    return [w for w in KERAS_WORDS if w in text]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("torch-class")
    submissions = tmp / "submissions"
    submissions.mkdir()
    for sample in CLASS:
        shutil.copy(SAMPLES / f"{sample}.ipynb", submissions / f"{sample}.ipynb")
    roster = tmp / "roster.csv"
    roster.write_text("file_or_folder,student_id,name\n" + "".join(
        f"{sample},{sid},Student {sid}\n" for sample, (sid, _, _) in CLASS.items()))
    out = tmp / "results"
    assert main(["grade", str(submissions), "-a", "conv_bn_torch", "--out", str(out), "--roster", str(roster),
                 "--jobs", "2"]) == 0
    return out


def _grades(results: Path) -> dict[str, dict[str, str]]:
    with open(results / "grades.csv", newline="") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def test_every_student_gets_the_declared_score_per_exercise(results):
    grades = _grades(results)
    assert set(grades) == {sid for sid, _, _ in CLASS.values()}
    for sample, (sid, total, exercises) in CLASS.items():
        row = grades[sid]
        assert (row["status"], float(row["total"])) == ("graded", total), (sample, row)
        assert float(row["max_total"]) == 23 + WRITTEN_POINTS
        for exercise, points in exercises.items():
            assert float(row[exercise]) == points, (sample, exercise, row)
    document = json.loads((results / "grades.json").read_text())
    assert document["assignment"] == "conv_bn_torch"
    assert {s["student_id"]: s["total"] for s in document["students"]} == \
        {sid: total for sid, total, _ in CLASS.values()}


def test_each_student_s_feedback_names_the_pytorch_mistake(results):
    feedback = results / "feedback"
    relu = _md(feedback / "t002" / "feedback.md")
    assert "nn.BatchNorm2d" in relu and "nn.ReLU" in relu
    assert not _keras_words(relu), _keras_words(relu)
    features = _md(feedback / "t003" / "feedback.md")
    assert "nn.BatchNorm2d" in features and "num_features" in features, features
    eval_mode = _md(feedback / "t004" / "feedback.md")
    assert "eval()" in eval_mode and "track_running_stats" in eval_mode, eval_mode
    for sid in ("t002", "t003", "t004"):
        html = (feedback / sid / "feedback.html").read_text()
        assert "nn.BatchNorm2d" in html, sid
        gradescope = json.loads((feedback / sid / "results.json").read_text())
        assert gradescope["score"] == next(total for s, total, _ in CLASS.values() if s == sid)


def test_the_class_report_counts_mistakes_in_pytorch_s_words(results):
    assert main(["report", str(results)]) == 0
    page = (results / "report.html").read_text()
    assert "conv_bn_torch" in page
    assert "nn.ReLU before nn.BatchNorm2d" in page  # relu_before_bn: 1 student
    assert "ReLU before BatchNormalization" not in page and "TensorFlow" not in page
    with Gradebook(results, create=False) as book:
        assert book.meta("framework") == "torch"
        from grader.classroom.report import build_report
        report = build_report(book)
    happy = {m.diagnosis: m.students for m in report.mistakes["happy_model"]}
    assert happy["relu_before_bn"] == ["t002"]
    # Each mistake is counted under its exercise, with the student who made it.
    conv = {m.diagnosis: m.students for m in report.mistakes["ConvolutionalModel"]}
    assert [students for d, students in conv.items() if d.startswith("wrong_params")] == [["t003"]], conv


def test_review_scores_a_written_answer_and_the_grade_follows(results):
    from grader.classroom.decisions import text_sha256
    from grader.classroom.review import Request, Review

    review = Review(results, "ta_kim")
    with Gradebook(results, create=False) as book:
        row = book.row("relu_before_bn.ipynb")
        answer = book.answer(row.submission, "why_bn_after_conv")
    assert answer is not None and "after the ReLU" in answer.text  # the student's own (wrong) answer
    body = json.dumps({"submission": row.submission, "question": "why_bn_after_conv", "points": 1,
                       "comment": "BN goes before the ReLU", "version": answer.sha256 or text_sha256("")}).encode()
    response = review.save_score(body)
    assert response.status == 200, response.body
    grades = _grades(results)
    assert float(grades["t002"]["written:why_bn_after_conv"]) == 1 and float(grades["t002"]["total"]) == 17
    # The page the instructor reads shows the question and the student's feedback in PyTorch's words.
    page = review._page(Request("GET", f"/student?s={row.submission}", {}))
    text = page.body.decode()
    assert page.status == 200 and "Why nn.BatchNorm2d right after nn.Conv2d?" in text
    assert "nn.BatchNorm2d" in text


def test_an_override_reaches_the_grades_and_the_feedback(results, capsys):
    with Gradebook(results, create=False) as book:
        number = next(t.number for t in book.result("batch_stats_at_eval.ipynb").tests
                      if t.exercise == "happy_model" and t.status.value == "failed")
    code = main(["override", str(results), "t004", number, "3", "--reason", "eval() mode was not taught yet",
                 "--grader", "prof_k"])
    assert code == 0, capsys.readouterr().err
    assert float(_grades(results)["t004"]["total"]) == 23
    md = _md(results / "feedback" / "t004" / "feedback.md")
    assert "happy_model · output on random inputs, in eval() and train() modes (score changed by your " \
           "instructor) | 3 / 3" in md


def test_grades_export_for_canvas_moodle_and_a_spreadsheet(results, tmp_path):
    expected = {sid: total for sid, total, _ in CLASS.values()}
    expected.update({"t002": 17, "t004": 23})  # the written score and the override above
    for fmt in ("csv", "moodle", "canvas"):
        out = tmp_path / f"{fmt}.csv"
        assert main(["export", "grades", str(results), "--format", fmt, "--out", str(out)]) == 0, fmt
        text = out.read_text()
        for sid, total in expected.items():
            assert sid in text, (fmt, sid)
        rows = list(csv.reader(text.splitlines()))
        assert "conv_bn_torch" in rows[0][-1] or "(PyTorch)" in rows[0][-1], rows[0]  # the assignment's column
        found = {sid: float(r[-1]) for r in rows[1:] for sid in expected if sid in r}
        assert found == expected, (fmt, rows[0], found)
