"""No file, environment or process state a child leaves reaches another child (issue 20).

A student's function that writes what it was given on a hidden test into /tmp (or
/tmp/.keras, /tmp/.cache, /dev/shm, its working folder, $HOME, an environment variable)
and prints it on a later visible test: through real notebooks, the real sandbox at every
isolation level that runs here, and the real renderers, the hidden value never appears
in anything the student reads, while the same student's visible-side notes do come back
(so the places are read). And a child that leaves a folder tree 3,000 levels deep costs
the worker nothing.
"""
from __future__ import annotations

import os
import sys
import shutil
from pathlib import Path

import pytest

from conftest import REPO, notebook
from student_views import student_views
from grader.assignment.spec import load_assignment
from grader.run.grading import grade_submission
from grader.results import Status
from grader.sandbox.cleanup import remove_tree
from grader.frameworks.sandbox_side import sandbox_side
from grader.sandbox.client import Worker

SPEC = """\
name = "stash"
exercises = ["stash"]
reference = "reference.py"
call_timeout = 20
secret = "stash-secret"
"""

REFERENCE = "def stash(x):\n    return x\n"

# In file order: a visible note, the hidden call, then the visible look at every place.
TESTS = '''\
import os

from grader.testing import exercise, hidden, points

VISIBLE_NOTE = 0.123456789


@points(1)
@exercise("stash")
def test_visible_note(submission):
    assert submission.call("stash", VISIBLE_NOTE) == VISIBLE_NOTE


@points(1)
@exercise("stash")
@hidden
def test_hidden_value(submission, hidden_rng):
    value = float(hidden_rng.uniform(1000, 2000))
    with open(os.environ["STASH_HIDDEN_LOG"], "a") as log:
        log.write(repr(value) + "\\n")
    assert submission.call("stash", value) == value


@points(1)
@exercise("stash")
def test_visible_look(submission):
    submission.call("stash", None)
'''

# Every place a child could leave something for a later one, the other processes' views
# of /tmp (their /proc/PID/root) included.
STUDENT = '''\
import glob
import os

def _places():  # (the grader runs only definitions and constants: no top-level calls)
    return ["/tmp/seen.txt", "/tmp/.keras/seen.txt", "/tmp/.cache/seen.txt", "/tmp/.config/seen.txt",
            "/dev/shm/seen.txt", "seen.txt", os.path.join(os.path.expanduser("~"), ".seen.txt")]


def _writable_proc_roots():
    return glob.glob("/proc/[0-9]*/root/tmp")


def stash(x):
    if x is None:
        found = ["env=" + os.environ.get("SEEN", "")]
        patterns = _places() + ["/tmp/*/seen.txt", "/tmp/*/*/seen.txt", "/proc/[0-9]*/root/tmp/seen.txt",
                                "/proc/[0-9]*/cwd/seen.txt"]
        for pattern in patterns:
            for path in glob.glob(pattern):
                try:
                    with open(path) as f:
                        found.append(f.read())
                except OSError:
                    pass
        print("found:", found)
        raise ValueError("found: " + " | ".join(found))
    os.environ["SEEN"] = repr(x)
    for path in _places() + [root + "/seen.txt" for root in _writable_proc_roots()]:
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "a") as f:
                f.write(repr(x) + ";")
        except OSError:
            pass
    return x
'''


@pytest.fixture
def stash(tmp_path, monkeypatch):
    root = tmp_path / "stash"
    (root / "tests").mkdir(parents=True)
    (root / "assignment.toml").write_text(SPEC)
    (root / "reference.py").write_text(REFERENCE)
    (root / "tests" / "test_stash.py").write_text(TESTS)
    log = tmp_path / "hidden.log"
    monkeypatch.setenv("STASH_HIDDEN_LOG", str(log))
    return load_assignment(root), log


def _assert_nothing_hidden_reaches_the_visible_side(tmp_path, stash, worker):
    assignment, log = stash
    path = notebook(tmp_path / "stash.ipynb", STUDENT)
    result = grade_submission(path, assignment, worker)
    tests = {t.name: t for t in result.tests}
    assert tests["hidden value"].status is Status.PASSED, tests["hidden value"].message
    look = tests["visible look"]
    # The look ran and read its places: the visible note it left earlier is there...
    assert "0.123456789" in look.message and "0.123456789" in look.output, look.message
    hidden = float(log.read_text().split()[0])
    assert 1000 <= hidden <= 2000
    # ...and nothing of the hidden call, in the test's message or output or any view.
    spellings = (repr(hidden), f"{hidden:.6g}", f"{hidden:.4f}", f"{hidden:.2f}")
    for where, text in {"message": look.message, "output": look.output, **student_views(result)}.items():
        for spelling in spellings:
            assert spelling not in text, (where, spelling)


