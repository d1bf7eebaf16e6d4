"""The student kit (`grader export student`): no solutions in it, results equal to the full
grader's, refused when a visible test is not kit-safe, and usable from a wheel install with
no repository in sight."""
from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from grader.assignment.spec import AssignmentError, load_assignment, resolve
from grader.kit import safety
from grader.kit.export import KitError, build_kit, leaks
from grader.kit.replay import NotRecorded, Replay
from grader.kit.values import Store, call_key, decode

REPO = Path(__file__).resolve().parent.parent
CONV_BN = REPO / "assignments" / "conv_bn"
SAMPLES = sorted((CONV_BN / "samples").glob("*.ipynb"))
PYTHON = sys.executable


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADER_ASSIGNMENTS")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(load_assignment("conv_bn"), tmp_path_factory.mktemp("kit") / "conv_bn_kit")


# ---------------------------------------------------------------- what the kit holds

@pytest.mark.slow
def test_the_kit_holds_the_template_support_files_and_visible_tests_only(kit):
    files = sorted(str(p.relative_to(kit.root)) for p in kit.root.rglob("*") if p.is_file())
    assert "conv_bn.ipynb" in files and "faces.py" in files
    spec = kit.spec_dir / "assignment.toml"
    text = spec.read_text()
    assert "secret" not in text and "probes" not in text and 'reference = "answers/answers.json"' in text
    assert sorted(p.name for p in (kit.spec_dir / "tests").glob("*.py")) == sorted(
        p.name for p in (CONV_BN / "tests").glob("*.py"))
    answers = kit.spec_dir / "answers"
    assert {p.suffix for p in answers.iterdir()} <= {".json", ".npz", ".npy"}
    assert not [f for f in files if f.endswith(".py") and not f.startswith(("faces.py", "selfcheck/conv_bn/tests/",
                                                                           "selfcheck/conv_bn/faces.py"))]
    for path in answers.glob("*.npz"):
        with np.load(path, allow_pickle=False) as data:  # arrays only: nothing to unpickle
            assert all(data[k].dtype != object for k in data.files)
    template = json.loads((kit.root / "conv_bn.ipynb").read_text())
    graded = {c["metadata"]["grader"]["exercise"]: "".join(c["source"]) for c in template["cells"]
              if c["metadata"].get("grader", {}).get("grade")}
    assert sorted(graded) == sorted(load_assignment("conv_bn").exercises)
    assert all("raise NotImplementedError()" in source for source in graded.values())
    assert len(kit.tests) == 7 and sorted(t.split("::")[-1] for t in kit.dropped) == [
        "test_other_ranks_and_eps", "test_output_for_another_input_shape"]
    # The other input shape, which its test file says is never shown to students, is not in the kit.
    kit_test = (kit.spec_dir / "tests" / "test_convolutional_model.py").read_text()
    assert "OTHER_SHAPE" not in kit_test and "(48, 32, 3)" not in kit_test
    assert not [p for p in answers.iterdir() if "48, 32" in p.read_bytes().decode("utf-8", "replace")]


