"""An assignment's spec (`assignments/NAME/assignment.toml`) and where its parts live.

The spec is data an instructor edits; everything the grader needs to know about an
assignment is here so the tests themselves stay plain pytest.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from grader.assignment.late import LatePolicy, late_problems, policy_from_spec
from grader.assignment.written import Question, questions_from_spec, written_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]
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
    framework: str = "keras"  # what the students' models are written in: "keras" or "torch"
    call_timeout: float = 60.0
    support: tuple[Path, ...] = ()  # files the student's code may import (sent into the sandbox)
    # Seeds hidden inputs. Lives in the instructor's copy only; students never see it.
    secret: str = ""
    total_points: float | None = None
    # Instructor code run in the sandbox after the student's definitions (spec key `probes`).
    probes: Path | None = None
    # Modules the sandbox worker imports once, before forking, so children share them.
    preload: tuple[str, ...] = ()
    # Written answers a person scores (spec `[[written]]`), and the late-work policy.
    questions: tuple[Question, ...] = ()
    late: LatePolicy | None = None
    # The course's helper modules (spec `[modules]`): a stand-in file the sandbox imports in
    # the module's place, or None for a module expected to be missing.
    modules: tuple[tuple[str, Path | None], ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that can change a grade changes: keys the gradebook."""
        h = hashlib.sha256(self.version.encode())
        for path in sorted(self.tests_dir.rglob("*.py")) + [self.reference, self.root / "assignment.toml"] + (
                [self.probes] if self.probes else []) + [p for _, p in self.modules if p is not None]:
            if path.is_file():
                h.update(path.name.encode())
                h.update(_graded_part(path))
        return h.hexdigest()[:16]

    def support_files(self) -> dict[str, str]:
        """What the sandbox writes next to the student's code: the support files by their
        own names, and each stand-in under its module's name (`resnets_utils.py`)."""
        files = {p.name: p.read_text(encoding="utf-8") for p in self.support}
        for module, path in self.modules:
            if path is not None:
                files[f"{module}.py"] = path.read_text(encoding="utf-8")
        return files

    @property
    def missing_modules(self) -> frozenset[str]:
        """The course's modules declared absent: their import failures concern the instructor."""
        return frozenset(m for m, p in self.modules if p is None)


# Spec keys a person's grading reads, not the autograder: changing a rubric or a due date
# must not make a class be graded again.
_NOT_AUTOGRADED = ("written", "due", "late")


def _graded_part(path: Path) -> bytes:
    if path.name != "assignment.toml":
        return path.read_bytes()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return path.read_bytes()
    import json
    return json.dumps({k: v for k, v in data.items() if k not in _NOT_AUTOGRADED}, sort_keys=True,
                      default=str).encode()


KIT_FOLDER = "selfcheck"  # a student kit's assignments, next to its notebook (grader export student)


def search_folders(near: str | Path | None = None) -> list[Path]:
    """Where assignments are looked for by name, first match first: the kit next to the
    notebook (`near`), each folder in GRADER_ASSIGNMENTS (os.pathsep-separated; a kit's root
    works too), then the repository's `assignments/` (absent from an installed wheel)."""
    folders = [Path(near) / KIT_FOLDER] if near is not None else []
    for entry in os.environ.get("GRADER_ASSIGNMENTS", "").split(os.pathsep):
        if entry.strip():
            folders += [Path(entry), Path(entry) / KIT_FOLDER]
    return folders + [ASSIGNMENTS_DIR]


def known_assignments(near: str | Path | None = None) -> list[Path]:
    """Every assignment folder the search finds (a name found twice: the first one)."""
    seen: dict[str, Path] = {}
    for folder in search_folders(near):
        for spec in sorted(folder.glob("*/assignment.toml")) if folder.is_dir() else []:
            seen.setdefault(spec.parent.name, spec.parent)
    return list(seen.values())


def resolve(name_or_dir: str | Path, near: str | Path | None = None) -> Path:
    path = Path(name_or_dir)
    if (path / "assignment.toml").is_file():
        return path.resolve()
    for folder in search_folders(near):
        candidate = folder / str(name_or_dir)
        if (candidate / "assignment.toml").is_file():
            return candidate.resolve()
    known = sorted(p.name for p in known_assignments(near))
    raise AssignmentError(f"unknown assignment {str(name_or_dir)!r}: give a folder holding an assignment.toml, "
                          f"set GRADER_ASSIGNMENTS to the folder that holds it, or name one of: "
                          f"{', '.join(known) or '(none found)'}")


