"""Written answers: found as text (by tag, or below their question when students broke the
tag), never executed, never reaching students as a model answer, and carried through a real
`grader grade` run into the gradebook, grades.csv and each student's feedback.

Extraction is checked on real notebooks (the conv_bn release, then edited as students edit
it); growth is checked by counting work, as in test_notebook_bounds, never by timing.
"""
from __future__ import annotations

import copy
import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

from grader.assignment.spec import load_assignment
from grader.authoring.assign import MasterError, answer_question, make_template, read_master
from grader.authoring.validate import written_problems
from grader.classroom.gradebook import Gradebook
from grader.classroom.outputs import export_grades
from grader.kit.export import _spec_text, leaks
from grader.notebook import load_notebook
from grader.notebook.answers import (
    HEADING, MAX_ANSWER_CHARS, TAG, answer_guide, extract_answers,
)
from grader.assignment.written import Question

REPO = Path(__file__).resolve().parent.parent
CONV_BN = REPO / "assignments" / "conv_bn"
RELEASE = CONV_BN / "release" / "conv_bn.ipynb"
MASTER = CONV_BN / "source" / "conv_bn.py"

sys.path.insert(0, str(REPO / "bench"))
from extraction_bench import count_events as events  # noqa: E402

WHY, STD = "why_bn_after_conv", "standardize_inputs"
ANSWER = "BN keeps the next layer's input distribution stable, so one learning rate suits it."


@pytest.fixture(scope="module")
def conv_bn():
    return load_assignment("conv_bn")


@pytest.fixture(scope="module")
def release():
    return nbformat.read(RELEASE, as_version=4)


@pytest.fixture(scope="module")
def guide(conv_bn, release):
    return answer_guide(conv_bn.questions, release)


def _answer_index(nb, question: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if answer_question(c) == question)


def _student(release, question: str = WHY, text: str = ANSWER, *, tags=None):
    """The release with one answer written, its tags replaced by `tags` when given."""
    nb = copy.deepcopy(release)
    cell = nb.cells[_answer_index(nb, question)]
    cell.source = text
    if tags is not None:
        cell.metadata["tags"] = tags
    return nb


# ---------------------------------------------------------------- by tag

@pytest.mark.parametrize("tag", ["written:why_bn_after_conv", "Written: Why_BN_After_Conv ", " WRITTEN : why_bn_after_conv"])
def test_an_answer_is_found_by_its_tag_in_any_case_and_spacing(conv_bn, release, guide, tag):
    nb = _student(release, tags=["other", tag])
    found = extract_answers(nb, conv_bn.questions, guide=guide)
    answer = found[WHY]
    assert (answer.text, answer.how, answer.warning) == (ANSWER, TAG, "")
    assert answer.cell == _answer_index(nb, WHY) + 1
    assert answer.to_reply() == {"text": ANSWER, "cell": answer.cell}
    assert found[STD].text == ""  # still the placeholder: found, but empty


def test_the_untouched_template_has_empty_answers_and_the_placeholder_is_stripped(conv_bn, release, guide):
    assert {q: a.text for q, a in extract_answers(release, conv_bn.questions, guide=guide).items()} == {WHY: "", STD: ""}
    emphasized = _student(release, text="**YOUR ANSWER HERE**\n\n   ")
    assert extract_answers(emphasized, conv_bn.questions, guide=guide)[WHY].text == ""
    kept_above = _student(release, text="YOUR ANSWER HERE\n" + ANSWER)
    assert extract_answers(kept_above, conv_bn.questions, guide=guide)[WHY].text == ANSWER


def test_a_split_answer_keeps_both_halves_and_stops_at_the_next_question(conv_bn, release, guide):
    nb = _student(release, text="First half.")
    nb.cells.insert(_answer_index(nb, WHY) + 1, new_markdown_cell("Second half."))
    found = extract_answers(nb, conv_bn.questions, guide=guide)
    assert found[WHY].text == "First half.\n\nSecond half."
    assert "Question 2" not in found[WHY].text and found[STD].text == ""


# ---------------------------------------------------------------- without the tag

