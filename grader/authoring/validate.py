"""`grader validate-assignment NAME`: prove an assignment is sound before students see it.

Every way an assignment goes wrong in front of a class is cheap to detect beforehand and
expensive afterwards: a reference that fails its own tests gives every student a wrong
grade, a template that already earns points rewards doing nothing, a test without points
or an exercise is graded as 1 point under no exercise (so `check("happyModel")` silently
skips it), and tests that no longer add up to the advertised total mean one was lost or
added by accident; and a sample submission whose score drifts from the one it declares
(`{"grader": {"expected_score": 17}}` in its metadata) means a test changed what it
rewards. Each is checked here, on the real grading path (pytest, the sandbox,
`grade_submission`), and reported as a checklist with exit status 0 only if all hold.

The reference solution graded is the master notebook: `assignments/NAME/source/NAME.ipynb`
(or the spec's `master = "..."`, or `source/NAME.py` in Jupytext percent format), after
`grader.authoring.assign.annotate`, i.e. exactly what a student who solved everything would hand in.
Without a master, one is generated from the reference module (one tagged cell per exercise,
the function body marked as the solution), so even an assignment that is only a spec, tests
and a reference can be checked, template included.
"""
from __future__ import annotations

import argparse
import ast
import io
import os
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE
from grader.assignment.materials import find_master, find_release
from grader.sandbox.client import ISOLATION_CHOICES

PASS, FAIL, SKIP = "✔", "✘", "–"


@dataclass
class Item:
    title: str
    ok: bool | None  # None: not checked, because something it needs failed first
    details: list[str] = field(default_factory=list)

    @property
    def mark(self) -> str:
        return PASS if self.ok else (SKIP if self.ok is None else FAIL)


@dataclass
class Report:
    name: str
    items: list[Item] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.items) and all(i.ok for i in self.items)

    def add(self, title: str, ok: bool | None, details=()) -> Item:
        item = Item(title, ok, list(details))
        self.items.append(item)
        return item

    def render(self) -> str:
        lines = [f"Validating assignment {self.name}"]
        for item in self.items:
            lines.append(f"{item.mark} {item.title}")
            lines += [f"    {d}" for d in item.details]
        failed = sum(1 for i in self.items if not i.ok)
        if self.ok:
            lines.append(f"All {len(self.items)} checks passed: {self.name} is ready to release.")
        else:
            lines.append(f"{failed} of {len(self.items)} checks did not pass: fix them before releasing "
                         f"{self.name}.")
        return "\n".join(lines)


# ---------------------------------------------------------------- collecting the tests

@dataclass(frozen=True)
class Collected:
    nodeid: str
    exercise: str | None
    points: object  # the marker's argument, None when the marker is missing
    visibility: str
    depends: tuple[str, ...] = ()  # `depends` marker: test names, "file.py::name" for another file's
    depends_on_exercises: tuple[str, ...] = ()  # depends(exercise=...)