def _reference_bodies() -> list[tuple[str, str]]:
    """Every function body of every reference module, independently of the exporter."""
    found = []
    for path in sorted((REPO / "reference").glob("*.py")):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                body = [b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
                if body:
                    segment = "\n".join(ast.get_source_segment(source, b) for b in body)
                    found.append((f"{path.name}:{node.name}", " ".join(segment.split())))
    return found


def _hidden_tests() -> list[tuple[str, str]]:
    found = []
    for path in sorted((CONV_BN / "tests").glob("test_*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and any(
                    "hidden" in ast.unparse(d) for d in node.decorator_list):
                found.append((node.name, " ".join(ast.get_source_segment(source, node).split())))
    return found


@pytest.mark.slow
def test_nothing_in_the_kit_leaks_a_solution_a_hidden_test_or_the_secret(kit):
    secret = load_assignment("conv_bn").secret
    hidden = _hidden_tests()
    bodies = [(name, body) for name, body in _reference_bodies() if len(body) > 30]
    assert hidden and len(bodies) > 5  # the scan has something to find
    for path in (p for p in kit.root.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        text = raw.decode("utf-8", "replace")
        flat = " ".join(text.split())
        assert secret.encode() not in raw, path
        for name, body in bodies:
            assert body not in flat, f"{path} holds the body of {name}"
        for name, code in hidden:
            assert name not in text and code not in flat, f"{path} holds hidden test {name}"


def test_the_leak_scan_finds_a_reference_body_a_hidden_test_and_the_secret(tmp_path):
    assignment = load_assignment("conv_bn")
    hidden = [t for t in safety.collect(assignment) if not t.visible]
    body = ast.parse(Path(assignment.reference).read_text())
    happy = next(n for n in body.body if isinstance(n, ast.FunctionDef) and n.name == "happyModel")
    (tmp_path / "a.py").write_text(ast.unparse(happy))
    (tmp_path / "b.txt").write_text(f"note: {assignment.secret}")
    (tmp_path / "c.py").write_text("# see test_other_ranks_and_eps\n")
    found = leaks(tmp_path, assignment, hidden)
    assert any("a.py holds the body of reference function `happyModel`" in f for f in found), found
    assert any("b.txt holds the assignment's secret" in f for f in found), found
    assert any("c.py names hidden test `test_other_ranks_and_eps`" in f for f in found), found


def test_the_leak_scan_finds_a_model_config_a_saved_model_and_a_function_that_answers_alike(tmp_path):
    from grader.checks.standardize import make_hidden_standardize_inputs
    from grader.kit.leak_forms import answering_functions, kit_modules, package_modules

    assignment = load_assignment("conv_bn")
    config = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "Dense", "config": {"units": 1}}]}}
    (tmp_path / "m.json").write_text(json.dumps({"answers": [config]}))
    (tmp_path / "w.keras").write_bytes(b"PK\x03\x04")
    (tmp_path / "graph.json").write_text(json.dumps({"graph": {"kind": "Dense"}}))
    found = leaks(tmp_path, assignment, [])
    assert any("m.json holds a Keras model config (Sequential)" in f for f in found), found
    assert any("w.keras is a saved model file" in f for f in found), found
    assert not any("graph.json" in f for f in found), found

    (tmp_path / "helpers.py").write_text(textwrap.dedent("""\
        import numpy as np

        def tidy(a, b):
            m, s = a.mean(axis=(0, 1, 2)), a.std(axis=(0, 1, 2))
            return ((a - m) / s).astype(np.float32), ((b - m) / s).astype(np.float32)

        def unrelated(a, b):
            return a + b
        """))
    sys.path.insert(0, str(REPO))
    from reference.conv_bn import standardize

    X_train, X_test = make_hidden_standardize_inputs(3)
    calls = [("standardize", (X_train, X_test), {}, standardize(X_train, X_test))]
    named = answering_functions(calls, kit_modules(tmp_path))
    assert len(named) == 1 and "`_grader_kit_scan_helpers.tidy` returns what reference.standardize" in named[0]
    # the package students install answers nothing like the reference
    assert answering_functions(calls, package_modules()) == []


def borrowing_notebook(kit, path: Path) -> Path:
    """The correct sample with three exercises answered by what once earned marks: the
    former reference functions of grader.checks, and model_from_json of the kit's
    recorded happyModel."""
    import nbformat

    answers = json.loads((kit.spec_dir / "answers" / "answers.json").read_text())
    happy = next(v["value"]["$graph_model"] for v in answers["calls"].values() if v["function"] == "happyModel")
    pasted = (kit.spec_dir / "answers" / f"{happy}.graph.json").read_text()
    bodies = {
        "standardize": "def standardize(X_train, X_test):\n"
                       "    from grader.checks.standardize import reference_standardize\n"
                       "    return reference_standardize(X_train, X_test)\n",
        "batchnorm_forward": "def batchnorm_forward(x, gamma, beta, eps=1e-3):\n"
                             "    from grader.checks.batchnorm import reference_batchnorm\n"
                             "    return reference_batchnorm(x, gamma, beta, eps)\n",
        "happyModel": f"def happyModel():\n    import tensorflow as tf\n"
                      f"    return tf.keras.models.model_from_json({pasted!r})\n",
    }
    nb = nbformat.read(CONV_BN / "samples" / "correct.ipynb", as_version=4)
    for cell in nb.cells:
        tags = set(cell.metadata.get("tags", []))
        for name, body in bodies.items():
            if name in tags:
                cell.source = body
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_former_reference_functions_and_a_pasted_kit_model_earn_nothing(kit, tmp_path, worker):
    """What once scored: calling grader.checks' reference_standardize / reference_batchnorm
    (5/5 and 3/3 from check()), or returning model_from_json(...) of the kit's recorded
    happyModel (14/23 in full grading with no layer written)."""
    import nbformat

    from grader.run.grading import grade_submission

    path = borrowing_notebook(kit, tmp_path / "borrowed.ipynb")
    for assignment, hidden in ((load_assignment(kit.spec_dir), False), (load_assignment("conv_bn"), True)):
        result = grade_submission(path, assignment, worker, include_hidden=hidden)
        earned: dict[str, float] = {}
        for test in result.tests:
            earned[test.exercise] = earned.get(test.exercise, 0.0) + test.score
        assert earned["standardize"] == earned["batchnorm_forward"] == earned["happyModel"] == 0.0, earned
        assert earned["convolutional_model"] > 0  # the notebook was graded, its own work counted


