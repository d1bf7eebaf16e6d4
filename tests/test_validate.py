"""`grader validate-assignment`: sound assignments pass every check; each way of breaking one
is caught by its own check, on the real grading path."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nbformat
import pytest

from grader.authoring import assign, validate as v
from grader.authoring.assign import CODE_STUB, make_template
from grader.assignment.spec import load_assignment

REPO = Path(__file__).resolve().parent.parent
CONV_BN = REPO / "assignments" / "conv_bn"
REFERENCE = REPO / "reference" / "conv_bn.py"

EXTRA_TESTS = '''\
from grader.testing import exercise, points


@points(1)
def test_without_exercise(submission):
    submission.model("happyModel")  # passes for the solution, fails for the template


@exercise("happyModel")
def test_without_points(submission):
    submission.model("happyModel")
'''


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grader")
    v.register(p.add_subparsers(dest="command"))
    return p


def copy_conv_bn(root: Path, *, name: str, reference: str | None = None, total: int = 23,
                 with_source: bool = False) -> Path:
    """conv_bn with its own name (the reference module is cached by assignment name)."""
    shutil.copytree(CONV_BN / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(CONV_BN / "faces.py", root / "faces.py")
    (root / "reference.py").write_text(reference if reference is not None else REFERENCE.read_text())
    if with_source:
        shutil.copytree(CONV_BN / "source", root / "source")
        shutil.copytree(CONV_BN / "release", root / "release")
    (root / "assignment.toml").write_text(
        f'name = "{name}"\nreference = "reference.py"\n'
        'exercises = ["standardize", "batchnorm_forward", "happyModel", "convolutional_model"]\n'
        f'support = ["faces.py"]\ncall_timeout = 30\ntotal_points = {total}\nsecret = "s"\n')
    return root


def lines_marked(report: v.Report, mark: str) -> list[str]:
    return [i.title for i in report.items if i.mark == mark]


# ---------------------------------------------------------------- no grading needed

def test_master_generated_from_the_reference_becomes_a_stubbed_template():
    nb = v.master_from_reference(load_assignment("conv_bn"))
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags == [[], ["standardize"], ["batchnorm_forward"], ["happyModel"], ["convolutional_model"]]
    assert "import numpy as np" in nb.cells[0].source and "def _channel_axes" in nb.cells[0].source
    assert "__future__" not in nb.cells[0].source
    template = make_template(nb)
    happy = template.cells[3].source
    assert happy.startswith("def happyModel():\n") and '"""Conv -> BN -> ReLU' in happy  # docstring kept
    assert happy.rstrip().endswith("    " + CODE_STUB[1]) and "tfl.ReLU()" not in happy


def test_unknown_assignment_is_a_usage_error(capsys):
    assert v.run(parser().parse_args(["validate-assignment", "no_such_assignment"])) == 2
    assert "unknown assignment 'no_such_assignment'" in capsys.readouterr().err


def test_tests_that_do_not_collect_fail_without_grading(tmp_path, capsys):
    root = copy_conv_bn(tmp_path / "uncollectable", name="conv_bn_uncollectable")
    (root / "tests" / "test_broken.py").write_text("def test_x(:\n    pass\n")
    assert v.run(parser().parse_args(["validate-assignment", str(root)])) == 1
    out = capsys.readouterr().out
    assert "✘ the tests collect" in out and "test_broken.py" in out
    assert "– the reference solution scores full marks" in out and "not checked" in out


def test_help_reads_well():
    help_text = parser()._subparsers._group_actions[0].choices["validate-assignment"].format_help()
    for phrase in ("reference solution", "template", "total_points", "Exit status 0"):
        assert phrase in help_text


# ---------------------------------------------------------------- grader assign

def assign_cli(*argv: str) -> int:
    p = argparse.ArgumentParser(prog="grader")
    assign.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["assign", *argv])
    return args.handler(args)


def test_assign_writes_the_release_from_the_percent_master(tmp_path, capsys):
    out = tmp_path / "release"
    assert assign_cli(str(CONV_BN / "source" / "conv_bn.py"), "--out", str(out),
                      "--copy", str(CONV_BN / "faces.py")) == 0
    assert (out / "conv_bn.ipynb").read_bytes() == (CONV_BN / "release" / "conv_bn.ipynb").read_bytes()
    assert (out / "faces.py").read_bytes() == (CONV_BN / "faces.py").read_bytes()
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out / 'conv_bn.ipynb'}: 4 graded cells (standardize, batchnorm_forward, "
                           "happyModel, convolutional_model), 12 locked cells, 2 written answer cells "
                           "(why_bn_after_conv, standardize_inputs); copied faces.py")