def test_hidden_inputs_left_in_files_never_reach_a_visible_test(tmp_path, stash, worker):
    """At the level this machine grades with by default (full under bubblewrap), including
    what a child could write through another process's /proc/PID/root."""
    _assert_nothing_hidden_reaches_the_visible_side(tmp_path, stash, worker)


@pytest.fixture(scope="module")
def process_worker():
    with Worker(framework=sandbox_side(keras="3"), isolation="process") as w:
        yield w


@pytest.fixture(scope="module")
def namespace_worker():
    from grader.sandbox.client import IsolationUnavailable
    try:
        w = Worker(framework=sandbox_side(keras="3"), isolation="namespace")
    except IsolationUnavailable as exc:
        pytest.skip(f"no network namespaces here: {exc}")
    with w:
        yield w


@pytest.mark.slow
@pytest.mark.parametrize("level", ["process", "namespace"])
def test_hidden_inputs_left_in_files_never_reach_a_visible_test_at_the_lower_levels(level, tmp_path, stash,
                                                                                    request):
    w = request.getfixturevalue(f"{level}_worker")
    assert w.level == level
    _assert_nothing_hidden_reaches_the_visible_side(tmp_path, stash, w)


CHUNK = [{"source": "import os, glob\n\n"
                    "def plant():\n"
                    "    os.makedirs('/tmp/.keras', exist_ok=True)\n"
                    "    with open('/tmp/.keras/planted', 'w') as f:\n        f.write('x')\n"
                    "    return os.getcwd()\n\n"
                    "def look():\n"
                    "    return sorted(glob.glob('/tmp/*') + glob.glob('/tmp/.*') + glob.glob('/dev/shm/*'))\n\n"
                    "def tree(depth):\n"
                    "    start = os.getcwd()\n"
                    "    for top in (start, '/tmp'):\n"
                    "        os.chdir(top)\n"
                    "        for _ in range(depth):\n"
                    "            os.mkdir('d')\n            os.chdir('d')\n"
                    "        with open('bottom', 'w') as f:\n            f.write('x')\n"
                    "    os.chdir(start)\n"
                    "    return depth\n",
          "line": 1, "label": "cell 1", "kind": "def"}]


@pytest.mark.parametrize("level", ["default", pytest.param("process", marks=pytest.mark.slow)])
def test_a_child_sees_only_its_own_tmp_and_it_is_empty_at_start(level, worker, request):
    w = worker if level == "default" else request.getfixturevalue("process_worker")
    first = w.session(CHUNK)
    second = w.session(CHUNK)
    try:
        assert first.tmp == "ok", first.tmp
        workdir = first.call("plant").value
        # Both children alive at once (as a submission's visible and hidden children are):
        # the second sees only its own working folder, none of the first's dot-folders.
        left = second.call("look").value
        # A checkout cloned under /tmp is bound back, read-only, at its own path: the child
        # imports from it. Nothing else of the host's /tmp is there.
        env = [str(REPO), sys.prefix]
        left = [p for p in left if not any((e + "/").startswith(p.rstrip("/") + "/") for e in env)]
        assert [p for p in left if not p.startswith("/tmp/submission-")] == [], left
        assert len(left) == 1 and left[0] != workdir, left
    finally:
        first.close()
        second.close()


WRITER = [{"source": "import os\n\n"
                     "def write_through(pid, folder, repo):\n"
                     "    found = {}\n"
                     "    for path in ('/proc/%d/root%s/from-the-child' % (pid, folder), folder + '/from-the-child',\n"
                     "                 '/proc/1/root/tmp/from-the-child', repo + '/from-the-child', '/dev/null'):\n"
                     "        try:\n"
                     "            with open(path, 'w') as f:\n"
                     "                f.write('x')\n"
                     "            found[path] = 'written'\n"
                     "        except OSError as exc:\n"
                     "            found[path] = exc.strerror\n"
                     "    return found\n\n"
                     "def tmp_size():\n"
                     "    t, shm = os.statvfs('/tmp'), os.statvfs('/dev/shm')\n"
                     "    return [t.f_blocks * t.f_frsize, t.f_files, shm.f_blocks * shm.f_frsize]\n",
           "line": 1, "label": "cell 1", "kind": "def"}]