class _Collector:
    """Reads each test's markers as the grading plugin will, without running anything."""

    def __init__(self):
        self.tests: list[Collected] = []
        self.errors: list[str] = []

    def pytest_collectreport(self, report):
        if report.failed:
            text = str(report.longrepr).strip().splitlines()
            self.errors.append(f"{report.nodeid or 'collection'}: {text[-1] if text else 'failed'}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        def arg(item, name):
            marker = item.get_closest_marker(name)
            return marker.args[0] if marker is not None and marker.args else None
        for item in items:
            needs = item.get_closest_marker("depends")
            self.tests.append(Collected(item.nodeid, arg(item, "exercise"), arg(item, "points"),
                                        str(arg(item, "visibility") or "visible"),
                                        tuple(str(a) for a in (needs.args if needs else ())),
                                        tuple(str(e) for e in (needs.kwargs.get("exercises", ()) if needs else ()))))


def dependency_problems(tests: list[Collected], exercises: tuple[str, ...]) -> list[str]:
    """Each `depends` that names no test, or one that runs after it (tests run in the spec's
    order of exercises, then in file order): such a test would never run, or always wait."""
    rank = {e: i for i, e in enumerate(exercises)}
    order = sorted(range(len(tests)), key=lambda i: rank.get(tests[i].exercise or "", len(rank)))
    position = {tests[i].nodeid.split("[")[0]: k for k, i in reversed(list(enumerate(order)))}
    problems = []
    for k, i in enumerate(order):
        test = tests[i]
        file = test.nodeid.split("::")[0]
        for needed in test.depends:
            target = needed if "::" in needed else f"{file}::{needed}"
            where = next((pos for node, pos in position.items()
                          if node == target or node.endswith("/" + target)), None)
            if where is None:
                problems.append(f"{test.nodeid}: depends on `{needed}`, which is not a test of this assignment")
            elif where >= k:
                problems.append(f"{test.nodeid}: depends on `{needed}`, which runs after it (tests run in the "
                                f"spec's order of exercises, then in file order)")
        for exercise in test.depends_on_exercises:
            if exercise not in rank:
                problems.append(f"{test.nodeid}: depends on exercise `{exercise}`, not one of the spec's exercises")
            elif rank[exercise] >= rank.get(test.exercise or "", len(rank)):
                problems.append(f"{test.nodeid}: depends on exercise `{exercise}`, whose tests do not run before "
                                f"it (list `{exercise}` earlier in the spec's exercises)")
    return problems


def collect_tests(assignment) -> _Collector:
    """The assignment's tests as pytest collects them for grading (same arguments)."""
    from grader.run.grading import _forget_other_test_modules, pytest_args

    # As grading does: a same-named test module from another folder (a student kit's copy
    # of these tests, without the hidden ones) must not stand in for this one.
    _forget_other_test_modules(assignment)
    collector = _Collector()
    sink = io.StringIO()
    with redirect_stdout(sink), redirect_stderr(sink):
        code = pytest.main(pytest_args(assignment) + ["--collect-only"], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) and not collector.errors:
        collector.errors.append(f"pytest exit {int(code)}: {sink.getvalue().strip()[-300:]}")
    return collector


# ---------------------------------------------------------------- the master notebook

def master_from_reference(assignment) -> nbformat.NotebookNode:
    """A master notebook made of the reference module's own code.

    Module-level code (imports, helpers, constants) goes into one untagged cell; each
    exercise's function into its own cell tagged with its name, its body (after the
    docstring) between solution markers, so `make_template` stubs it out as it would in a
    hand-written master.
    """
    from grader.authoring.assign import BEGIN_SOLUTION, END_SOLUTION, MasterError

    source = assignment.reference.read_text(encoding="utf-8")
    lines = source.splitlines()
    tree = ast.parse(source, filename=str(assignment.reference))

    def span(node) -> tuple[int, int]:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        return first - 1, node.end_lineno

    setup: list[str] = []
    graded: dict[str, str] = {}
    for index, node in enumerate(tree.body):
        start, end = span(node)
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in assignment.exercises:
            body = node.body
            has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str)
            solution = body[1:] if has_doc else body
            if not solution or solution[0].lineno == node.lineno:
                raise MasterError(f"{assignment.reference}: cannot mark the body of {node.name}() as a "
                                  f"solution (write it on lines of its own, after the docstring)")
            first = span(solution[0])[0]
            indent = " " * solution[0].col_offset
            text = lines[start:first] + [indent + BEGIN_SOLUTION] + lines[first:end] + [indent + END_SOLUTION]
            graded[node.name] = "\n".join(text)
        else:
            setup.append("\n".join(lines[start:end]))
    missing = [e for e in assignment.exercises if e not in graded]
    if missing:
        raise MasterError(f"{assignment.reference}: defines no top-level function for "
                          f"{', '.join(missing)}")
    cells = [nbformat.v4.new_code_cell("\n\n".join(setup))] if setup else []
    cells += [nbformat.v4.new_code_cell(graded[e], metadata={"tags": [e]}) for e in assignment.exercises]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["grader"] = {"assignment": assignment.name}
    return nb


def declared_samples(assignment) -> list[tuple[Path, float | None, str]]:
    """Each sample notebook (`samples/*.ipynb`) that declares the score it should get, as
    (path, expected score, problem). A sample declares it in its metadata,
    `{"grader": {"expected_score": 17}}`; samples that declare nothing are examples only."""
    folder = assignment.root / "samples"
    found: list[tuple[Path, float | None, str]] = []
    for path in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        try:
            metadata = nbformat.read(path, as_version=4).metadata
        except Exception as exc:  # noqa: BLE001 - any unreadable sample is reported, not raised
            found.append((path, None, f"cannot be read: {type(exc).__name__}: {exc}"))
            continue
        grader = metadata.get("grader", {})
        declared = grader.get("expected_score") if isinstance(grader, dict) else None
        if declared is None:
            continue
        if isinstance(declared, bool) or not isinstance(declared, (int, float)):
            found.append((path, None, f"metadata grader.expected_score is {declared!r}, not a number"))
        else:
            found.append((path, float(declared), ""))
    return found


