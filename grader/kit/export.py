"""Build a student kit: the template, its support files, and a self-check bundle without solutions.

    DIR/NAME.ipynb                      the template (from the master, as `grader assign` makes it)
    DIR/<support files>                 what the notebook imports
    DIR/selfcheck/NAME/assignment.toml  the spec without secret or reference source
    DIR/selfcheck/NAME/tests/           the visible tests only
    DIR/selfcheck/NAME/probes.py        the assignment's probes, if any (instructor code, not secret)
    DIR/selfcheck/NAME/answers/         the reference's answers those tests asked for (models as
                                        layer graph, weight arrays and outputs: nothing rebuilds one)

The export refuses rather than hand out something wrong: a visible test that cannot run from
a recording is named with the reason, the kit is graded on the master and every sample and
must give the full grader's visible results, and a final scan refuses a kit holding any
reference function's body, a hidden test's name or code, the secret, a written question's
rubric, or the master's model answer to one. The kit's spec names the written questions
(id, title, points) and nothing else about them.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.kit import leak_forms, safety
from grader.kit.replay import ANSWERS, FORMAT, public_visible_seed

KIT_FOLDER = "selfcheck"
PROBE_CELL = "_grader_kit_probe = 'another submission, same answers'\n"


class KitError(Exception):
    """The kit cannot be built as the assignment stands (the instructor's to fix)."""


@dataclass
class Kit:
    root: Path
    notebook: Path
    spec_dir: Path
    tests: list[str] = field(default_factory=list)  # visible tests shipped
    dropped: list[str] = field(default_factory=list)  # hidden tests left out
    calls: int = 0  # recorded reference answers
    checked: list[str] = field(default_factory=list)  # notebooks whose kit results were compared
    compared: dict[str, tuple[list, list]] = field(default_factory=dict)  # notebook -> (kit, full)


# ---------------------------------------------------------------- helpers shared with the tests

def comparable(result) -> list[tuple]:
    """What a student sees of each visible test: equal kit and full results give equal lists."""
    return [(t.nodeid.split("::")[-1], t.exercise, t.status.value, t.score, t.max_score, t.message, t.hint,
             t.diagnosis) for t in result.tests if t.visibility.value == "visible"]


def master_of(assignment) -> Path:
    named = assignment.extra.get("master")
    candidates = [assignment.root / str(named)] if named else [
        assignment.root / "source" / f"{assignment.name}.ipynb", assignment.root / "source" / f"{assignment.name}.py"]
    for path in candidates:
        if path.is_file():
            return path
    raise KitError(f"no master notebook to make the template from (looked for "
                   f"{', '.join(str(c) for c in candidates)}); set `master` in assignment.toml")


def _normalized(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def _bodies_in(source: str) -> list[tuple[str, str, str]]:
    """(name, normalized text, unparsed code) of every function's body, docstring left out:
    the text finds a copy anywhere, the code finds one reformatted inside another function."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        if body:
            text = _normalized("\n".join(lines[body[0].lineno - 1: body[-1].end_lineno]))
            found.append((node.name, text, "\n".join(ast.unparse(b) for b in body)))
    return found


def _code_of(path: Path, text: str) -> list[str]:
    """The Python a kit file holds: the file itself, or a notebook's code cells."""
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text).get("cells", [])
            return ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
                    for c in cells if c.get("cell_type") == "code"]
        except (ValueError, AttributeError):
            return []
    return [text] if path.suffix == ".py" else []


def _cell_texts(path: Path, text: str) -> str:
    """What a reader sees of a kit file: a notebook's cells of every kind, else the text."""
    if path.suffix != ".ipynb":
        return text
    try:
        cells = json.loads(text).get("cells", [])
        return "\n".join("".join(c.get("source", "")) if isinstance(c.get("source"), list)
                         else str(c.get("source", "")) for c in cells)
    except (ValueError, AttributeError, TypeError):
        return text