def test_a_deleted_tag_is_found_below_the_question_with_a_warning(conv_bn, release, guide):
    nb = _student(release, tags=[])
    answer = extract_answers(nb, conv_bn.questions, guide=guide)[WHY]
    assert (answer.text, answer.how, answer.cell) == (ANSWER, HEADING, _answer_index(release, WHY) + 1)
    assert "written:why_bn_after_conv" in answer.warning and "put the tag back" in answer.warning
    # The answer cell named by its first line, as the student finds it (not the 29th cell counted).
    assert "taken from the cell starting `BN keeps the next layer's input distr...` onwards" in answer.warning


def test_an_answer_merged_into_the_question_cell_is_told_from_the_question(conv_bn, release, guide):
    nb = _student(release, tags=[])
    at = _answer_index(release, WHY)
    question = nb.cells[at - 1]
    question.source = question.source + "\n\n" + nb.cells.pop(at).source
    answer = extract_answers(nb, conv_bn.questions, guide=guide)[WHY]
    assert (answer.text, answer.how, answer.cell) == (ANSWER, HEADING, at)


def test_a_notebook_retyped_from_scratch_is_found_by_the_questions_title(conv_bn):
    """No template, no tags, the heading reworded around the title: found by the title."""
    nb = new_notebook(cells=[
        new_code_cell("import numpy as np"),
        new_markdown_cell("## question one - why batchnormalization right after conv2d"),
        new_markdown_cell(ANSWER),
        new_raw_cell("it is also the next layer's input"),
        new_code_cell("x = 1"),
        new_markdown_cell("My notes, not an answer."),
        new_markdown_cell("#### Should the inputs be standardized too?"),
        new_markdown_cell("Yes, with training statistics."),
        new_markdown_cell("## Summary"),
        new_markdown_cell("not part of the answer"),
    ])
    found = extract_answers(nb, conv_bn.questions)  # the spec alone: titles
    assert found[WHY].text == ANSWER + "\n\nit is also the next layer's input" and found[WHY].cell == 3
    assert found[STD].text == "Yes, with training statistics." and found[STD].how == HEADING


def test_a_question_with_nothing_below_it_or_no_cell_at_all_has_no_answer(conv_bn, release, guide):
    nb = copy.deepcopy(release)
    nb.cells.pop(_answer_index(nb, WHY))
    found = extract_answers(nb, conv_bn.questions, guide=guide)
    assert WHY not in found and found[STD].text == ""
    assert extract_answers(new_notebook(cells=[new_markdown_cell("# Hello")]), conv_bn.questions) == {}
    assert extract_answers(release, ()) == {}


# ---------------------------------------------------------------- hostile content stays inert text

def test_html_code_and_control_characters_stay_inert_text(conv_bn, release, guide, tmp_path):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').write('x')\nimport os; os.system('touch {marker}')"
    html = "</textarea><script>alert(1)</script><img src=x onerror=alert(2)>"
    nb = _student(release, text=f"{html}\x00\x1b[2J\u202eevil\tok\r\nline two")
    at = _answer_index(nb, STD)
    nb.cells[at] = new_code_cell(code, metadata={"tags": [f"written:{STD}"]})
    path = tmp_path / "hostile.ipynb"
    nbformat.write(nb, path)
    found = extract_answers(load_notebook(path), conv_bn.questions, guide=guide)  # the safe reader, as grading does
    assert found[WHY].text == f"{html}[2Jevil\tok\nline two"  # the characters typed, minus invisible ones
    assert found[STD].text == code and found[STD].cell == at + 1
    assert not marker.exists()


def test_a_huge_answer_is_cut_with_a_note(conv_bn, release, guide):
    nb = _student(release, text=("word " * 20 + "\n") * 10_000)  # about 1 MB
    answer = extract_answers(nb, conv_bn.questions, guide=guide)[WHY]
    assert answer.truncated and answer.text.endswith("(truncated: the answer is longer than the grader keeps)")
    assert MAX_ANSWER_CHARS <= len(answer.text) < MAX_ANSWER_CHARS + 100
    assert "longer than the 20,000 characters" in answer.warning


