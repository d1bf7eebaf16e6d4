"""check() in a real Jupyter kernel (nbclient + ipykernel): it grades the code the student ran,
not the last save; the second check reuses the kernel's warm sandbox worker; and no worker
process outlives the kernel, whether it shuts down or is killed."""
from __future__ import annotations

import inspect
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest
from kernel_cells import cell_html, cell_report

from grader.render._common import HIDDEN_NOT_RUN

PYTHON = sys.executable
HAPPY_MODEL = '''\
def happyModel():
    return tf.keras.Sequential([
        tf.keras.Input(shape=(64, 64, 3)),
        tfl.ZeroPadding2D(padding=3),
        tfl.Conv2D(32, 7, strides=1),
        tfl.{second}(),
        tfl.{third}(),
        tfl.MaxPooling2D(),
        tfl.Flatten(),
        tfl.Dense(1, activation="sigmoid"),
    ])'''
RIGHT = HAPPY_MODEL.format(second="BatchNormalization", third="ReLU").replace("BatchNormalization()",
                                                                              "BatchNormalization(axis=3)")
EDITED = HAPPY_MODEL.format(second="ReLU", third="BatchNormalization")
WITHOUT_BN = HAPPY_MODEL.format(second="ReLU", third="ReLU").replace("        tfl.ReLU(),\n", "", 1)


def process_tree(root: int) -> list[int]:
    """`root` and its descendants that are still running (zombies count as gone)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                parents[int(entry)] = int(fields[1])
    found, frontier = [], [root] if root in parents else []
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier += [child for child, parent in parents.items() if parent == pid]
    return found


def _gone(pids: list[int], patience: float = 60.0) -> list[int]:
    """Those of `pids` still running after waiting up to `patience` seconds (a bound, not a
    speed claim: a loaded machine may need it all)."""
    deadline = time.monotonic() + patience
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if process_tree(p)]
    return alive


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GRADER_SELF_CHECK"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _report_cell() -> str:
    return ("import os\n" + inspect.getsource(process_tree) + "\nimport json, grader.kit.selfcheck as sc\n"
            "print('REPORT', json.dumps({'pids': {k[0]: process_tree(p) for k, p in sc.worker_pids().items()}, "
            "'stats': sc.STATS}))")


@pytest.mark.slow
def test_check_grades_the_code_the_kernel_ran_and_reuses_its_worker(tmp_path):
    from nbclient import NotebookClient

    path = tmp_path / "student.ipynb"
    check = f'from grader import check\ncheck("happyModel", notebook={str(path)!r}, assignment="conv_bn")'
    saved = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import tensorflow as tf\nfrom tensorflow.keras import layers as tfl"),
        nbformat.v4.new_code_cell(RIGHT, metadata={"tags": ["happyModel"]}),
        nbformat.v4.new_code_cell(check),
    ])
    nbformat.write(saved, path)  # the saved file holds the right model only
    run = nbformat.from_dict(json.loads(json.dumps(saved)))
    run.cells += [
        nbformat.v4.new_code_cell(_report_cell()),
        # The student edits the happyModel cell and runs it again, without saving:
        nbformat.v4.new_code_cell(EDITED, metadata={"tags": ["happyModel"]}),
        nbformat.v4.new_code_cell(check),
        nbformat.v4.new_code_cell(_report_cell()),
        # Edited and run once more (the kernel's 8th input), BatchNormalization left out:
        nbformat.v4.new_code_cell(WITHOUT_BN, metadata={"tags": ["happyModel"]}),
        nbformat.v4.new_code_cell(check),
    ]
    NotebookClient(run, kernel_name="python3", timeout=600,
                   resources={"metadata": {"path": str(tmp_path)}}).execute(env=_env())

    first, second = cell_html(run.cells[2]), cell_html(run.cells[5])
    assert "visible tests: 7 / 7 points" in first
    assert "checked the code you ran in this kernel (the same as the saved student.ipynb)" in first
    assert "ReLU comes before BatchNormalization" in second and "visible tests: 0 / 7 points" in second
    assert ("checked the code you ran in this kernel; `happyModel` differs from the saved student.ipynb: save "
            "the notebook before you submit") in second
    assert HIDDEN_NOT_RUN in second
    assert "isolation: " in second  # the level that graded it is named

    # The cell is named by the number Jupyter shows beside it, In [8], never by counting cells.
    third = cell_html(run.cells[8])
    assert "right after the Conv2D created in cell In [8], line 5 (`tfl.Conv2D(32, 7, strides=1),`)" in third, third

    before, after = cell_report(run.cells[3]), cell_report(run.cells[6])
    assert before["pids"] and before["pids"] == after["pids"]  # the same worker, still alive
    assert after["stats"] == {"workers_started": 1, "checks": 2}
    worker_tree = [p for tree in after["pids"].values() for p in tree]
    assert worker_tree
    assert _gone(worker_tree) == []  # the kernel has shut down: nothing of the worker is left


@pytest.mark.slow
def test_the_warm_worker_dies_with_a_killed_kernel():
    """SIGKILL leaves no atexit to run: the worker must notice its control socket close."""
    code = ("import grader.kit.selfcheck as sc, sys, time\n"
            "w = sc._ready(sc._launch('3', 'auto'))\n"
            "print(w.proc.pid, w.level, flush=True)\n"
            "time.sleep(600)\n")
    owner = subprocess.Popen([PYTHON, "-c", code], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        pid, level = owner.stdout.readline().split()
        tree = process_tree(int(pid))
        assert tree, "the worker was not running"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=60)
        assert _gone(tree) == [], f"worker processes left behind at isolation {level}"
    finally:
        if owner.poll() is None:
            owner.kill()