def _written_secrets(assignment) -> list[tuple[str, str]]:
    """(what, squeezed text) of everything about the written questions students must not
    get: each rubric level, and each sentence of the master's model answers (long enough to
    be the answer's own words, and not also written elsewhere in the master)."""
    from grader.authoring.assign import answer_question, read_master

    questions = tuple(getattr(assignment, "questions", ()))
    found = [(f"the rubric of written question `{q.id}`", _squeeze(r.text))
             for q in questions for r in q.rubric if len(r.text.strip()) >= 20]
    if not questions:
        return found
    try:
        master = read_master(master_of(assignment))
    except (KitError, OSError, ValueError):
        return found
    answers = [(answer_question(c), c.source) for c in master.cells if answer_question(c) is not None]
    elsewhere = _squeeze("\n".join(c.source for c in master.cells if answer_question(c) is None))
    for question, source in answers:
        found += [(f"the master's model answer to `{question}`", sentence)
                  for sentence in re.split(r"(?<=[.!?:;])\s+", _squeeze(source))
                  if len(sentence) >= 40 and sentence not in elsewhere]
    return found


def _squeeze(text: str) -> str:
    return " ".join(text.split()).casefold()


def _shipped_test_names(folder: Path) -> set[str]:
    """The test functions the kit's own Python files define: a hidden test that shares one's
    name (`test_scores` in two files) is not revealed by that name appearing."""
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, ValueError, UnicodeDecodeError):
            continue
        names |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.name.startswith("test")}
    return names


def leaks(folder: Path, assignment, hidden: list[safety.TestInfo]) -> list[str]:
    """Every place the folder holds the secret, a reference body, a hidden test, a written
    question's rubric or model answer, or a model config or saved model that rebuilds."""
    bodies = [b for b in _bodies_in(Path(assignment.reference).read_text(encoding="utf-8")) if len(b[1]) >= 20]
    hidden_code = []
    for info in hidden:
        source = info.path.read_text(encoding="utf-8")
        func = safety.test_function(ast.parse(source), info.function)
        if func is not None:
            hidden_code.append((info.function, _normalized(ast.get_source_segment(source, func) or "")))
    written = _written_secrets(assignment)
    shipped = _shipped_test_names(folder)
    found = leak_forms.rebuildable_models(folder)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        flat = _normalized(text)
        where = path.relative_to(folder)
        if written:
            readable = _squeeze(_cell_texts(path, text))
            found += sorted({f"{where} holds {what}" for what, secret in written if secret in readable})
        if assignment.secret and assignment.secret in text:
            found.append(f"{where} holds the assignment's secret")
        code = {unparsed for source in _code_of(path, text) for _, _, unparsed in _bodies_in(source)}
        found += [f"{where} holds the body of reference function `{name}`"
                  for name, body, unparsed in bodies if body in flat or unparsed in code]
        for name, hidden_text in hidden_code:
            if name in text and name not in shipped:
                found.append(f"{where} names hidden test `{name}`")
            elif hidden_text and hidden_text in flat:
                found.append(f"{where} holds the code of hidden test `{name}`")
    return found


# ---------------------------------------------------------------- building