def assignment_for_notebook(notebook: Path) -> str | Path:
    """The assignment a notebook names in its metadata (`grader.assignment.spec`), else the only
    kit next to it; raises with what to pass instead when neither says."""
    import json
    try:
        meta = json.loads(Path(notebook).read_text(encoding="utf-8")).get("metadata", {}).get("grader", {})
        if isinstance(meta, dict) and isinstance(meta.get("assignment"), str) and meta["assignment"]:
            return meta["assignment"]
    except (OSError, ValueError, AttributeError):
        pass
    folder = Path(notebook).resolve().parent / KIT_FOLDER
    kits = sorted(p.parent for p in folder.glob("*/assignment.toml")) if folder.is_dir() else []
    if len(kits) == 1:
        return kits[0]
    raise AssignmentError(f"{notebook}: say which assignment to check it against (--assignment NAME): "
                          + (f"{len(kits)} kits in {folder}" if kits else f"no student kit in {folder}"))


# ---------------------------------------------------------------- the spec's keys

@dataclass(frozen=True)
class Key:
    """One key `assignment.toml` may hold. The table below is the single source of truth:
    loading checks against it, and docs/authoring.md is tested to describe every key."""
    name: str
    kind: str  # "text", "number", "texts", "table", "tables"
    default: str  # as a reader would write it; "(required)" for a required key
    meaning: str


SPEC_KEYS: tuple[Key, ...] = (
    Key("name", "text", "the folder's name", "the assignment's name in results and gradebooks"),
    Key("title", "text", "the name", "a human title shown in feedback"),
    Key("version", "text", '"0"', "bump it to regrade: it is part of the fingerprint that keys the gradebook"),
    Key("exercises", "texts", "(required)", "the graded functions, in the order feedback lists them"),
    Key("reference", "text", "(required)", "the reference solution module, relative to the spec's folder"),
    Key("tests", "text", '"tests"', "the folder of pytest test files"),
    Key("keras", "text", '"3"', '"3": students write tf.keras (Keras 3); "2": Keras 2 era code, run under tf_keras'),
    Key("framework", "text", '"keras"', '"keras" or "torch": what the students\' models are written in; the '
        "sandbox worker preloads that framework (a torch worker never imports TensorFlow)"),
    Key("call_timeout", "number", "60", "seconds each call into the student's code may take"),
    Key("grading_timeout", "number", "max(300, 10 x call_timeout)",
        "wall-clock seconds the grading process may spend on one submission; past it the submission is "
        "reported as over budget and the batch goes on"),
    Key("support", "texts", "[]", "files the student's code may import, sent into the sandbox"),
    Key("secret", "text", '""', "seeds `hidden_rng`; never released to students"),
    Key("total_points", "number", "(none)", "the points the tests must add up to (validate-assignment checks)"),
    Key("probes", "text", "(none)", "instructor code run in the sandbox after the student's definitions"),
    Key("preload", "texts", "[]",
        "modules the sandbox worker imports once before forking (e.g. [\"h5py\", \"PIL.Image\"]), so each "
        "submission's child starts with them; none may run a TensorFlow op or start a thread at import"),
    Key("master", "text", "source/NAME.ipynb or source/NAME.py", "the master notebook validate-assignment grades"),
    Key("coursera", "table", "(none)", "`parts = { PART_ID = [exercise, ...] }` for `grader export coursera`"),
    Key("written", "tables", "[]", "questions a person scores: `[[written]]` with id, title, points, prompt, "
        "rubric = [{ points = N, text = \"...\" }]; the answer cell is tagged `written:ID`"),
    Key("due", "text", "(none)", "the deadline, ISO 8601 (\"2026-12-04T23:59:00+01:00\"; no offset: UTC); "
        "the roster's `extension` column moves it per student"),
    Key("late", "table", "(none)", "the late penalty: `per_day` (percent of the earned points per day begun), "
        "`cap` (percent, at most), `grace_minutes`"),
    Key("modules", "table", "(none)",
        "the course's helper modules graders do not have: `[modules]` with `name = \"missing\"` (its import "
        "failure is shown to the instructor, not to students) or `name = \"standins/name.py\"` (a stand-in "
        "the sandbox imports in its place)"),
)
_NESTED_KEYS = {"coursera": ("parts",)}
_FIELDS = {"name", "title", "version", "exercises", "reference", "tests", "keras", "framework", "call_timeout",
           "support", "secret", "total_points", "probes", "preload", "written", "due", "late", "modules"}


