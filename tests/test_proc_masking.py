"""The sandbox's /proc hides what container runtimes hide (issue 13, item 8).

Bubblewrap mounts a fresh /proc, which shows everything the kernel has: on a host with
sysrq enabled, one write of "b" to /proc/sysrq-trigger by a child running as (host) root
reboots the machine; kallsyms and timer_list hand out kernel addresses. Through the real
sandbox, at full isolation and (as root) at the lower levels: writes to every masked entry
fail, none of them can be read, masked directories are empty and read-only, the host's
own /proc is untouched, and a normal model still builds and comes back.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from grader.frameworks.keras.child.payload import ModelPayload
from grader.frameworks.keras.rebuild import rebuild
from grader.sandbox import protocol
from grader.frameworks.sandbox_side import sandbox_side
from grader.sandbox.client import Worker
from grader.sandbox.confine import PROC_MASKED_DIRS, PROC_MASKED_FILES, proc_masks

PROBE = '''import os

def probe(files, dirs):
    found = {}
    for name in files:
        path = "/proc/" + name
        for mode in ("rb", "wb"):
            try:
                with open(path, mode) as handle:
                    got = handle.read(4096) if mode == "rb" else handle.write(b"h")
                found[name + ":" + mode] = "read %d bytes" % len(got) if mode == "rb" else "wrote"
            except OSError as exc:
                found[name + ":" + mode] = "refused (%s)" % (exc.strerror,)
    for name in dirs:
        path = "/proc/" + name
        found[name + ":list"] = sorted(os.listdir(path)) if os.path.isdir(path) else "absent"
        try:
            open(path + "/planted", "w").close()
            found[name + ":create"] = "created"
        except OSError as exc:
            found[name + ":create"] = "refused (%s)" % (exc.strerror,)
    return found

def tiny():
    import tensorflow as tf
    return tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
'''


def _probe(worker) -> tuple[dict, object]:
    session = worker.session([{"source": PROBE, "line": 1, "label": "cell 1", "kind": "def"}])
    try:
        found = session.call("probe", list(PROC_MASKED_FILES), list(PROC_MASKED_DIRS)).value
        model = session.call("tiny").value
    finally:
        session.close()
    return found, model


def _assert_masked(found: dict, model) -> None:
    files, dirs = proc_masks()
    # sysrq-trigger first: where the kernel has it, a write would act on the whole machine.
    assert found["sysrq-trigger:wb"].startswith("refused"), found["sysrq-trigger:wb"]
    for name in PROC_MASKED_FILES:
        for mode in ("rb", "wb"):
            said = found[f"{name}:{mode}"]
            assert said.startswith("refused") or said == "read 0 bytes", f"/proc/{name} ({mode}): {said}"
    for path in files:  # present on this kernel: masked, not merely absent
        name = path.rsplit("/", 1)[1]
        assert "No such file" not in found[f"{name}:rb"], f"{path} exists on the host but not in the sandbox?"
    for name in PROC_MASKED_DIRS:
        assert found[f"{name}:list"] in ([], "absent"), f"/proc/{name} shows {found[f'{name}:list']}"
        assert found[f"{name}:create"].startswith("refused"), found[f"{name}:create"]
    assert files or dirs, "this kernel has none of the masked entries: the test shows nothing"
    # Normal grading still works: a model built in the child comes back and runs here.
    assert isinstance(model, ModelPayload)
    out = np.asarray(rebuild(model)(np.ones((1, 3), np.float32)))
    assert out.shape == (1, 2)


def test_sensitive_proc_entries_are_masked_at_full_isolation(bubblewrap):
    with Worker(framework=sandbox_side(keras="3"), isolation="strict") as worker:
        assert worker.level == "full"
        found, model = _probe(worker)
    _assert_masked(found, model)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="only a root grader's child could write to /proc (and mount over it)")
@pytest.mark.parametrize("isolation", ["process", "namespace"])
def test_sensitive_proc_entries_are_masked_for_a_root_child_at_the_lower_levels(isolation):
    with Worker(framework=sandbox_side(keras="3"), isolation=isolation) as worker:
        found, model = _probe(worker)
    _assert_masked(found, model)


def test_the_hosts_proc_is_untouched():
    # The masks live in the sandbox's own mount namespace: the grading machine keeps its /proc.
    files, _ = proc_masks()
    mounts = open("/proc/self/mountinfo").read()
    assert not [path for path in files if f" {path} " in mounts]
    readable = [path for path in files if os.access(path, os.R_OK)]
    if readable:
        with open(readable[0], "rb") as handle:
            handle.read(1)  # still a real /proc file here, no error