def _sample_problem(path: Path, expected: float | None, problem: str, result, assignment) -> str:
    """"" when the sample scored what it declares, else what differs and why."""
    where = _where(path, assignment)
    if problem:
        return f"{where}: {problem}"
    if result.errors:
        return f"{where}: expected {expected:g}, but it could not be graded: {'; '.join(result.errors)}"
    if abs(result.score - expected) < 1e-6:
        return ""
    lost = "; ".join(_problems(result)) or "nothing lost"
    return f"{where}: expected {expected:g}, got {result.score:g} / {result.max_score:g} (lost: {lost})"


def written_problems(questions, master, template, master_label: str, template_label: str) -> list[str]:
    """What keeps each written question from being answered and found: its answer cell
    (tagged `written:ID`) must be in the master once, in the template once holding only the
    placeholder (so no model answer reaches students), and findable below its question
    when a student deletes the tag."""
    import copy

    from grader.authoring.assign import MARKDOWN_STUB, answer_question
    from grader.notebook.answers import answer_guide, extract_answers

    declared = {q.id for q in questions}
    problems = []
    for label, nb in ((master_label, master), (template_label, template)):
        where: dict[str, list[int]] = {}
        for index, cell in enumerate(nb.cells):
            question = answer_question(cell)
            if question is not None:
                where.setdefault(question, []).append(index + 1)
        for q in questions:
            cells = where.pop(q.id.casefold(), [])  # tags are compared in any case
            if not cells:
                problems.append(f"{label}: no cell is tagged `{q.tag}`: add a Markdown cell with that tag, "
                                f"right below the question, for {q.id!r}")
            elif len(cells) > 1:
                problems.append(f"{label}: cells {', '.join(map(str, cells))} are all tagged `{q.tag}`; tag one")
        problems += [f"{label}: cell {cells[0]} is tagged `written:{qid}` but the spec declares no [[written]] "
                     f"{qid!r} (declared: {', '.join(sorted(declared)) or 'none'})" for qid, cells in where.items()]
    placeholder = "\n".join(MARKDOWN_STUB)
    for index, cell in enumerate(template.cells):
        if answer_question(cell) is not None and cell.source.strip() != placeholder:
            problems.append(f"{template_label}: answer cell {index + 1} ({cell.metadata.get('tags')}) holds more "
                            f"than `{placeholder}`, so students would see it: rebuild the template")
    # A student who deleted every tag: each answer must still be found, below its question.
    student = copy.deepcopy(template)
    for cell in student.cells:
        question = answer_question(cell)
        if question is not None:
            cell.source = f"An answer to {question}."
            cell.metadata["tags"] = []
    found = extract_answers(student, questions, guide=answer_guide(questions, template))
    for q in questions:
        if q.id in declared and (q.id not in found or found[q.id].text != f"An answer to {q.id}."):
            problems.append(f"{template_label}: an answer to {q.id!r} whose tag a student deleted would not be "
                            f"found; put the question in a Markdown cell with a heading (e.g. `### {q.title}`) "
                            f"right above the answer cell")
    return problems


