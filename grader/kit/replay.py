"""The kit's `reference`: answers the visible tests' calls from the recording, and nothing else.

In a kit the assignment's `reference` key names `answers/answers.json` instead of a Python
module; the plugin then hands tests a `Replay`. A call whose arguments were not recorded
cannot be answered without the solutions, so it fails with a message naming the call and
the test (the export refuses such tests; this is the second line of defence).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from grader.kit.values import call_key, decode, describe_call

ANSWERS = "answers.json"
FORMAT = 2  # 2: models as graph, weight arrays and outputs (1 held rebuildable configs)


class NotRecorded(Exception):
    """A test asked the kit's reference for an answer the export did not record."""


def current_test() -> str:
    """The running test's node id (pytest sets PYTEST_CURRENT_TEST during each phase)."""
    text = os.environ.get("PYTEST_CURRENT_TEST", "")
    return text.rsplit(" (", 1)[0] if text else "(outside a test)"


def is_recording(path: Path | str) -> bool:
    return Path(path).name == ANSWERS


def public_visible_seed(name: str, version: str = "") -> str:
    """Seeds `hidden_rng` in visible tests, in the full grader and in a kit alike.

    A visible test runs on the student's own machine, so its inputs are public anyway; the
    seed is therefore made from public facts (the assignment's name and version) and from
    nothing secret. An earlier seed was an unsalted hash of the secret, which a kit handed
    out: a short secret was found from it by trying candidates, and the secret seeds the
    hidden tests. Bump `version` to draw other visible inputs."""
    return hashlib.sha256(f"grader-visible-tests:{name}:{version}".encode()).hexdigest()


def visible_secret(assignment: Any) -> str:
    reference = Path(assignment.reference)
    if is_recording(reference):
        return str(Replay.open(reference).visible_secret)
    return public_visible_seed(str(assignment.name), str(getattr(assignment, "version", "")))


class Replay:
    """Reference functions answered from the recording; models rebuilt once per process
    and kept, as the real reference's are (the model checks restore what they touch)."""

    _open: dict[str, "Replay"] = {}

    def __init__(self, path: Path):
        self._path = Path(path)
        data = json.loads(self._path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{self._path}: not a recording this grader can read (format {FORMAT} expected)")
        self.visible_secret = str(data.get("visible_secret", ""))
        self._calls: dict[str, Any] = dict(data.get("calls", {}))
        self._attributes: dict[str, Any] = dict(data.get("attributes", {}))
        self._functions = set(data.get("functions", []))
        self._models: dict[str, Any] = {}

    @classmethod
    def open(cls, path: Path | str) -> "Replay":
        stat = Path(path).stat()  # a kit written again at the same path is read again
        key = f"{Path(path).resolve()}:{stat.st_mtime_ns}:{stat.st_size}"
        if key not in cls._open:
            cls._open[key] = cls(Path(path))
        return cls._open[key]

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._attributes:
            return decode(self._attributes[name], self._path.parent)
        if name not in self._functions:
            raise NotRecorded(f"the self-check kit holds no answers of reference.{name} (test {current_test()}); "
                              f"the full grader still checks it")

        def call(*args, **kwargs):
            key = call_key(name, args, kwargs)
            entry = self._calls.get(key)
            if entry is None:
                raise NotRecorded(
                    f"the self-check kit has no recorded answer for reference.{describe_call(name, args, kwargs)}, "
                    f"which test {current_test()} asked for: this test is not kit-safe (the export should have "
                    f"refused it); the full grader still checks it")
            if "$graph_model" in (entry["value"] if isinstance(entry["value"], dict) else {}):
                if key not in self._models:
                    self._models[key] = decode(entry["value"], self._path.parent)
                return self._models[key]
            return decode(entry["value"], self._path.parent)

        return call