@pytest.mark.parametrize("level", ["default", pytest.param("process", marks=pytest.mark.slow)])
def test_a_child_cannot_write_through_another_process_into_the_hosts_files(level, worker, request, tmp_path):
    """/proc/PID/root enters the other process's mount namespace, where nothing is
    read-only: the grading process's /tmp, say. Writes there are refused (Landlock)."""
    w = worker if level == "default" else request.getfixturevalue("process_worker")
    session = w.session(WRITER)
    try:
        found = session.call("write_through", os.getpid(), str(tmp_path), str(REPO)).value
        tmp = session.call("tmp_size").value
    finally:
        session.close()
    assert found.pop("/dev/null") == "written"  # the harmless devices stay writable
    assert "written" not in found.values(), found
    assert not (tmp_path / "from-the-child").exists() and not os.path.exists("/tmp/from-the-child")
    assert not (REPO / "from-the-child").exists()
    # The child's /tmp is its own tmpfs, of the size and file count the README states.
    assert tmp == [256 * 1024 ** 2, 65536, 16 * 1024 ** 2], tmp


def test_a_folder_tree_3000_deep_does_not_end_the_worker(worker):
    restarts, pid = worker.restarts, worker.proc.pid
    session = worker.session(CHUNK)
    try:
        assert session.call("tree", 3000, timeout=60).value == 3000
    finally:
        session.close()
    assert worker.status(session.pid, wait=2.0).get("exited")  # asking makes the worker clean up now
    after = worker.session(CHUNK)
    try:
        assert len(after.call("look").value) == 1
    finally:
        after.close()
    assert worker.alive() and worker.restarts == restarts and worker.proc.pid == pid


def _deep_tree(root: Path, depth: int) -> None:
    """`depth` nested folders (relative steps: the whole path is longer than PATH_MAX)."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
            os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


def test_remove_tree_takes_any_depth_locked_folders_and_links_and_never_raises(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    (target / "keep").write_text("keep")
    tree, probe = tmp_path / "left", tmp_path / "probe"
    try:
        _deep_tree(tree, 3000)
        (tree / "wide").mkdir()
        for i in range(500):
            (tree / "wide" / str(i)).write_text("x")
        (tree / "locked" / "inner").mkdir(parents=True)
        (tree / "locked" / "inner" / "f").write_text("x")
        os.chmod(tree / "locked" / "inner", 0)
        os.chmod(tree / "locked", 0)
        (tree / "link").symlink_to(target)  # removed as a link: what it points to stays
        _deep_tree(probe, 3000)
        with pytest.raises(RecursionError):  # what the worker used to do with such a tree
            shutil.rmtree(probe)
        assert remove_tree(str(tree)) == []
        assert not tree.exists() and (target / "keep").read_text() == "keep"
        assert remove_tree(str(tmp_path / "absent")) == []
        single = tmp_path / "file"
        single.write_text("x")
        assert remove_tree(str(single)) == [] and not single.exists()
    finally:  # pytest's own clean-up of old temporary folders would meet the same RecursionError
        remove_tree(str(tree))
        remove_tree(str(probe))


@pytest.mark.slow
def test_a_child_without_its_own_tmp_still_grades_and_the_result_says_so(tmp_path):
    """Where the kernel will not give a child its own /tmp (here: a tmpfs size it refuses),
    grading goes on as before and the result's isolation names what is missing."""
    import sys
    sys.path.insert(0, str(REPO / "tests" / "adversarial"))
    import attacks
    from grader.sandbox.client import Limits
    tiny = load_assignment(attacks.write_assignment(tmp_path / "tiny", timeout=20))
    nb = attacks.write_notebook(tmp_path / "correct.ipynb", attacks.CORRECT)
    with Worker(framework=sandbox_side(keras="3"), isolation="process", limits=Limits(tmp_bytes=-1)) as w:
        result = grade_submission(nb, tiny, w)
    assert result.score == result.max_score == 3, [(t.name, t.message) for t in result.tests]
    assert result.isolation.startswith("process, /tmp shared: no tmpfs on /tmp"), result.isolation
