"""A stateful property of the gradebook: whatever interleaving of grading, regrading,
resubmitting, overriding (review page or `grader override`), scoring written answers and
exporting, from several processes and sometimes two at once, after every step

* every derived file (grades.csv, grades.json, each feedback folder with Gradescope's
  results.json) equals a fresh derivation from the gradebook, and
* every decision a process was told was saved is in the gradebook.

Hypothesis picks the steps (RuleBasedStateMachine); each step runs in real worker
processes (tests/gradebook_ops.py) through the code that does it for real, on real SQLite.
"""
from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from classbook import Spec, differences
from grader.classroom.gradebook import Gradebook

HERE = Path(__file__).resolve().parent
STUDENTS = ("alice", "bob", "carol")
WORKERS = 3


class Worker:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "gradebook_ops.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
        assert json.loads(self.proc.stdout.readline()) == {"ready": True}

    def send(self, command: dict) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def answer(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, "the worker process died"
        answer = json.loads(line)
        assert answer["status"] != 500, answer.get("trace") or answer
        return answer

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


commands = st.one_of(
    st.builds(lambda s, v, o, a, l: {"op": "grade", "student": s, "version": v, "order": o, "answer": a, "long": l},
              st.sampled_from(STUDENTS), st.integers(0, 2), st.sampled_from([0.0, 2.0, 4.0]),
              st.sampled_from(["Stable inputs.", "Faster.", ""]), st.booleans()),
    st.builds(lambda s, p: {"op": "score", "student": s, "points": p},
              st.sampled_from(STUDENTS), st.sampled_from([0, 1.5, 3])),
    st.builds(lambda s, p, c: {"op": "override", "student": s, "points": p, "cli": c},
              st.sampled_from(STUDENTS), st.sampled_from([None, 1.0, 4.0]), st.booleans()),
    st.just({"op": "export"}),
)


class GradebookMachine(RuleBasedStateMachine):
    workers: list[Worker] = []
    base: Path = Path()
    counter = itertools.count()

    def __init__(self):
        super().__init__()
        self.folder = self.base / f"case{next(self.counter)}"
        with Gradebook(self.folder) as book:
            book.bind(Spec())
        self.saved = {"score": 0, "override": 0}
        self.fingerprint = "f" * 16

    def _command(self, template: dict) -> dict:
        command = {**template, "folder": str(self.folder)}
        op = command["op"]
        if op == "grade":
            # The notebook's version names its bytes; the same version graded again is a regrade.
            command["sha"] = f"{command['student']}-v{command.pop('version')}"
            command["fingerprint"] = self.fingerprint
        elif op in ("score", "override"):
            command["grader"] = f"ta{next(self.counter)}"
        return command

    def _settle(self, command: dict, answer: dict) -> None:
        if command["op"] in self.saved and answer["status"] == 200:
            self.saved[command["op"]] += 1
        elif command["op"] in self.saved:
            assert answer["status"] in (404, 409), answer  # not graded yet, or graded again meanwhile

    @initialize(student=st.sampled_from(STUDENTS))
    def first_grading(self, student):
        self.run_one(0, {"op": "grade", "student": student, "version": 0, "order": 0.0, "answer": "Stable."})

    @rule(worker=st.integers(0, WORKERS - 1), template=commands)
    def run_one(self, worker, template):
        command = self._command(template)
        self.workers[worker].send(command)
        self._settle(command, self.workers[worker].answer())

    @rule(first=commands, second=commands, delay=st.sampled_from([0.0, 0.1, 0.3]))
    def run_two_at_once(self, first, second, delay):
        """Two processes write at once (say a grading run and a review save), the second
        starting `delay` seconds after the first: Hypothesis picks how they overlap."""
        pair = [self._command(first), {**self._command(second), "delay": delay}]
        for worker, command in zip(self.workers, pair):
            worker.send(command)
        for worker, command in zip(self.workers, pair):
            self._settle(command, worker.answer())

    @rule()
    def new_version_of_the_tests(self):
        """The assignment's tests change: the next gradings are regrades of the same notebooks."""
        self.fingerprint = "g" * 16 if self.fingerprint == "f" * 16 else "f" * 16

    @invariant()
    def derived_files_are_the_gradebook(self):
        if not (self.folder / "grades.csv").exists():
            return
        assert differences(self.folder, self.folder.with_name(self.folder.name + "-fresh")) == []

    @invariant()
    def every_saved_decision_is_kept(self):
        with Gradebook(self.folder, create=False) as book:
            scores = book.db.execute("SELECT COUNT(*) FROM manual_scores").fetchone()[0]
            overrides = book.db.execute("SELECT COUNT(*) FROM overrides").fetchone()[0]
        assert (scores, overrides) == (self.saved["score"], self.saved["override"])


@pytest.mark.slow
def test_every_derived_file_is_the_gradebooks_latest_state(tmp_path):
    workers = [Worker() for _ in range(WORKERS)]
    try:
        GradebookMachine.workers, GradebookMachine.base = workers, tmp_path
        run_state_machine_as_test(GradebookMachine, settings=settings(
            max_examples=10, stateful_step_count=8, deadline=None, derandomize=True, database=None,
            suppress_health_check=list(HealthCheck)))
    finally:
        for w in workers:
            w.close()
        shutil.rmtree(tmp_path, ignore_errors=True)