@pytest.mark.parametrize("tags", [None, "written:why_bn_after_conv", [1, None, {"a": 1}], ["x" * 10_000]])
def test_odd_metadata_is_read_without_failing(conv_bn, release, guide, tags):
    nb = _student(release)
    nb.cells[_answer_index(nb, WHY)].metadata["tags"] = tags
    answer = extract_answers(nb, conv_bn.questions, guide=guide)[WHY]
    assert answer.text == ANSWER and answer.how == (TAG if isinstance(tags, str) else HEADING)


def _many_empty_cells(release, n):
    nb = _student(release, tags=[])
    at = _answer_index(release, WHY)
    nb.cells[at + 1:at + 1] = [new_markdown_cell(" ") for _ in range(n)]
    return nb


def _many_question_copies(release, n):
    nb = _student(release, text="", tags=[])
    at = _answer_index(release, WHY)
    question = nb.cells[at - 1]
    nb.cells[at:at] = [copy.deepcopy(c) for _ in range(n) for c in (question, new_markdown_cell(" "))]
    return nb


def _many_tagged_cells(release, n):
    nb = copy.deepcopy(release)
    tags = [f"written:{WHY}", *(f"Written:{WHY}{i}" for i in range(20))]
    nb.cells += [new_markdown_cell("part", metadata={"tags": tags}) for _ in range(n)]
    return nb


def _one_long_cell(release, n):
    return _student(release, text="YOUR ANSWER HERE\n" * (n * 10), tags=[])


def _many_headings(release, n):
    nb = _student(release, tags=[])
    nb.cells.append(new_markdown_cell("\n".join(f"## heading {i}" for i in range(n * 5))))
    return nb


SHAPES = [_many_empty_cells, _many_question_copies, _many_tagged_cells, _one_long_cell, _many_headings]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_extraction_work_grows_linearly(conv_bn, release, guide, shape):
    small, large = shape(release, 200), shape(release, 800)

    def extract(nb):
        return extract_answers(nb, conv_bn.questions, guide=guide)
    ratio = events(extract, large) / events(extract, small)
    assert ratio < 6, f"4x the notebook cost {ratio:.1f}x the work (linear is about 4x, quadratic 16x)"


# ---------------------------------------------------------------- no model answer or rubric reaches students

def _model_answers():
    master = read_master(MASTER)
    return {answer_question(c): c.source for c in master.cells if answer_question(c) is not None}


def test_the_release_and_samples_hold_the_placeholder_never_the_model_answer(conv_bn):
    model = _model_answers()
    assert set(model) == {WHY, STD} and all(len(text) > 300 for text in model.values())
    sentences = [s for text in model.values() for s in text.replace("\n", " ").split(". ") if len(s) > 40]
    for path in [RELEASE, *sorted((CONV_BN / "samples").glob("*.ipynb"))]:
        flat = " ".join(c.source.replace("\n", " ") for c in nbformat.read(path, as_version=4).cells)
        assert not [s for s in sentences if s in flat], path.name
    cells = [c for c in nbformat.read(RELEASE, as_version=4).cells if answer_question(c) is not None]
    assert [(answer_question(c), c.source, c.cell_type) for c in cells] == [
        (WHY, "YOUR ANSWER HERE", "markdown"), (STD, "YOUR ANSWER HERE", "markdown")]


def test_assign_blanks_any_answer_cell_and_refuses_a_code_one():
    master = new_notebook(cells=[new_markdown_cell("### Why?"),
                                 new_markdown_cell("The model answer, no markers.", metadata={"tags": ["written:q"]})])
    assert make_template(master).cells[1].source == "YOUR ANSWER HERE"
    assert make_template(master).cells[1].metadata["tags"] == ["written:q"]
    master.cells[1] = new_code_cell("answer = 42", metadata={"tags": ["written:q"]})
    with pytest.raises(MasterError, match="cell 1.*written question 'q'.*code cell"):
        make_template(master)


