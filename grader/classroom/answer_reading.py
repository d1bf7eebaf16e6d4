"""Reading written answers for submissions already in the gradebook.

A grading run reads a notebook's answers while grading it. Written questions are not part
of the assignment's fingerprint (adding one must not regrade a class), so a question added
to the spec after the class was graded, or a gradebook from a grader that stored no
answers, leaves stored submissions with answers never read; scoring them "no answer" would
give every student 0 in silence. So before each run the gradebook names the graded
submissions whose answers were not read for the current questions, and they are read here,
from the notebook, as text (the same safe reader as grading; nothing is run).

A notebook that is gone, or has changed since it was graded without being graded again,
is not read: the reason is stored and said, the answers wait ("not read yet", never 0),
and the next run tries again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Mapping

from grader.classroom.names import printable


@dataclass(frozen=True)
class AnswerReading:
    """What reading stored submissions' answers did."""
    read: int = 0
    problems: tuple[str, ...] = ()  # one line per notebook that could not be read
    skipped: tuple[str, ...] = field(default=())  # graded again meanwhile: its grading read them

    def lines(self) -> list[str]:
        out = []
        if self.read:
            out.append(f"grader: written answers read for {self.read} stored submission{'s' * (self.read != 1)} "
                       f"(the written questions changed, or were never read)")
        out += [f"grader: {printable(p)}" for p in self.problems]
        return out


def _guide(assignment):
    from grader.notebook.answers import answer_guide
    try:
        from grader.assignment.materials import student_template
        template = student_template(assignment)
    except Exception:  # noqa: BLE001 - without the template the questions' titles still find answers
        template = None
    return answer_guide(assignment.questions, template)


def read_stored_answers(book, assignment, paths: Mapping[str, Path] | None = None, *,
                        skip: Collection[str] = ()) -> AnswerReading:
    """Read the answers of every graded submission in `book` whose answers were not read
    for `assignment`'s questions (bound to the book already). `paths`: where each
    submission's notebook is now (this run's files), else the path it was graded from;
    `skip`: submissions this run grades anyway (their grading reads the answers)."""
    from grader.classroom.submissions import file_sha256
    from grader.notebook import LoadError, load_notebook
    from grader.notebook.answers import answers_reply, extract_answers

    skip = set(skip)
    pending = [r for r in book.unread_answers() if r.submission not in skip]
    if not pending:
        return AnswerReading()
    questions = tuple(getattr(assignment, "questions", ()))
    guide = _guide(assignment) if questions else None
    read, problems, skipped = 0, [], []
    for row in pending:
        path = Path((paths or {}).get(row.submission) or row.path)
        problem = ""
        if not path.is_file():
            problem = (f"{row.submission}: the notebook {path} is gone (moved or deleted since it was graded), so "
                       f"its written answers could not be read; they count as not read yet, not as 0: put it back "
                       f"and run `grader grade` again")
        elif file_sha256(path) != row.sha256:
            problem = (f"{row.submission}: the notebook {path} changed since it was graded, so its written answers "
                       f"were not read from it; run `grader grade` on it to grade and read it again")
        answers: dict = {}
        if not problem and questions:
            notebook = load_notebook(path)
            if isinstance(notebook, LoadError):
                problem = f"{row.submission}: its written answers could not be read: {notebook}"
            else:
                try:
                    answers, _warnings = answers_reply(extract_answers(notebook, questions, guide=guide))
                except Exception as exc:  # noqa: BLE001 - one notebook's answers never stop the run
                    problem = (f"{row.submission}: its written answers could not be read ({type(exc).__name__}: "
                               f"{exc})")
        if book.store_answers(row.submission, row.sha256, answers, problem=problem):
            if problem:
                problems.append(problem)
            else:
                read += 1
        else:
            skipped.append(row.submission)
    return AnswerReading(read, tuple(problems), tuple(skipped))


__all__ = ["AnswerReading", "read_stored_answers"]