@pytest.mark.slow
def test_kit_results_equal_the_full_graders_visible_results_on_every_sample(kit):
    assert set(kit.compared) >= {p.name for p in SAMPLES} and len(SAMPLES) >= 5
    for name, (mine, full) in kit.compared.items():
        assert mine == full, name
    correct = kit.compared["correct.ipynb"][0]
    assert [r[2] for r in correct] == ["passed"] * 7
    relu = {r[0] + ":" + r[1]: r for r in kit.compared["relu_before_bn.ipynb"][0]}
    assert relu["test_layer_order:happyModel"][2] == "failed"
    assert "ReLU comes before BatchNormalization" in relu["test_layer_order:happyModel"][5]


@pytest.mark.slow
def test_the_replayed_reference_answers_recorded_calls_and_names_the_others(kit):
    from grader.checks.graph import layer_graph
    from grader.kit.models import NotRecordedOutput, RecordedModel

    replay = Replay.open(kit.spec_dir / "answers" / "answers.json")
    model = replay.convolutional_model((64, 64, 3))
    assert isinstance(model, RecordedModel)  # the checks' view of the reference, not a Keras model
    kinds = [s.kind for s in layer_graph(model).specs]
    assert kinds[:4] == ["Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D"] and kinds[-1] == "Dense"
    assert layer_graph(model).nodes[0].input_shape == (None, 64, 64, 3)
    assert replay.convolutional_model((64, 64, 3)) is model  # read once, like the real reference's
    with pytest.raises(NotRecordedOutput, match=r"no output of this reference model.*\(4, 64, 64, 3\)"):
        model(np.zeros((4, 64, 64, 3), np.float32), training=False)
    with pytest.raises(NotRecorded, match=r"reference\.convolutional_model\(\(32, 32, 3\)\).*not kit-safe"):
        replay.convolutional_model((32, 32, 3))
    # every reference function a visible test asks is recorded now (standardize too, the checks'
    # right answer): a function no visible test asked is named as such
    with pytest.raises(NotRecorded, match="no answers of reference.small_net"):
        replay.small_net(True)


@pytest.mark.slow
def test_no_model_in_the_kit_rebuilds_and_the_answers_hold_only_data(kit):
    from grader.kit.leak_forms import rebuildable_models

    assert rebuildable_models(kit.root) == []
    answers = kit.spec_dir / "answers"
    graphs = sorted(answers.glob("*.graph.json"))
    assert len(graphs) == 2  # happyModel and convolutional_model
    for path in graphs:
        text = path.read_text()
        # what a Keras config would need to rebuild: a per-layer `config`, a model config, a version
        assert '"config":' not in text and "model_config" not in text and "keras_version" not in text


def test_the_visible_seed_is_independent_of_the_secret():
    """A kit's seed for visible tests once was an unsalted hash of the secret, and a short
    secret was found from it by trying candidates: now no value derived from it is written."""
    import dataclasses
    import hashlib

    from grader.kit.replay import public_visible_seed, visible_secret

    conv_bn = load_assignment("conv_bn")
    other = dataclasses.replace(conv_bn, secret="x")
    assert visible_secret(conv_bn) == visible_secret(other) == public_visible_seed("conv_bn", conv_bn.version)
    assert conv_bn.secret not in visible_secret(conv_bn)
    for text in (conv_bn.secret, f"grader-visible-tests:{conv_bn.secret}"):
        assert hashlib.sha256(text.encode()).hexdigest() != visible_secret(conv_bn)
    assert public_visible_seed("conv_bn", "2") != visible_secret(conv_bn)  # a new version draws other inputs