def _closest(word: str, choices) -> str:
    import difflib
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f": did you mean `{match[0]}`?" if match else ""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _type_problem(key: Key, value) -> str:
    """Why `value` does not fit `key`, or "" when it does."""
    shown = repr(value) if not isinstance(value, dict) else "a table"
    if key.kind == "text" and not isinstance(value, str):
        if key.name == "version" and _is_number(value):
            return ""
        return f"`{key.name}` must be a string in quotes, not {shown}"
    if key.kind == "number" and not _is_number(value):
        return f"`{key.name}` must be a number, not {shown}"
    if key.kind == "texts" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return f"`{key.name}` must be a list of strings, e.g. {key.name} = [\"a\", \"b\"], not {shown}"
    if key.kind == "tables" and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
        return f"`{key.name}` must be a list of tables ([[{key.name}]] on a line of its own, then its keys)"
    if key.kind == "table" and not isinstance(value, dict):
        return f"`{key.name}` must be a table ([{key.name}] on a line of its own, then its keys), not {shown}"
    return ""


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _value_problem(name: str, value) -> str:
    if name == "keras" and str(value) not in ("2", "3"):
        return f'`keras` must be "3" (tf.keras, Keras 3) or "2" (Keras 2 era code, tf_keras), not {value!r}'
    if name == "framework" and value not in ("keras", "torch"):
        return f'`framework` must be "keras" or "torch", not {value!r}'
    if name == "grading_timeout" and value <= 0:
        return f"`grading_timeout` must be more than 0 seconds, not {value!r}"
    if name == "call_timeout" and value <= 0:
        return f"`call_timeout` must be more than 0 seconds, not {value!r}"
    if name == "total_points" and value <= 0:
        return f"`total_points` must be more than 0, not {value!r}"
    if name == "preload":
        bad = [v for v in value if not _MODULE_NAME.fullmatch(v)]
        if bad:
            return f"`preload` lists modules by their import name (e.g. \"matplotlib.pyplot\"), not {bad[0]!r}"
    if name == "modules":
        return modules_problem(value)
    if name == "exercises" and not value:
        return "`exercises` is empty: list the graded functions' names"
    if name == "exercises" and len(set(value)) != len(value):
        return f"`exercises` names a function twice: {value!r}"
    return ""


MISSING = "missing"


def modules_problem(table: dict) -> str:
    """Why a `[modules]` table is wrong, or "". A value is "missing" or a stand-in's path
    ending in `.py`; a stand-in replaces a top-level module, whose file the sandbox writes
    under the module's name."""
    for module, value in table.items():
        if not _MODULE_NAME.fullmatch(module):
            return f"[modules] names modules by their import name (e.g. resnets_utils), not {module!r}"
        if isinstance(value, dict):  # TOML read `keras.utils.vis_utils = ...` as nested tables
            return (f"[modules] `{module}` is a table: quote a dotted module name, e.g. "
                    f"\"{module}.{next(iter(value), 'name')}\" = \"{MISSING}\"")
        if not isinstance(value, str) or not value.strip():
            return (f"[modules] `{module}` must be \"{MISSING}\" or the path of a stand-in file in quotes "
                    f"(e.g. \"standins/{module.split('.')[-1]}.py\"), not {value!r}")
        if value != MISSING and not value.endswith(".py"):
            return (f"[modules] `{module}` = {value!r}: write \"{MISSING}\" for a module expected to be "
                    f"absent, or the path of a stand-in `.py` file{_closest(value, [MISSING])}")
        if value != MISSING and "." in module:
            return (f"[modules] `{module}`: a stand-in replaces a top-level module (e.g. resnets_utils); "
                    f"declare a submodule such as this one \"{MISSING}\"")
    return ""