def test_assign_reports_an_unusable_master_and_a_missing_file(tmp_path, capsys):
    master = tmp_path / "hw.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n", metadata={"tags": ["f"]})]), master)
    assert assign_cli(str(master), "--out", str(tmp_path / "out")) == 1
    assert "'### BEGIN SOLUTION' on line 2 is never closed" in capsys.readouterr().err
    assert assign_cli(str(tmp_path / "missing.py"), "--out", str(tmp_path / "out")) == 2
    assert "missing.py: no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- graded on the sandbox

@pytest.mark.slow
def test_conv_bn_is_sound(capsys, monkeypatch, worker):
    # The command's own path, on the session's sandbox worker instead of a fresh one (a
    # TensorFlow import saved); validate-assignment starting its own worker is run by
    # test_scaffold, in a subprocess.
    validate = v.validate
    monkeypatch.setattr(v, "validate", lambda name, **kw: validate(name, worker, **kw))
    assert v.run(parser().parse_args(["validate-assignment", "conv_bn"])) == 0
    out = capsys.readouterr().out
    assert "✘" not in out and out.count("✔") == 12, out
    assert "✔ the reference solution (source/conv_bn.ipynb) scores full marks: 23 / 23" in out
    assert "✔ the untouched template (release/conv_bn.ipynb) scores zero: 0 / 23" in out
    assert "✔ release/conv_bn.ipynb is the template made from source/conv_bn.ipynb" in out
    assert "✔ the points add up to total_points = 23: 23 over 9 tests, 2 hidden" in out
    assert "✔ the samples score what they declare: 8 of 8" in out
    assert "✔ every `depends` names a test that runs before it" in out
    assert ("✔ the written questions have their answer cells: why_bn_after_conv, standardize_inputs (tagged in "
            "the master, only the placeholder in the template, found without their tags)") in out
    assert out.rstrip().endswith("All 12 checks passed: conv_bn is ready to release.")


def test_an_assignment_without_master_is_checked_from_its_reference(tmp_path, worker):
    root = copy_conv_bn(tmp_path / "generated", name="conv_bn_generated")
    report = v.validate(root, worker)
    assert report.ok, report.render()
    assert "the reference solution (generated from reference.py) scores full marks: 23 / 23" in \
        lines_marked(report, "✔")
    assert "the untouched template (made from the generated master) scores zero: 0 / 23" in lines_marked(report, "✔")


def test_a_broken_copy_fails_exactly_the_checks_it_breaks(tmp_path, worker):
    broken_reference = REFERENCE.read_text().replace(
        "        tfl.BatchNormalization(axis=3),\n        tfl.ReLU(),\n",
        "        tfl.ReLU(),\n        tfl.BatchNormalization(axis=3),\n")
    assert broken_reference != REFERENCE.read_text()
    root = copy_conv_bn(tmp_path / "broken", name="conv_bn_broken", reference=broken_reference, total=30,
                        with_source=True)
    (root / "tests" / "test_extra.py").write_text(EXTRA_TESTS)
    release = nbformat.read(root / "release" / "conv_bn.ipynb", as_version=4)
    release.cells[0].source += "\n\nEdited by hand after the build."
    nbformat.write(release, root / "release" / "conv_bn.ipynb")

    report = v.validate(root, worker)
    text = report.render()
    assert not report.ok
    failed = {i.title.split(":")[0]: i for i in report.items if i.ok is False}
    assert set(failed) == {
        "every test names one of the spec's exercises", "every test has points",
        "the points add up to total_points = 30", "release/conv_bn.ipynb is the template made from source/conv_bn.ipynb",
        "the reference solution (source/conv_bn.ipynb) scores full marks"}, text
    assert failed["every test names one of the spec's exercises"].details == [
        "test_extra.py::test_without_exercise: no exercise marker "
        "(add `pytestmark = exercise(\"NAME\")` or @exercise(\"NAME\"))"]
    assert failed["every test has points"].details == [
        "test_extra.py::test_without_points: no points marker (add @points(N); without it the test counts 1 point)"]
    assert "the tests give 25 (11 tests, 2 hidden)" in failed["the points add up to total_points = 30"].title
    reference_problems = "\n".join(failed["the reference solution (source/conv_bn.ipynb) scores full marks"].details)
    assert "happyModel · layer order: 0 / 4" in reference_problems
    assert "standardize" not in reference_problems  # only what actually failed is listed
    assert "✔ the untouched template (release/conv_bn.ipynb) scores zero: 0 / 25" in text
    assert text.rstrip().endswith("5 of 10 checks did not pass: fix them before releasing conv_bn_broken.")