@pytest.mark.slow
def test_the_kit_writes_no_value_derived_from_the_secret(kit):
    from grader.kit.replay import public_visible_seed

    data = json.loads((kit.spec_dir / "answers" / "answers.json").read_text())
    assert data["visible_secret"] == public_visible_seed("conv_bn", load_assignment("conv_bn").version)


# ---------------------------------------------------------------- kit-safety

def test_recorded_values_round_trip_as_data(tmp_path):
    store = Store(tmp_path)
    value = {"a": (np.arange(6, dtype=np.float32).reshape(2, 3), 3, 2.5, float("nan")), "b": [np.float32(1.5), None]}
    back = decode(store.encode(value), tmp_path)
    assert back["a"][0].dtype == np.float32 and back["a"][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["a"][1:3] == (3, 2.5) and np.isnan(back["a"][3]) and back["b"] == [np.float32(1.5), None]
    assert call_key("f", (np.zeros(3),), {}) == call_key("f", (np.zeros(3),), {})
    assert call_key("f", (np.zeros(3),), {}) != call_key("f", (np.zeros(3, dtype=np.float32),), {})
    with pytest.raises(ValueError, match="should not"):
        decode({"$npy": "../../etc/passwd"}, tmp_path)


def _function(code: str) -> ast.FunctionDef:
    return ast.parse(textwrap.dedent(code)).body[0]


def test_a_reference_call_fed_from_the_submission_is_named():
    assert safety.static_problems(_function("""
        def test_ok(submission, reference):
            expect(reference.happyModel(), submission.model("happyModel"))
    """)) == []
    problems = safety.static_problems(_function("""
        def test_bad(submission, reference, hidden_rng):
            x = hidden_rng.normal(size=3)
            y = submission.call("f", 1)
            for z in [y]:
                reference.f(z)
            reference.g(x * 2)
            helper(reference)
    """))
    assert any("reference.f(...) is given z" in p for p in problems), problems
    assert any("the reference itself is passed to helper" in p for p in problems), problems
    # a visible test's hidden_rng draws the same inputs for every submission: recordable
    assert not any("reference.g" in p for p in problems), problems


def test_the_visible_part_of_a_test_file_drops_hidden_tests_and_their_helpers():
    source = textwrap.dedent('''\
        """Doc."""
        import numpy as np
        from grader.testing import hidden, points

        SHAPE = (2, 3)
        # Never shown to students.
        SECRET_SHAPE = (5, 7)


        def _only_hidden(x):
            return x + SECRET_SHAPE[0]


        @points(1)
        def test_visible(submission):
            assert submission.call("f", np.zeros(SHAPE)) is not None


        @points(1)
        @hidden
        def test_hidden_one(submission):
            assert _only_hidden(1)
        ''')
    out = safety.visible_source(source, {"test_visible"}, {"test_hidden_one"})
    assert "test_visible" in out and "SHAPE = (2, 3)" in out
    for gone in ("test_hidden_one", "_only_hidden", "SECRET_SHAPE", "Never shown"):
        assert gone not in out, out
    compile(out, "kit", "exec")


def _tiny_assignment(root: Path, tests: str, conftest: str = "") -> Path:
    import nbformat
    (root / "tests").mkdir(parents=True)
    (root / "source").mkdir()
    (root / "assignment.toml").write_text(
        'name = "tiny"\nreference = "reference.py"\nexercises = ["double"]\nsecret = "tiny-secret-41f"\n'
        "call_timeout = 20\n")
    (root / "reference.py").write_text("import numpy as np\n\n\ndef double(x):\n    return np.asarray(x) * 2.0\n")
    (root / "tests" / "test_double.py").write_text(textwrap.dedent(tests))
    if conftest:
        (root / "tests" / "conftest.py").write_text(textwrap.dedent(conftest))
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np"),
        nbformat.v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return np.asarray(x) * 2.0\n"
                                  "    ### END SOLUTION\n", metadata={"tags": ["double"]})])
    nbformat.write(nb, root / "source" / "tiny.ipynb")
    return root