def spec_problems(data: dict) -> list[str]:
    """Everything wrong with a parsed spec, as messages an instructor can act on.

    A misspelled key (`call_timout`) would otherwise be ignored in silence and its default
    used, which nobody notices until a class is graded with it."""
    keys = {k.name: k for k in SPEC_KEYS}
    problems = []
    for name, value in data.items():
        key = keys.get(name)
        if key is None:
            problems.append(f"unknown key `{name}`{_closest(name, keys)} (valid keys: {', '.join(keys)})")
            continue
        problem = _type_problem(key, value) or _value_problem(name, value)
        if problem:
            problems.append(problem)
        elif name in _NESTED_KEYS:
            for sub in value:
                if sub not in _NESTED_KEYS[name]:
                    problems.append(f"unknown key `{sub}` in [{name}]{_closest(sub, _NESTED_KEYS[name])} "
                                    f"(valid: {', '.join(_NESTED_KEYS[name])})")
    if "written" in data and not _type_problem(keys["written"], data["written"]):
        problems.extend(written_problems(data["written"]))
    if "due" in data or "late" in data:
        problems.extend(p for p in late_problems(data.get("due"), data.get("late"))
                        if not p.startswith("`late` must be") and not p.startswith("`due` must be"))
    for required in ("exercises", "reference"):
        if required not in data:
            problems.append(f"missing key `{required}` ({keys[required].meaning})")
    return problems


def load_assignment(name_or_dir: str | Path, near: str | Path | None = None) -> Assignment:
    """`near`: a notebook's folder, whose student kit is searched first (see `search_folders`)."""
    root = resolve(name_or_dir, near)
    where = root / "assignment.toml"
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AssignmentError(f"{where}: {exc}") from None
    problems = spec_problems(data)
    if problems:
        raise AssignmentError(f"{where}: " + "; ".join(problems) if len(problems) == 1 else
                              f"{where}: {len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))
    exercises = tuple(data["exercises"])
    reference = (root / data["reference"]).resolve()
    if not reference.is_file():
        raise AssignmentError(f"{where}: reference {reference} does not exist")
    tests_dir = (root / data.get("tests", "tests")).resolve()
    support = tuple((root / s).resolve() for s in data.get("support", []))
    absent = [str(p) for p in support if not p.is_file()]
    if absent:
        raise AssignmentError(f"{where}: support file {', '.join(absent)} does not exist")
    probes = (root / str(data["probes"])).resolve() if data.get("probes") else None
    if probes is not None and not probes.is_file():
        raise AssignmentError(f"{where}: probes {probes} does not exist")
    modules = tuple((m, None if v == MISSING else (root / v).resolve()) for m, v in data.get("modules", {}).items())
    absent = [f"`{m}` = {str(p)!r}" for m, p in modules if p is not None and not p.is_file()]
    if absent:
        raise AssignmentError(f"{where}: [modules] stand-in {', '.join(absent)} does not exist")
    clash = sorted({f"{m}.py" for m, p in modules if p is not None} & {p.name for p in support})
    if clash:  # both would be written into the sandbox under one name
        raise AssignmentError(f"{where}: {clash[0]} is both a support file and a [modules] stand-in: keep one")
    return Assignment(
        name=str(data.get("name", root.name)), root=root, title=str(data.get("title", root.name)),
        version=str(data.get("version", "0")), exercises=exercises, reference=reference,
        tests_dir=tests_dir, keras=str(data.get("keras", "3")), framework=str(data.get("framework", "keras")),
        call_timeout=float(data.get("call_timeout", 60.0)), support=support,
        secret=str(data.get("secret", "")), total_points=data.get("total_points"), probes=probes,
        preload=tuple(data.get("preload", ())),
        questions=questions_from_spec(data.get("written")),
        late=policy_from_spec(data.get("due"), data.get("late")), modules=modules,
        extra={k: v for k, v in data.items() if k not in _FIELDS},
    )


def find_assignment_for(path: Path) -> Path | None:
    """The assignment a tests folder belongs to (for `pytest assignments/NAME/tests`)."""
    for parent in [path, *path.parents]:
        if (parent / "assignment.toml").is_file():
            return parent
    return None
