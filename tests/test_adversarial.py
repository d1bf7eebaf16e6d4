"""Hostile submissions against the real sandbox: each gets no credit it did not earn, is told
what stopped it, changes no file outside the sandbox, leaves no process behind, and the
correct submission graded right after it, by the same worker, still gets full marks.

The attacks themselves live in tests/adversarial/attacks.py. The worker here is shared by
the whole module (starting one costs ~4 s) and has short limits (3 s per call, 1 GiB of
data per child) so runaway code is stopped quickly without straining the machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "adversarial"))

import attacks  # noqa: E402
import processes  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "reference" / "conv_bn.py"
SECRET = "s3cr3t-value-the-child-must-not-see"
WATCHED = [REPO / "README.md", REFERENCE, REPO / "grader" / "grading.py"]
ABSENT = [REPO / "PWNED", Path("/tmp/grader-pwned"), Path("/tmp/grader-thread-was-here")]
LIMIT_SIGNATURE_DATA = 640 * 1024 ** 2 + 4096  # odd on purpose: tells our workers from others'
SLOW = {"loop_in_class_body", "loop_in_default_argument", "loop_in_graded_function", "ignores_sigterm",
        "stops_itself", "memory_bomb_python", "memory_bomb_numpy", "hangs_up_and_lingers"}


def _digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if p.exists()}


@pytest.fixture(scope="module")
def started_at():
    return processes.now_ticks()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from grader.assignment.spec import load_assignment
    return load_assignment(attacks.write_assignment(tmp_path_factory.mktemp("tiny"), timeout=3))


@pytest.fixture(scope="module")
def worker(started_at):
    from grader.frameworks.sandbox_side import sandbox_side
    from grader.sandbox.client import Limits, Worker
    for path in ABSENT:
        if path.exists():
            path.unlink()
    os.environ[attacks.SECRET_NAME] = SECRET  # in the grader's environment, never in the child's
    # Modest limits: page faults are slow on these VMs (~300 MB/s), and a memory bomb must hit
    # the data limit well before the 3 s timeout. A fresh child holds ~260 MB already.
    limits = Limits(call_timeout=3, data_bytes=LIMIT_SIGNATURE_DATA, cpu_seconds=30, file_bytes=4 * 1024 ** 2)
    before = {p.pid for p in processes.descendants(os.getpid()) if p.sandbox}  # other modules' workers
    w = Worker(framework=sandbox_side(keras="3"), limits=limits, control_timeout=5).start()
    yield w
    w.stop()
    os.environ.pop(attacks.SECRET_NAME, None)
    left = [p for p in processes.descendants(os.getpid()) if p.sandbox and p.pid not in before]
    assert not left, f"sandbox processes outlived the worker: {left}"
    signature = f'"data_bytes": {LIMIT_SIGNATURE_DATA}'
    deadline = time.monotonic() + 5  # a process still dying is not a leak
    while processes.orphans_since(started_at, signature) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes.orphans_since(started_at, signature), "orphaned sandbox processes"


@pytest.fixture(scope="module")
def correct(tmp_path_factory):
    return attacks.write_notebook(tmp_path_factory.mktemp("correct") / "correct.ipynb", attacks.CORRECT)


@pytest.fixture(scope="module")
def fs_before():
    return _digest(WATCHED)


def _grade(path, assignment, worker):
    from grader.run.grading import grade_submission
    return grade_submission(path, assignment, worker)


def _text(test) -> str:
    return " ".join(str(x) for x in (test.message, test.hint, test.student_traceback, test.output) if x)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in attacks.ATTACKS])
def test_attack(name, tmp_path, tiny, worker, correct, fs_before):
    expected = attacks.ATTACKS[name][1]
    cells = attacks.attack_cells(name, repo=REPO, reference=REFERENCE)
    path = attacks.write_notebook(tmp_path / f"{name}.ipynb", cells)
    restarts = worker.restarts

    result = _grade(path, tiny, worker)

    by_name = {t.name: t for t in result.tests}
    assert set(by_name) == {"add", "add hidden", "tiny model"}, result.errors or result.warnings
    for lost in expected["lost"]:
        test = by_name[lost]
        assert test.score == 0 and test.status.value != "passed", f"{lost}: {test}"
    if expected["lost"] and expected["says"]:
        said = " ".join(_text(by_name[n]) for n in expected["lost"]) + " ".join(result.warnings)
        if "No such file" not in expected["says"] or worker.level == "full":
            assert expected["says"].lower() in said.lower(), said
    for kept in expected.get("kept", []):  # a broken `add` costs only `add`'s own calls
        assert by_name[kept].status.value == "passed", f"{kept}: {by_name[kept].message}"
        for lost in expected["lost"]:
            assert "`add`" in by_name[lost].message, f"{lost}: the message must name the call: {by_name[lost].message}"
    if not expected["lost"]:  # the attack answers correctly besides: it earns exactly that
        assert result.score == result.max_score == 3, [(t.name, t.message) for t in result.tests]
    assert result.isolation.startswith(worker.level)
    assert worker.restarts == restarts, "a submission managed to take the worker down"

    after = _grade(correct, tiny, worker)
    assert after.score == after.max_score == 3, [(t.name, t.message) for t in after.tests]

    assert len(processes.sandbox_pythons(worker)) == 1, "a child outlived its submission"
    assert _digest(WATCHED) == fs_before
    if worker.level == "full":
        assert not [p for p in ABSENT if p.exists()], "the sandbox wrote outside its own /tmp"


def test_forged_output_stays_labelled(tmp_path, tiny, worker):
    cells = attacks.attack_cells("forged_output", repo=REPO, reference=REFERENCE)
    result = _grade(attacks.write_notebook(tmp_path / "forged.ipynb", cells), tiny, worker)
    add = next(t for t in result.tests if t.name == "add")
    assert add.score == 0
    assert attacks.MARKER in add.output  # shown, as the student's own output
    assert all(attacks.MARKER not in str(x) for x in (add.message, result.warnings, result.errors))


def test_child_sees_no_secrets_and_no_repository(worker):
    source = (
        "import os, glob\n\n"
        "def look():\n"
        "    seen = {'environ': dict(os.environ), 'proc': []}\n"
        "    for path in glob.glob('/proc/[0-9]*/environ') + glob.glob('/proc/[0-9]*/cmdline'):\n"
        "        try:\n"
        "            seen['proc'].append(open(path, 'rb').read().decode('utf-8', 'replace'))\n"
        "        except OSError:\n"
        "            pass\n"
        f"    seen['repo'] = os.listdir({str(REPO)!r}) if os.path.isdir({str(REPO)!r}) else []\n"
        f"    seen['reference'] = os.path.exists({str(REFERENCE)!r})\n"
        "    seen['root'] = sorted(os.listdir('/'))\n"
        "    seen['root_home'] = os.listdir('/root') if os.path.isdir('/root') else []\n"
        "    return seen\n")
    session = worker.session([{"source": source, "line": 1, "label": "cell 1", "kind": "def"}])
    try:
        seen = session.call("look").value
    finally:
        session.close()
    assert SECRET not in json.dumps(seen)
    assert attacks.SECRET_NAME not in seen["environ"]
    if worker.level == "full":
        # The virtual environment is mounted (read-only) at its own path: nothing else of the repository.
        assert set(seen["repo"]) <= {".venv"} and seen["reference"] is False
        assert "home" not in seen["root"] and set(seen["root_home"]) <= {".pyenv"}  # the interpreter only


def test_what_one_child_leaves_in_tmp_is_gone_for_the_next(worker):
    if worker.level != "full":
        pytest.skip("only bubblewrap gives the worker a /tmp of its own to sweep")
    plant = ("import os, glob\n\ndef plant():\n"
             "    open('/tmp/planted', 'w').write('x')\n"
             "    open('/dev/shm/planted', 'w').write('x')\n"
             "    return os.getcwd()\n\n"
             "def look():\n    return sorted(glob.glob('/tmp/*') + glob.glob('/dev/shm/*'))\n")
    chunks = [{"source": plant, "line": 1, "label": "cell 1", "kind": "def"}]
    first = worker.session(chunks)
    workdir = first.call("plant").value
    first.close()
    second = worker.session(chunks)
    try:
        left = second.call("look").value
    finally:
        second.close()
    assert "/tmp/planted" not in left and "/dev/shm/planted" not in left
    assert workdir not in left  # the first child's own folder went too
    assert len([p for p in left if p.startswith("/tmp/submission-")]) == 1  # only the second's


@pytest.mark.slow
def test_cli_json_stdout_holds_only_the_json(tmp_path, tiny):
    """A forged results line printed by the student never appears as a line of `grader grade` output."""
    cells = attacks.attack_cells("forged_output", repo=REPO, reference=REFERENCE)
    nb = attacks.write_notebook(tmp_path / "forged.ipynb", cells)
    env = {**os.environ, attacks.SECRET_NAME: SECRET}
    proc = subprocess.run([sys.executable, "-m", "grader", "grade", str(nb), "--assignment", str(tiny.root),
                           "--format", "json", "--jobs", "1"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout[:2000]
    data = json.loads(lines[0])
    assert data["score"] < data["max_score"]
    assert data["isolation"]
    add = next(t for t in data["tests"] if t["name"] == "add")
    assert add["score"] == 0 and attacks.MARKER in add["output"]
    for test in data["tests"]:
        test.pop("output", None)
    assert attacks.MARKER not in json.dumps(data)  # nowhere but the student's labelled output
    assert attacks.MARKER not in proc.stderr
    assert SECRET not in proc.stdout