HEADER = """\
    import numpy as np
    from grader.testing import depends, exercise, hidden, points
    pytestmark = exercise("double")
"""


def test_export_refuses_a_test_that_feeds_the_reference_the_students_answer_naming_it(tmp_path):
    root = _tiny_assignment(tmp_path / "tiny", HEADER + """
    def test_fixed(submission, reference):
        x = np.arange(3.0)
        assert np.allclose(submission.call("double", x), reference.double(x))

    def test_derived(submission, reference):
        y = submission.call("double", np.ones(2))
        assert np.allclose(reference.double(y / 2), y)

    @hidden
    def test_secret(submission):
        assert submission.call("double", 1.0) == 2.0

    @depends("test_secret")
    def test_after_secret(submission):
        assert submission.call("double", 2.0) == 4.0
    """)
    with pytest.raises(KitError) as caught:
        build_kit(load_assignment(root), tmp_path / "out")
    message = str(caught.value)
    assert "test_double.py::test_derived" in message and "reference.double(...) is given y" in message
    assert "test_after_secret: it depends on hidden test `test_secret`" in message
    assert "test_fixed" not in message
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.slow
def test_export_refuses_reference_inputs_that_change_between_submissions(tmp_path):
    """A fixture built on the submission hides the dependency from a reading of the test: the
    export sees it when two correct submissions with different content ask different things."""
    root = _tiny_assignment(tmp_path / "tiny", HEADER + """
    def test_fixed(submission, reference):
        assert np.allclose(submission.call("double", np.arange(3.0)), reference.double(np.arange(3.0)))

    def test_per_submission(submission, reference, inputs):
        assert np.allclose(submission.call("double", inputs), reference.double(inputs))
    """, conftest="""
    import numpy as np
    import pytest

    @pytest.fixture
    def inputs(submission):
        return np.random.default_rng(int(submission.digest[:8], 16)).normal(size=4)
    """)
    with pytest.raises(KitError) as caught:
        build_kit(load_assignment(root), tmp_path / "out", samples=False)
    message = str(caught.value)
    assert "test_double.py::test_per_submission" in message and "change with the submission's content" in message
    assert "test_fixed" not in message


# ---------------------------------------------------------------- finding assignments

def _fake_assignment(folder: Path, name: str) -> Path:
    (folder / name).mkdir(parents=True)
    (folder / name / "ref.py").write_text("")
    (folder / name / "assignment.toml").write_text(f'name = "{name}"\nreference = "ref.py"\nexercises = ["f"]\n')
    return folder / name


def test_assignments_are_found_next_to_the_notebook_then_in_grader_assignments(tmp_path, monkeypatch):
    near = tmp_path / "student"
    kit_copy = _fake_assignment(near / "selfcheck", "conv_bn")
    elsewhere = _fake_assignment(tmp_path / "course", "week3")
    monkeypatch.delenv("GRADER_ASSIGNMENTS", raising=False)
    assert resolve("conv_bn", near=near) == kit_copy.resolve()  # the kit wins over the repository's
    assert resolve("conv_bn") == CONV_BN.resolve()
    with pytest.raises(AssignmentError, match="set GRADER_ASSIGNMENTS"):
        resolve("week3", near=near)
    monkeypatch.setenv("GRADER_ASSIGNMENTS", str(tmp_path / "course"))
    assert resolve("week3") == elsewhere.resolve()
    assert resolve(str(elsewhere)) == elsewhere.resolve()  # by path, always


# ---------------------------------------------------------------- a wheel and a kit, no repository

def _fresh_venv(tmp_path: Path) -> Path:
    """A venv holding the grader's wheel and, hard-linked (no download), the dev venv's
    dependencies minus the editable grader."""
    wheels, source = tmp_path / "wheels", tmp_path / "source"
    # Built from a copy: setuptools writes build/ into the source folder, which a concurrent
    # build in the checkout would share.
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, source / name)
    shutil.copytree(REPO / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(wheels)], check=True, cwd=tmp_path, env=_env(), capture_output=True)
    base = Path(sys.base_prefix) / "bin" / "python3"
    venv = tmp_path / "venv"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / "lib" / version / "site-packages"
    dev_site = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p, "numpy").is_dir()))
    for entry in dev_site.iterdir():
        if entry.name.startswith(("grader", "__editable__", "__pycache__")):
            continue
        subprocess.run(["cp", "-al", str(entry), str(site / entry.name)], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site),
                    str(next(wheels.glob("grader-*.whl")))], check=True, env=_env(), capture_output=True)
    return venv / "bin" / "python"