def test_the_kit_spec_and_leak_scan_keep_rubric_and_model_answer_out(conv_bn, tmp_path):
    spec = _spec_text(conv_bn, ["faces.py"])
    assert '[[written]]\nid = "why_bn_after_conv"' in spec and "points = 3.0" in spec
    assert "rubric" not in spec and "prompt" not in spec and conv_bn.questions[0].rubric[0].text not in spec
    shutil.copy(RELEASE, tmp_path / "conv_bn.ipynb")
    (tmp_path / "selfcheck.toml").write_text(spec)
    assert leaks(tmp_path, conv_bn, []) == []
    nbformat.write(read_master(MASTER), tmp_path / "conv_bn.ipynb")  # a master shipped by mistake
    (tmp_path / "notes.md").write_text("grading notes: " + conv_bn.questions[1].rubric[0].text)
    found = leaks(tmp_path, conv_bn, [])
    assert "conv_bn.ipynb holds the master's model answer to `why_bn_after_conv`" in found
    assert "conv_bn.ipynb holds the master's model answer to `standardize_inputs`" in found
    assert "notes.md holds the rubric of written question `standardize_inputs`" in found


def test_validation_names_a_missing_tag_a_leaked_answer_and_an_unfindable_question(conv_bn, release):
    master = read_master(MASTER)
    assert written_problems(conv_bn.questions, master, release, "master", "release") == []
    broken_master = copy.deepcopy(master)
    broken_master.cells[_answer_index(broken_master, STD)].metadata["tags"] = ["written:typo"]
    leaked = copy.deepcopy(release)
    leaked.cells[_answer_index(leaked, WHY)].source = "BN keeps the next layer's input stable."
    leaked.cells[_answer_index(leaked, STD) - 1].source = "Answer below."  # no heading, no title
    problems = written_problems(conv_bn.questions, broken_master, leaked, "master", "release")
    assert any("master: no cell is tagged `written:standardize_inputs`" in p for p in problems), problems
    assert any("master: cell" in p and "`written:typo`" in p and "declares no" in p for p in problems), problems
    assert any("release: answer cell" in p and "students would see it" in p for p in problems), problems
    assert any("'standardize_inputs' whose tag a student deleted would not be found" in p for p in problems), problems


# ---------------------------------------------------------------- end to end: grade, gradebook, outputs

GRADED = ("correct", "broken_tags", "mixed")


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """Three conv_bn samples graded for real: tagged answers, answers whose tags were
    deleted, and none written."""
    base = tmp_path_factory.mktemp("written")
    subs = base / "subs"
    subs.mkdir()
    for name in GRADED:
        shutil.copy(CONV_BN / "samples" / f"{name}.ipynb", subs / f"{name}.ipynb")
    out = base / "results"
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(subs), "--out", str(out), "-a", "conv_bn"],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _csv(results: Path) -> dict[str, dict[str, str]]:
    with open(results / "grades.csv", newline="", encoding="utf-8") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def test_grading_puts_the_answers_in_the_gradebook_with_a_warning_for_a_missing_tag(results):
    with Gradebook(results, create=False) as book:
        answers = {(a.submission, a.question): a for a in book.answers()}
        broken = json.loads(book.db.execute("SELECT result_json FROM submissions WHERE submission = ?",
                                            ("broken_tags.ipynb",)).fetchone()[0])
    assert answers[("correct.ipynb", WHY)].text.startswith("Whatever comes out of a Conv2D")
    assert answers[("correct.ipynb", STD)].text.startswith("Yes. The first Conv2D sees the raw pixels")
    assert answers[("broken_tags.ipynb", WHY)].text == answers[("correct.ipynb", WHY)].text
    assert answers[("mixed.ipynb", WHY)].text == "" and answers[("mixed.ipynb", STD)].text == ""
    assert answers[("correct.ipynb", WHY)].cell == _answer_index(nbformat.read(RELEASE, as_version=4), WHY) + 1
    assert sum("no cell is tagged `written:" in w for w in broken["warnings"]) == 2


