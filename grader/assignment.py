"""An assignment's spec (`assignments/NAME/assignment.toml`) and where its parts live.

The spec is data an instructor edits; everything the grader needs to know about an
assignment is here so the tests themselves stay plain pytest.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS_DIR = REPO_ROOT / "assignments"


class AssignmentError(Exception):
    """The assignment itself is unusable (an instructor's problem, not a student's)."""


@dataclass(frozen=True)
class Assignment:
    name: str
    root: Path
    title: str
    version: str
    exercises: tuple[str, ...]
    reference: Path
    tests_dir: Path
    keras: str = "3"  # which Keras the students wrote for: "3" (tf.keras today) or "2" (tf_keras)
    call_timeout: float = 60.0
    support: tuple[Path, ...] = ()  # files the student's code may import (sent into the sandbox)
    # Seeds hidden inputs. Lives in the instructor's copy only; students never see it.
    secret: str = ""
    total_points: float | None = None
    # Instructor code run in the sandbox after the student's definitions (spec key `probes`).
    probes: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that can change a grade changes: keys the gradebook."""
        h = hashlib.sha256(self.version.encode())
        for path in sorted(self.tests_dir.rglob("*.py")) + [self.reference, self.root / "assignment.toml"] + (
                [self.probes] if self.probes else []):
            if path.is_file():
                h.update(path.name.encode())
                h.update(path.read_bytes())
        return h.hexdigest()[:16]

    def support_files(self) -> dict[str, str]:
        return {p.name: p.read_text(encoding="utf-8") for p in self.support}


def resolve(name_or_dir: str | Path) -> Path:
    path = Path(name_or_dir)
    if (path / "assignment.toml").is_file():
        return path.resolve()
    candidate = ASSIGNMENTS_DIR / str(name_or_dir)
    if (candidate / "assignment.toml").is_file():
        return candidate
    known = sorted(p.parent.name for p in ASSIGNMENTS_DIR.glob("*/assignment.toml"))
    raise AssignmentError(f"unknown assignment {str(name_or_dir)!r}: give a folder holding an assignment.toml "
                          f"or one of: {', '.join(known) or '(none found)'}")


def load_assignment(name_or_dir: str | Path) -> Assignment:
    root = resolve(name_or_dir)
    try:
        data = tomllib.loads((root / "assignment.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AssignmentError(f"{root / 'assignment.toml'}: {exc}") from None
    try:
        exercises = tuple(str(e) for e in data["exercises"])
        reference = (root / data["reference"]).resolve()
    except KeyError as exc:
        raise AssignmentError(f"{root / 'assignment.toml'}: missing key {exc}") from None
    if not reference.is_file():
        raise AssignmentError(f"{root / 'assignment.toml'}: reference {reference} does not exist")
    tests_dir = (root / data.get("tests", "tests")).resolve()
    support = tuple((root / s).resolve() for s in data.get("support", []))
    probes = (root / str(data["probes"])).resolve() if data.get("probes") else None
    if probes is not None and not probes.is_file():
        raise AssignmentError(f"{root / 'assignment.toml'}: probes {probes} does not exist")
    known = {"name", "title", "version", "exercises", "reference", "tests", "keras", "call_timeout",
             "support", "secret", "total_points", "probes"}
    return Assignment(
        name=str(data.get("name", root.name)), root=root, title=str(data.get("title", root.name)),
        version=str(data.get("version", "0")), exercises=exercises, reference=reference,
        tests_dir=tests_dir, keras=str(data.get("keras", "3")),
        call_timeout=float(data.get("call_timeout", 60.0)), support=support,
        secret=str(data.get("secret", "")), total_points=data.get("total_points"), probes=probes,
        extra={k: v for k, v in data.items() if k not in known},
    )


def find_assignment_for(path: Path) -> Path | None:
    """The assignment a tests folder belongs to (for `pytest assignments/NAME/tests`)."""
    for parent in [path, *path.parents]:
        if (parent / "assignment.toml").is_file():
            return parent
    return None