def _tests_of(json_line: str) -> list[tuple]:
    data = json.loads(json_line)
    return [(t["exercise"], t["name"], t["status"], t["score"], t["output"], t["diagnosis"]) for t in data["tests"]]


@pytest.mark.slow
def test_a_wheel_install_with_the_kit_grades_like_the_full_grader(kit, tmp_path):
    python = _fresh_venv(tmp_path)
    student = tmp_path / "student"
    shutil.copytree(kit.root, student)
    for name in ("correct", "relu_before_bn"):
        shutil.copyfile(CONV_BN / "samples" / f"{name}.ipynb", student / f"{name}.ipynb")
    probe = subprocess.run(
        [str(python), "-c", "import grader, importlib.util as u, grader.assignment.spec as a; print(grader.__file__); "
                            "print(u.find_spec('reference')); print(a.ASSIGNMENTS_DIR.exists())"],
        cwd=student, env=_env(), capture_output=True, text=True, check=True)
    where, reference_spec, repo_assignments = probe.stdout.split()
    assert where.startswith(str(tmp_path / "venv")), where
    assert reference_spec == "None" and repo_assignments == "False"  # no solutions importable

    def start(cmd, cwd):
        return subprocess.Popen(cmd, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    outputs = {}
    for name in ("correct", "relu_before_bn"):  # two at a time: 2 cores
        procs = {
            "kit": start([str(python), "-m", "grader", "check", f"{name}.ipynb", "--format", "json"], student),
            "full": start([PYTHON, "-m", "grader", "check", str(CONV_BN / "samples" / f"{name}.ipynb"),
                           "--assignment", "conv_bn", "--format", "json"], REPO),
        }
        for which, proc in procs.items():
            out, err = proc.communicate(timeout=600)
            assert proc.returncode in (0, 1), err
            outputs[name, which] = _tests_of(out.strip().splitlines()[-1])
    assert outputs["correct", "kit"] == outputs["correct", "full"]
    assert [t[2] for t in outputs["correct", "kit"]] == ["passed"] * 7
    assert outputs["relu_before_bn", "kit"] == outputs["relu_before_bn", "full"]
    failed = [t for t in outputs["relu_before_bn", "kit"] if t[2] == "failed"]
    assert failed and "ReLU comes before BatchNormalization" in failed[0][4]

    # What once earned 5/5, 3/3 and the happyModel points from a student's own install:
    # the grader is importable there, but no longer holds a working answer or a model.
    borrowing_notebook(kit, student / "borrowed.ipynb")
    proc = start([str(python), "-m", "grader", "check", "borrowed.ipynb", "--format", "json"], student)
    out, err = proc.communicate(timeout=600)
    borrowed = _tests_of(out.strip().splitlines()[-1])
    earned = {e: sum(t[3] for t in borrowed if t[0] == e) for e in {t[0] for t in borrowed}}
    assert earned["standardize"] == earned["batchnorm_forward"] == earned["happyModel"] == 0, borrowed
    assert earned["convolutional_model"] > 0, borrowed
    said = " ".join(str(t[4]) for t in borrowed)
    assert "reference_standardize" in said and "reference_batchnorm" in said, said


def test_grader_check_without_an_assignment_says_what_to_pass(tmp_path, capsys):
    from grader.cli import main
    shutil.copyfile(CONV_BN / "samples" / "correct.ipynb", tmp_path / "mine.ipynb")
    data = json.loads((tmp_path / "mine.ipynb").read_text())
    data["metadata"].pop("grader", None)  # no assignment named in the notebook either
    (tmp_path / "mine.ipynb").write_text(json.dumps(data))
    assert main(["check", str(tmp_path / "mine.ipynb")]) == 2
    err = capsys.readouterr().err
    assert "say which assignment to check it against (--assignment NAME)" in err and "no student kit in" in err


# ---------------------------------------------------------------- kits for probe exercises

def kit_ready_copy(name: str, dest: Path, master, samples: dict) -> Path:
    """A copy of assignments/NAME with a master and samples, for assignments graded on
    course notebooks that have none in the repository: the reference stays where it is."""
    import re

    import nbformat

    root = dest / name
    shutil.copytree(REPO / "assignments" / name, root, ignore=shutil.ignore_patterns("samples", "__pycache__"))
    spec = (root / "assignment.toml").read_text()
    reference = (REPO / "assignments" / name / re.search(r'^reference = "(.*)"', spec, re.M).group(1)).resolve()
    (root / "assignment.toml").write_text(re.sub(r'^reference = .*$', f'reference = "{reference}"', spec,
                                                 count=1, flags=re.M))
    (root / "source").mkdir(exist_ok=True)
    (root / "samples").mkdir()
    nbformat.write(master, str(root / "source" / f"{name}.ipynb"))
    for sample, nb in samples.items():
        nbformat.write(nb, str(root / "samples" / f"{sample}.ipynb"))
    return root


@pytest.mark.slow
def test_an_assignment_with_probes_gets_a_kit_that_agrees_with_full_grading(tmp_path):
    """dls_c4w2a1's blocks take and return tensors, so every block test runs probes: the kit
    ships them (and the course module's stand-in), and the export's own comparison finds the
    kit's visible results equal to the full grader's on each course-layout variant."""
    from dls_c4w2a1_notebooks import SHORTCUT_ON_MAIN_PATH, course_notebook

    root = kit_ready_copy("dls_c4w2a1", tmp_path, course_notebook("current"), {
        "keras2": course_notebook("keras2"), "helper_names": course_notebook("helper_names"),
        "shortcut_on_main_path": course_notebook(convolutional=SHORTCUT_ON_MAIN_PATH)})
    kit = build_kit(load_assignment(root), tmp_path / "kit")
    spec = (kit.spec_dir / "assignment.toml").read_text()
    assert 'probes = "probes.py"' in spec and (kit.spec_dir / "probes.py").is_file()
    assert '"resnets_utils" = "standins/resnets_utils.py"' in spec and "secret" not in spec
    assert any("identity_block_outputs" in t for t in kit.tests)  # a probe test, kept visible
    assert set(kit.compared) >= {"keras2.ipynb", "helper_names.ipynb", "shortcut_on_main_path.ipynb"}
    for name, (mine, full) in kit.compared.items():
        assert mine == full, name
    by_test = {r[0]: r for r in kit.compared["shortcut_on_main_path.ipynb"][0]}
    assert by_test["test_convolutional_block_shortcut"][2] == "failed"
    assert all(r[2] == "passed" for r in kit.compared["keras2.ipynb"][0])
    # ResNet50's graph is checked in the kit; its 23 M weights are not shipped, as no visible test copies them
    sizes = sum(p.stat().st_size for p in kit.root.rglob("*") if p.is_file())
    assert sizes < 5_000_000, sizes


def test_the_kit_modules_import_one_another_one_way():
    """Shared recording pieces live in grader/kit/plain.py and one module (model_records)
    picks Keras's or PyTorch's recording: no kit module reaches itself through its imports,
    deferred ones inside functions included."""
    kit = REPO / "grader" / "kit"
    edges: dict[str, set[str]] = {}
    for path in kit.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            named = []
            if isinstance(node, ast.ImportFrom) and node.module == "grader.kit":
                named = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grader.kit."):
                named = [node.module.split(".")[2]]
            elif isinstance(node, ast.Import):
                named = [a.name.split(".")[2] for a in node.names if a.name.startswith("grader.kit.")]
            edges.setdefault(path.stem, set()).update(n for n in named if (kit / f"{n}.py").is_file())

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for after in edges.get(todo.pop(), ()):
                if after not in seen:
                    seen.add(after)
                    todo.append(after)
        return seen

    assert edges["plain"] == set(), edges["plain"]
    assert {"models", "torch_models"} <= edges["model_records"]
    assert "torch_models" not in edges["models"] and "models" not in edges["torch_models"]
    circles = sorted(m for m in edges if m in reach(m))
    assert circles == [], {m: sorted(edges[m]) for m in circles}