def test_grades_csv_has_empty_written_columns_until_a_score_then_the_score_everywhere(results):
    rows = _csv(results)
    assert rows["correct"][f"written:{WHY}"] == "" and rows["correct"][f"written:{STD}"] == ""
    with Gradebook(results, create=False) as book:
        book.set_manual_score("correct.ipynb", WHY, 2.5, comment="Bias point missing.", grader="ta")
        export_grades(book)
    rows = _csv(results)
    assert float(rows["correct"][f"written:{WHY}"]) == 2.5 and rows["correct"][f"written:{STD}"] == ""
    assert rows["broken_tags"][f"written:{WHY}"] == ""
    feedback = results / "feedback" / "correct"
    tests = json.loads((feedback / "results.json").read_text())["tests"]
    entry = next(t for t in tests if "Why BatchNormalization right after Conv2D?" in t["name"])
    assert entry["score"] == 2.5 and entry["max_score"] == 3
    assert "Bias point missing" in entry["output"]  # markdown-escaped: "missing\\."
    markdown = (feedback / "feedback.md").read_text()  # markdown-escaped, as feedback.md is
    assert "Bias point missing\\." in markdown and "Written answers · Why BatchNormalization right after Conv2D? | 2\\.5 / 3" in markdown


def test_grader_check_tells_the_student_which_answers_were_found_and_where(tmp_path):
    """A self-check cannot score a written answer, but it can say whether the grader will
    find it: a student whose answer cell lost its text learns it before handing in."""
    nb = nbformat.read(str(REPO / "assignments" / "conv_bn" / "samples" / "correct.ipynb"), as_version=4)
    for cell in nb.cells:
        if "written:standardize_inputs" in cell.get("metadata", {}).get("tags", []):
            cell.source = "YOUR ANSWER HERE"
    path = tmp_path / "mine.ipynb"
    nbformat.write(nb, str(path))
    out = subprocess.run([sys.executable, "-m", "grader", "check", str(path), "-a", "conv_bn"],
                         capture_output=True, text=True, timeout=300).stdout
    found = [line for line in out.splitlines() if line.strip().startswith(("found", "EMPTY", "NOT FOUND"))]
    assert len(found) == 2, out[-2000:]
    assert found[0].strip().startswith("found") and "Why BatchNormalization" in found[0]
    # The answer cell is there with only the placeholder: empty, and where to write says so.
    assert found[1].strip().startswith("EMPTY") and "standardized" in found[1] and "write your answer" in found[1]
    assert "rubric" not in out.lower() and "points earned" not in out


def test_answers_never_read_are_read_by_the_next_run_without_grading_again(results, tmp_path):
    """A gradebook whose answers were never read (written before the questions were in the
    spec, or by a grader that kept no answers): the next `grader grade --out` reads them
    from the notebooks it does not grade again; a notebook gone since is named, and its
    answers wait instead of scoring 0."""
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    subs = tmp_path / "subs"
    shutil.copytree(results.parent / "subs", subs)
    db = sqlite3.connect(copy / "gradebook.sqlite")
    with db:
        db.execute("DELETE FROM answers")
        db.execute("UPDATE submissions SET answers_for = ''")
        db.execute("UPDATE submissions SET path = replace(path, ?, ?)", (str(results.parent / "subs"), str(subs)))
    db.close()
    (subs / "mixed.ipynb").unlink()  # tidied away since it was graded
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(subs), "--out", str(copy), "-a", "conv_bn"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "0 to grade" in proc.stderr and "written answers read for 2 stored submissions" in proc.stderr
    assert "mixed.ipynb" in proc.stderr and "is gone" in proc.stderr
    with Gradebook(copy, create=False) as book:
        answers = {(a.submission, a.question): a.text for a in book.answers()}
        assert answers[("correct.ipynb", WHY)].startswith("Whatever comes out of a Conv2D")
        assert answers[("broken_tags.ipynb", WHY)] == answers[("correct.ipynb", WHY)]
        assert not any(sub == "mixed.ipynb" for sub, _ in answers)
    feedback = (copy / "feedback" / "mixed" / "feedback.md").read_text()
    assert "No answer was found" not in feedback and "not been read yet" in feedback