def test_samples_are_graded_against_the_score_they_declare(tmp_path, worker):
    root = copy_conv_bn(tmp_path / "samples", name="conv_bn_samples")
    (root / "samples").mkdir()
    for name, declared in (("correct", 23), ("bn_missing", 17), ("relu_before_bn", None),
                           ("mixed", "twelve")):
        nb = nbformat.read(CONV_BN / "samples" / f"{name}.ipynb", as_version=4)
        nb.metadata["grader"].pop("expected_score", None)
        if declared is not None:
            nb.metadata["grader"]["expected_score"] = declared
        nbformat.write(nb, root / "samples" / f"{name}.ipynb")
    (root / "samples" / "notes.ipynb").write_text("{ not json")

    report = v.validate(root, worker)
    item = report.items[-1]
    assert item.title.startswith("the samples score what they declare: 1 of 4"), report.render()
    assert item.ok is False and not report.ok
    details = "\n".join(item.details)
    # the wrong declaration names the sample, the expected and the actual score, and what was lost
    assert "samples/bn_missing.ipynb: expected 17, got 16 / 23 (lost: " in details, details
    assert "convolutional_model" in details and "layer graph: 0 / 4" in details, details
    assert "samples/mixed.ipynb: metadata grader.expected_score is 'twelve', not a number" in details
    assert "samples/notes.ipynb: cannot be read" in details
    assert "correct.ipynb" not in details and "relu_before_bn" not in details  # right, or declares nothing
    assert report.render().rstrip().endswith("1 of 10 checks did not pass: fix them before releasing "
                                             "conv_bn_samples.")


@pytest.mark.slow
def test_jobs_grade_in_parallel_processes_with_the_same_verdicts(tmp_path, worker):
    """`--jobs 2` grades the reference, the template and the samples in the class batch's
    grading processes (each with its own sandbox worker); every check comes out exactly as
    with one job on one worker, failures and their details included."""
    root = copy_conv_bn(tmp_path / "parallel", name="conv_bn_parallel")
    (root / "samples").mkdir()
    for name, declared in (("correct", 23), ("bn_missing", 17)):
        nb = nbformat.read(CONV_BN / "samples" / f"{name}.ipynb", as_version=4)
        nb.metadata["grader"]["expected_score"] = declared
        nbformat.write(nb, root / "samples" / f"{name}.ipynb")
    args = parser().parse_args(["validate-assignment", str(root), "--jobs", "2"])
    assert args.jobs == 2
    one = v.validate(root, worker)
    parallel = v.validate(root, jobs=args.jobs)
    assert [(i.title, i.ok, i.details) for i in parallel.items] == [(i.title, i.ok, i.details) for i in one.items]
    assert not parallel.ok and "samples/bn_missing.ipynb: expected 17, got 16 / 23" in parallel.render()


def test_jobs_must_be_a_positive_whole_number(capsys):
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parser().parse_args(["validate-assignment", "conv_bn", "--jobs", bad])
        assert "--jobs takes a whole number of processes, 1 or more" in capsys.readouterr().err


def test_depends_that_name_no_test_or_a_later_one_are_reported():
    C = v.Collected
    tests = [C("test_b.py::test_second", "second", 1, "visible", ("test_a.py::test_first",)),
             C("test_a.py::test_first", "first", 1, "visible"),
             C("test_a.py::test_waits", "first", 1, "visible", ("test_later", "test_gone")),
             C("test_a.py::test_later", "first", 1, "visible"),
             C("test_a.py::test_whole", "first", 1, "visible", (), ("second", "third"))]
    problems = v.dependency_problems(tests, ("first", "second"))
    assert problems == [
        "test_a.py::test_waits: depends on `test_later`, which runs after it (tests run in the spec's order "
        "of exercises, then in file order)",
        "test_a.py::test_waits: depends on `test_gone`, which is not a test of this assignment",
        "test_a.py::test_whole: depends on exercise `second`, whose tests do not run before it (list `second` "
        "earlier in the spec's exercises)",
        "test_a.py::test_whole: depends on exercise `third`, not one of the spec's exercises"]
    # test_b's dependency in another file runs first (its exercise comes first): no problem.


def test_collection_ignores_a_same_named_test_module_another_folder_left_loaded(tmp_path, monkeypatch):
    """A student kit's copy of a test file (hidden tests removed) imported earlier in the
    process must not stand in for the assignment's own file when it is validated."""
    import importlib.util
    import sys

    from grader.assignment.spec import load_assignment
    a = load_assignment("conv_bn")
    own = len(v.collect_tests(a).tests)
    copy = tmp_path / "test_happy_model.py"
    copy.write_text("def test_only_one():\n    pass\n")
    spec = importlib.util.spec_from_file_location("test_happy_model", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "test_happy_model", module)
    tests = v.collect_tests(a).tests
    assert len(tests) == own and not any("test_only_one" in t.nodeid for t in tests), [t.nodeid for t in tests]