def _problems_in_code(tests: list[safety.TestInfo]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    hidden_names = {(t.path, t.function) for t in tests if not t.visible}
    for info in (t for t in tests if t.visible):
        why = problems.setdefault(info.nodeid, [])
        why += [f"it depends on hidden test `{d}`, which the kit does not have"
                for d in info.depends if (info.path, d) in hidden_names]
        func = safety.test_function(ast.parse(info.path.read_text(encoding="utf-8")), info.function)
        if func is not None:
            why += safety.static_problems(func)
    return {k: v for k, v in problems.items() if v}


def _not_safe(problems: dict[str, list[str]]) -> str:
    return ("not kit-safe, so no kit was written (make these tests hidden, or feed the reference only "
            "inputs fixed in the test's code):\n" + "\n".join(
                f"  - {test}: {'; '.join(why)}" for test, why in sorted(problems.items())))


def _write_tests(assignment, tests: list[safety.TestInfo], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    by_file: dict[Path, list[safety.TestInfo]] = {}
    for info in tests:
        by_file.setdefault(info.path.resolve(), []).append(info)
    for path in sorted(assignment.tests_dir.rglob("*.py")):
        target = dest / path.relative_to(assignment.tests_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        infos = by_file.get(path.resolve())
        if infos is None:  # conftest.py, shared helpers
            if not path.name.startswith("test_"):
                shutil.copyfile(path, target)
            continue
        keep = {t.function for t in infos if t.visible}
        drop = {t.function for t in infos if not t.visible} - keep
        if keep:
            target.write_text(safety.visible_source(path.read_text(encoding="utf-8"), keep, drop), encoding="utf-8")


def _spec_text(assignment, support: list[str]) -> str:
    def q(value: str) -> str:
        return json.dumps(value)
    lines = [
        "# The self-check bundle of a student kit, written by `grader export student`.",
        "# It holds the visible tests and recorded reference answers only: no solutions.",
        f"name = {q(assignment.name)}",
        f"title = {q(assignment.title)}",
        f"version = {q(assignment.version)}",
        f"keras = {q(assignment.keras)}",
        # The kit's worker preloads the same framework (torch, never TensorFlow, for a torch
        # assignment), and its children get the built-in torch probe.
        f"framework = {q(getattr(assignment, 'framework', 'keras'))}",
        f"reference = {q('answers/' + ANSWERS)}",
        'tests = "tests"',
        f"exercises = [{', '.join(q(e) for e in assignment.exercises)}]",
        f"support = [{', '.join(q(s) for s in support)}]",
        f"call_timeout = {float(assignment.call_timeout)!r}",
    ]
    if assignment.probes is not None:
        lines.append(f"probes = {q(assignment.probes.name)}")
    preload = tuple(getattr(assignment, "preload", ()))
    if preload:  # the worker imports them before forking: the same speed as the instructor's run
        lines.append(f"preload = [{', '.join(q(m) for m in preload)}]")
    modules = tuple(getattr(assignment, "modules", ()))
    if modules:  # the course's helper modules: the same stand-ins as the full grader's
        lines += ["", "[modules]"] + [f"{q(m)} = {q('missing' if p is None else 'standins/' + p.name)}"
                                      for m, p in modules]
    for question in getattr(assignment, "questions", ()):
        # Which questions there are and what they are worth; the prompt and rubric stay
        # with the instructor (the notebook itself asks the question).
        lines += ["", "[[written]]", f"id = {q(question.id)}", f"title = {q(question.title)}",
                  f"points = {float(question.points)!r}"]
    return "\n".join(lines) + "\n"


def _notebooks_to_record(assignment, master_nb, work: Path, samples: bool) -> list[Path]:
    import nbformat

    master = work / f"master_{assignment.name}.ipynb"
    nbformat.write(master_nb, master)
    other = nbformat.from_dict(json.loads(json.dumps(master_nb)))
    other.cells.append(nbformat.v4.new_code_cell(PROBE_CELL))
    perturbed = work / f"master_{assignment.name}_other.ipynb"
    nbformat.write(other, perturbed)
    found = [master, perturbed]
    if samples and (assignment.root / "samples").is_dir():
        found += sorted((assignment.root / "samples").glob("*.ipynb"))
    return found


def build_kit(assignment, out: str | Path, *, isolation: str = "auto", samples: bool = True,
              log=lambda message: None) -> Kit:
    """Write the kit for `assignment` into `out` (which must be empty or absent)."""
    import nbformat

    from grader.authoring.assign import annotate, make_template, read_master
    from grader.assignment.spec import load_assignment
    from grader.run.grading import grade_submission
    from grader.kit import record
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Worker

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise KitError(f"{out} is not empty: give a new folder for the kit")
    master_path = master_of(assignment)
    master_nb = read_master(master_path)
    tests = safety.collect(assignment)
    visible = [t for t in tests if t.visible]
    if not visible:
        raise KitError(f"{assignment.name} has no visible test: a kit would check nothing")
    problems = _problems_in_code(tests)
    if problems:  # found by reading the tests: no need to run anything to refuse
        raise KitError(_not_safe(problems))

    with tempfile.TemporaryDirectory(prefix="grader-kit-") as tmp:
        work = Path(tmp)
        stage = work / "kit"
        spec_dir = stage / KIT_FOLDER / assignment.name
        spec_dir.mkdir(parents=True)
        support = []
        for path in assignment.support:  # beside the notebook, and a pristine copy for grading
            shutil.copyfile(path, stage / path.name)
            shutil.copyfile(path, spec_dir / path.name)
            support.append(path.name)
        _write_tests(assignment, tests, spec_dir / "tests")
        if assignment.probes is not None:  # instructor code, not secret: run next to the student's code
            shutil.copyfile(assignment.probes, spec_dir / assignment.probes.name)
        for _, standin in getattr(assignment, "modules", ()):
            if standin is not None:
                (spec_dir / "standins").mkdir(exist_ok=True)
                shutil.copyfile(standin, spec_dir / "standins" / standin.name)
        # The master as a student who solved everything would hand it in (hidden cells dropped).
        notebooks = _notebooks_to_record(assignment, annotate(master_nb), work, samples)
        full: dict[Path, Any] = {}
        log(f"recording the reference's answers on {len(notebooks)} notebooks")
        with Worker(framework=sandbox_side(assignment.framework, assignment.keras), isolation=isolation,
                    preload=getattr(assignment, "preload", ())) as worker:
            with record.recording(spec_dir / "answers") as rec:
                runs = []
                for nb in notebooks:
                    rec.keys_by_test = {}
                    full[nb] = grade_submission(nb, assignment, worker, include_hidden=False)
                    runs.append(rec.keys_by_test)
            for test in set(runs[0]) | set(runs[1]):
                if runs[0].get(test, set()) != runs[1].get(test, set()):
                    problems.setdefault(test, []).append(
                        "its reference calls change with the submission's content (inputs "
                        "from the student's answer), so no recording can answer them")
            for test, why in rec.problems.items():
                problems.setdefault(test, []).extend(why)
            if problems:
                raise KitError(_not_safe(problems))
            (spec_dir / "answers" / ANSWERS).write_text(json.dumps({
                "format": FORMAT, "assignment": assignment.name,
                "visible_secret": public_visible_seed(assignment.name, assignment.version),
                "functions": sorted(rec.functions), "attributes": rec.attributes,
                "calls": {k: {"function": v["function"], "call": v["call"], "value": v["value"]}
                          for k, v in rec.calls.items()}}, indent=1, sort_keys=True), encoding="utf-8")
            (spec_dir / "assignment.toml").write_text(_spec_text(assignment, support), encoding="utf-8")
            template = stage / f"{master_path.stem}.ipynb"
            nbformat.write(make_template(master_nb), template)
            from grader.kit.readme import write_readme  # what a student needs to reach a first check()
            write_readme(stage, assignment, template.name)

            kit_spec = load_assignment(spec_dir)
            log("grading the master and the samples with the kit")
            differ, compared = [], {}
            for nb in notebooks:
                mine = grade_submission(nb, kit_spec, worker, include_hidden=False)
                compared[nb.name] = (comparable(mine), comparable(full[nb]))
                if comparable(mine) != comparable(full[nb]) or mine.errors:
                    differ.append(f"  - {nb.name}: kit {comparable(mine) or mine.errors}\n"
                                  f"    full {comparable(full[nb])}")
            if differ:
                raise KitError("the kit's results differ from the full grader's, so no kit was written:\n"
                               + "\n".join(differ))
        found = leaks(stage, assignment, [t for t in tests if not t.visible])
        found += leak_forms.answering_functions(rec.answers, leak_forms.package_modules()
                                                + leak_forms.kit_modules(stage))
        if found:
            raise KitError("the kit would leak, so it was not written:\n" + "\n".join(f"  - {f}" for f in found))
        out.mkdir(parents=True, exist_ok=True)
        for item in stage.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, out / item.name)
    return Kit(root=out, notebook=out / template.name, spec_dir=out / KIT_FOLDER / assignment.name,
               tests=[t.nodeid for t in visible], dropped=[t.nodeid for t in tests if not t.visible],
               calls=len(rec.calls), checked=[nb.name for nb in notebooks[2:]] + [master_path.name],
               compared=compared)