def _sources(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


# ---------------------------------------------------------------- validating

def _where(path: Path, assignment) -> str:
    """A path as the spec would write it: relative to the assignment, unless that is far away."""
    relative = Path(os.path.relpath(path, assignment.root))
    return str(relative) if relative.parts[:3].count("..") < 3 else str(path)


def _problems(result) -> list[str]:
    out = [f"could not be graded: {e}" for e in result.errors]
    for t in result.tests:
        if t.score < t.max_score:
            message = (t.message or t.status.value).strip().splitlines()[0][:160]
            out.append(f"{t.title}: {t.score:g} / {t.max_score:g} ({message})")
    return out


def _grade_all(paths: list[Path], a, worker, *, isolation: str, jobs: int) -> dict[Path, object]:
    """Each notebook's result, by path. With one job, on one sandbox worker here (a caller's
    own, or one started for the run); with more, in the class-grading batch's parallel
    grading processes, each with its own worker and held to the assignment's budget: the
    same grading path, so the same verdicts, in about 1/jobs of the time."""
    from grader.run.grading import grade_submission
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker

    if jobs <= 1 or worker is not None or len(paths) <= 1:
        own = worker is None
        if own:
            worker = Worker(framework=sandbox_side(a.framework, a.keras), isolation=isolation).start()
        try:
            return {p: grade_submission(p, a, worker, include_hidden=True) for p in paths}
        finally:
            if own:
                worker.stop()
    from grader.classroom.batch import Options, grade_many

    options = Options(assignment=str(a.root), isolation=isolation, include_hidden=True)
    by_name = {str(p): p for p in paths}
    results = {}
    for result in grade_many(paths, options, jobs=jobs):
        results[by_name.get(result.submission, Path(result.submission))] = result
    from grader.classroom.process import failed_result
    return {p: results.get(p) or failed_result(p, a.name, "no result came back from its grading process")
            for p in paths}


def validate(name_or_dir, worker=None, *, isolation: str = "auto", jobs: int = 1) -> Report:
    """Check everything; `worker` lets a caller share one sandbox across validations;
    `jobs` grades the reference, the template and the samples in that many processes."""
    from grader.authoring.assign import MasterError, annotate, make_template, read_master
    from grader.assignment.spec import AssignmentError, load_assignment

    report = Report(str(name_or_dir))
    try:
        a = load_assignment(name_or_dir)
    except AssignmentError as exc:
        report.add("the spec (assignment.toml) loads", False, [str(exc)])
        return report
    report.name = a.name
    report.add(f"the spec loads: {len(a.exercises)} exercises ({', '.join(a.exercises)}), reference "
               f"{_where(a.reference, a)}", True)

    # -- the tests, as collected for grading
    collected = collect_tests(a)
    tests = collected.tests
    files = len({t.nodeid.split("::")[0] for t in tests})
    report.add(f"the tests collect: {len(tests)} tests in {files} files" if tests else "the tests collect",
               bool(tests) and not collected.errors,
               collected.errors or ([] if tests else [f"no test found in {_where(a.tests_dir, a)}"]))
    no_exercise = [t.nodeid for t in tests if not t.exercise]
    unknown = [f"{t.nodeid}: exercise({t.exercise!r}) is not one of the spec's exercises" for t in tests
               if t.exercise and t.exercise not in a.exercises]
    report.add("every test names one of the spec's exercises", bool(tests) and not no_exercise and not unknown,
               [f"{n}: no exercise marker (add `pytestmark = exercise(\"NAME\")` or @exercise(\"NAME\"))"
                for n in no_exercise] + unknown)

    def points_problem(t: Collected) -> str:
        if t.points is None:
            return f"{t.nodeid}: no points marker (add @points(N); without it the test counts 1 point)"
        try:
            value = float(t.points)
        except (TypeError, ValueError):
            return f"{t.nodeid}: points({t.points!r}) is not a number"
        return "" if value > 0 else f"{t.nodeid}: points({t.points!r}) is worth nothing"
    bad_points = [p for p in map(points_problem, tests) if p]
    report.add("every test has points", bool(tests) and not bad_points, bad_points)

    needs = dependency_problems(tests, a.exercises)
    if any(t.depends or t.depends_on_exercises for t in tests):
        report.add("every `depends` names a test that runs before it", not needs, needs)

    untested = [e for e in a.exercises if not any(t.exercise == e for t in tests)]
    report.add("every exercise has tests", not untested,
               [f"{e}: no test checks it, so it can never earn or lose points" for e in untested])

    def counted(t: Collected) -> float:  # what grading will count: a missing marker is 1 point
        try:
            return 1.0 if t.points is None else float(t.points)
        except (TypeError, ValueError):
            return 0.0
    total = sum(map(counted, tests))
    hidden = sum(1 for t in tests if t.visibility != "visible")
    spread = f"{len(tests)} tests, {hidden} hidden"
    if a.total_points is None:
        report.add(f"the points add up to total_points: not declared ({total:g} points over {spread})", False,
                   [f"add `total_points = {total:g}` to assignment.toml, so that a test lost or added by "
                    f"accident is noticed"])
    else:
        declared = float(a.total_points)
        same = abs(total - declared) < 1e-9
        report.add(f"the points add up to total_points = {declared:g}: "
                   + (f"{total:g} over {spread}" if same else f"the tests give {total:g} ({spread})"),
                   same, [] if same else ["change a test's points or total_points in assignment.toml"])

    # -- the reference solution and the template, graded for real
    master_path = find_master(a)
    try:
        if master_path is not None:
            master = read_master(master_path)
            master_label = _where(master_path, a)
        else:
            master = master_from_reference(a)
            master_label = f"generated from {_where(a.reference, a)}"
        solved = annotate(master)
        release = find_release(a)
        template_made = make_template(master)
    except (MasterError, OSError, SyntaxError, ValueError) as exc:
        report.add("the reference solution scores full marks", False, [f"no usable master: {exc}"])
        report.add("the untouched template scores zero", None, ["not checked: no usable master"])
        return report
    if release is not None:
        template_path, template_label = release, _where(release, a)
        if master_path is not None:
            stale = _sources(nbformat.read(release, as_version=4)) != _sources(template_made)
            report.add(f"{template_label} is the template made from {master_label}", not stale,
                       [f"rebuild it: grader assign {master_label} --out {_where(release.parent, a)}"]
                       if stale else [])
    else:
        template_path, template_label = None, ("made from the generated master" if master_path is None
                                               else f"made from {master_label}")
    if a.questions:
        shown = (nbformat.read(template_path, as_version=4) if template_path is not None else template_made)
        trouble = written_problems(a.questions, master, shown, master_label, template_label)
        report.add(f"the written questions have their answer cells: {', '.join(q.id for q in a.questions)} "
                   f"(tagged in the master, only the placeholder in the template, found without their tags)",
                   not trouble, trouble)
    if not tests or collected.errors:
        for title in ("the reference solution scores full marks", "the untouched template scores zero"):
            report.add(title, None, ["not checked: the tests do not collect"])
        return report

    with tempfile.TemporaryDirectory(prefix="grader-validate-") as tmp:
        solved_path = Path(tmp) / f"{a.name}_solved.ipynb"
        nbformat.write(solved, solved_path)
        if template_path is None:
            template_path = Path(tmp) / f"{a.name}_template.ipynb"
            nbformat.write(template_made, template_path)
        samples = declared_samples(a)
        graded = _grade_all([solved_path, template_path] + [path for path, _, problem in samples if not problem],
                            a, worker, isolation=isolation, jobs=jobs)
        ref, blank = graded[solved_path], graded[template_path]
        sample_problems = [_sample_problem(path, expected, problem, None if problem else graded[path], a)
                           for path, expected, problem in samples]
    full = not ref.errors and ref.tests and ref.score == ref.max_score
    report.add(f"the reference solution ({master_label}) scores full marks: {ref.score:g} / {ref.max_score:g}",
               bool(full), _problems(ref))
    zero = not blank.errors and blank.tests and blank.score == 0
    earned = [f"could not be graded: {e}" for e in blank.errors] + \
             [f"{t.title}: {t.score:g} / {t.max_score:g} without any work" for t in blank.tests if t.score > 0]
    report.add(f"the untouched template ({template_label}) scores zero: {blank.score:g} / {blank.max_score:g}",
               bool(zero), earned)
    if samples:
        mismatched = [p for p in sample_problems if p]
        report.add(f"the samples score what they declare: {len(samples) - len(mismatched)} of {len(samples)} "
                   f"(samples/*.ipynb, metadata grader.expected_score)", not mismatched, mismatched)
    return report


# ---------------------------------------------------------------- command line

def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "validate-assignment", help="check an assignment is sound before releasing it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Check an assignment before students see it, on the real grading path:

  - the spec (assignment.toml) loads and its tests collect
  - every test names one of the spec's exercises and has points
  - every exercise has tests, and the points add up to total_points
  - every `depends` names a test that runs before it (another file's as
    "test_file.py::test_name", a whole exercise as depends(exercise=...))
  - the reference solution scores full marks: the master notebook
    (source/NAME.ipynb), or one generated from the reference module
  - the untouched template scores zero: release/NAME.ipynb, or one made
    from the master; and the release is up to date with the master
  - each sample (samples/*.ipynb) that declares the score it expects, in its
    metadata {"grader": {"expected_score": 17}}, gets exactly that score
  - each written question ([[written]]) has its answer cell, tagged written:ID,
    in the master and (holding only the placeholder) in the template, and an
    answer is still found below its question when a student deletes the tag

Prints a checklist. Exit status 0 if every check passes, 1 if any fails,
2 for an unknown assignment.""",
        epilog="examples:\n  grader validate-assignment conv_bn\n  grader validate-assignment conv_bn --jobs 4")
    p.add_argument("assignment", metavar="NAME", help="assignment name (assignments/NAME) or folder")
    p.add_argument("--sandbox", default="auto", choices=ISOLATION_CHOICES,
                   help="isolation for grading the reference and the template (default: auto)")
    p.add_argument("--jobs", "-j", type=_jobs, default=1, metavar="N",
                   help="grade the reference, the template and the samples in N parallel grading "
                        "processes, as `grader grade` does (default: 1)")
    p.set_defaults(handler=run)
    return p


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number of processes, 1 or more, not {text!r}")
    return value


def run(args) -> int:
    from grader.assignment.spec import AssignmentError, resolve
    from grader.sandbox.client import IsolationUnavailable

    try:
        resolve(args.assignment)
    except AssignmentError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = validate(args.assignment, isolation=args.sandbox, jobs=getattr(args, "jobs", 1))
    except IsolationUnavailable as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_UNGRADED
    print(report.render())
    return EXIT_OK if report.ok else EXIT_UNGRADED
