"""When each notebook was handed in, whether that time can be trusted, and which of a
student's notebooks gives their grade.

Times: a manifest's (the LMS's record) is trusted. A file's modification time is not,
unless the instructor says so (`--times mtime`): copying the hand-ins with `cp`, a
`git clone` or an unzip sets every one to the time of the copy, and a late policy would
then penalise the whole class. Without a trusted time, no late penalty is applied, and the
run says so once.

Which notebook counts: of a student's notebooks, the last handed in. Two handed in at the
same time (one time given for a whole folder, say) are a tie, and a tie is never broken
by the files' names (that graded `scratch.ipynb` instead of `hw3.ipynb`): the instructor
chooses, with a manifest row per file or a `--pick` rule, and until then the student is
refused with a line naming both files.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence, TypeVar

from grader.classroom.names import printable

TIME_SOURCES = ("none", "mtime")   # --times: what counts as a hand-in time when the manifest gives none
PICK_HELP = "newest (the later modification time) or name:GLOB (the notebook whose file name matches GLOB)"
COPY_SECONDS = 10.0  # modification times this close together look like one copy, not a class handing in


# ---------------------------------------------------------------- --pick

@dataclass(frozen=True)
class PickRule:
    """How the instructor breaks a tie between notebooks handed in at the same time."""
    kind: str = ""     # "": not chosen; "newest"; "name"
    pattern: str = ""  # for "name": a glob on the notebook's file name

    def __str__(self) -> str:
        return f"name:{self.pattern}" if self.kind == "name" else self.kind

    def choose(self, candidates: Sequence["T"], name: Callable[["T"], str],
               mtime: Callable[["T"], float]) -> list["T"]:
        """The candidates the rule keeps (one: the tie is broken)."""
        if self.kind == "newest":
            latest = max(mtime(c) for c in candidates)
            return [c for c in candidates if mtime(c) == latest]
        if self.kind == "name":
            return [c for c in candidates if fnmatch.fnmatchcase(name(c).rsplit("/", 1)[-1], self.pattern)]
        return list(candidates)


def parse_pick(text: str | None) -> PickRule:
    """`newest`, `name:GLOB`, or nothing; ValueError saying what to write."""
    text = (text or "").strip()
    if not text:
        return PickRule()
    if text == "newest":
        return PickRule("newest")
    if text.startswith("name:") and text[5:].strip():
        return PickRule("name", text[5:].strip())
    raise ValueError(f"--pick {text!r} is not a rule; write {PICK_HELP}, e.g. --pick 'name:hw3*.ipynb'")


T = TypeVar("T")


# ---------------------------------------------------------------- ties

@dataclass(frozen=True)
class Tie:
    """Notebooks of one student handed in at the same, latest, time, that no rule told apart."""
    student: str
    notebooks: tuple[str, ...]  # their names inside the submissions folder
    when: float                 # the shared hand-in time (seconds since the epoch)
    rule: str = ""              # the --pick rule that did not decide, or ""

    def message(self) -> str:
        both = " and ".join(printable(n) for n in self.notebooks)
        at = datetime.fromtimestamp(self.when, tz=timezone.utc).isoformat(timespec="seconds")
        example = printable(self.notebooks[0])
        why = (f"--pick {self.rule} did not choose exactly one of them" if self.rule
               else "which one counts is never guessed from their names")
        return (f"{both} were handed in at the same time ({at}): {why}; give each its own row in the manifest "
                f"(submission column, e.g. {example}) or choose with --pick newest or --pick 'name:GLOB'")


def latest_handed_in(items: Sequence[T], when: Callable[[T], float], name: Callable[[T], str],
                     mtime: Callable[[T], float], rule: PickRule) -> tuple[T | None, Tie | None]:
    """(the item that counts, None), or (None, the tie) when the latest time is shared and
    `rule` does not leave exactly one. Items handed in earlier never count."""
    latest = max(when(i) for i in items)
    candidates = sorted((i for i in items if when(i) == latest), key=name)
    if len(candidates) == 1:
        return candidates[0], None
    kept = rule.choose(candidates, name, mtime) if rule.kind else candidates
    if len(kept) == 1:
        return kept[0], None
    return None, Tie("", tuple(name(c) for c in candidates), latest, str(rule))


def counted(rows: Sequence, pick: str = "") -> object:
    """Of one student's gradebook rows, the one that gives their grade. An unbroken tie gives
    a row that is not graded and says why (a stored refusal when there is one), never the
    first name in alphabetical order."""
    try:
        rule = parse_pick(pick)
    except ValueError:
        rule = PickRule()
    row, tie = latest_handed_in(rows, lambda r: r.handed_in, lambda r: r.submission, lambda r: r.mtime, rule)
    if tie is None:
        return row
    tied = [r for r in rows if r.submission in tie.notebooks]
    refusals = [r for r in tied if r.status != "graded"]
    if refusals:
        return min(refusals, key=lambda r: r.submission)
    return dataclasses.replace(min(tied, key=lambda r: r.submission), status="ungraded", reason=tie.message())


def find_ties(tasks: Iterable, when: Callable[[object], float], mtime: Callable[[object], float],
              rule: PickRule) -> list[Tie]:
    """Every student whose latest notebooks tie (tasks: anything with .key and .student)."""
    by_student: dict[str, list] = {}
    for task in tasks:
        by_student.setdefault(task.student, []).append(task)
    ties = []
    for student, mine in sorted(by_student.items()):
        if len(mine) < 2:
            continue
        _, tie = latest_handed_in(mine, when, lambda t: t.key, mtime, rule)
        if tie is not None:
            ties.append(dataclasses.replace(tie, student=student))
    return ties


# ---------------------------------------------------------------- times

MANIFEST, EARLIER, MTIME, NONE = "manifest", "an earlier manifest", "modification time", "none"


@dataclass(frozen=True)
class HandIn:
    """One notebook's hand-in time and where it comes from."""
    key: str
    seconds: float   # what decides which of a student's notebooks counts
    source: str      # MANIFEST, EARLIER (kept from a manifest given before), MTIME, or NONE
    text: str = ""   # the ISO time for MANIFEST and EARLIER


def time_lines(handins: Sequence[HandIn], *, due: bool, use_mtimes: bool, manifest: bool) -> list[str]:
    """What the run says about its hand-in times, each thing once: which notebooks have no
    trusted time (no late penalty for them), and modification times that look like a copy."""
    lines = []
    untimed = [h for h in handins if h.source in (MTIME, NONE)]
    earlier = [h for h in handins if h.source == EARLIER]
    if manifest and earlier:
        lines.append(f"no time in this manifest for {_count(earlier)}: the time an earlier manifest gave "
                     f"{'it' if len(earlier) == 1 else 'them'} is kept: {_names(earlier)}")
    if untimed and (manifest or due):
        if use_mtimes:
            what = "their file's modification time counts (--times mtime)"
        elif due:
            what = (f"no late penalty is applied{' to them' if manifest else ''}: a file's modification time is "
                    f"not trusted (a copy, clone or unzip resets it); give their times in --manifest, or --times "
                    f"mtime if the files still hold their hand-in times")
        else:
            what = "the assignment has no due date, so nothing is late"
        if manifest:
            lines.append(f"no time in the manifest for {_count(untimed)} ({what}): {_names(untimed)}")
        else:
            lines.append(f"no hand-in times given (--manifest): {what}")
    if use_mtimes and due:
        copied = looks_copied([h.seconds for h in untimed])
        if copied:
            lines.append(copied)
    return lines


def looks_copied(mtimes: Sequence[float]) -> str:
    """A warning when modification times (three or more) lie within seconds of each other."""
    if len(mtimes) < 3:
        return ""
    spread = max(mtimes) - min(mtimes)
    if spread > COPY_SECONDS:
        return ""
    return (f"the modification times of all {len(mtimes)} notebooks lie within {spread:.0f} s of each other: they "
            f"look like the time of a copy (cp, git clone, unzip), not of hand-ins; the late penalties computed "
            f"from them are likely wrong: give the hand-in times with --manifest")


def _count(items: Sequence) -> str:
    return f"{len(items)} notebook{'s' * (len(items) != 1)}"


def _names(items: Sequence[HandIn]) -> str:
    shown = ", ".join(printable(h.key) for h in items[:5])
    return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")


def hand_ins(tasks: Iterable, manifest_time: Callable[[object], str], stored: Callable[[str], object],
             sha256: Callable[[object], str], mtime: Callable[[object], float], *,
             use_mtimes: bool) -> dict[str, HandIn]:
    """Each task's hand-in time as the gradebook will take it: this manifest's time; else the
    time an earlier manifest gave the same bytes (a regrade does not make work late); else
    its modification time, which decides only which notebook counts unless `use_mtimes`.
    `stored(key)`: the gradebook's row for a notebook, or None."""
    from grader.assignment.late import parse_time
    out = {}
    for task in tasks:
        text = manifest_time(task)
        source = MANIFEST if text else ""
        if not text:
            row = stored(task.key)
            if row is not None and row.submitted_at and row.sha256 == sha256(task):
                text, source = row.submitted_at, EARLIER
        if text:
            out[task.key] = HandIn(task.key, parse_time(text).timestamp(), source, text)
        else:
            out[task.key] = HandIn(task.key, mtime(task), MTIME if use_mtimes else NONE)
    return out


@dataclass(frozen=True)
class HandInPlan:
    """What a grading run decided about hand-in times before grading anything."""
    times: dict[str, HandIn]
    ties: tuple[Tie, ...]
    lines: tuple[str, ...]  # to say once (no trusted times, a copy's times)

    def refused(self) -> dict[str, str]:
        """Notebook -> why it is not graded (each tied notebook)."""
        return {key: tie.message() for tie in self.ties for key in tie.notebooks}


def plan_hand_ins(book, tasks: Sequence, manifest, *, rule: PickRule, use_mtimes: bool, due: bool) -> HandInPlan:
    """Times, ties and what to say about them, for `tasks` about to be recorded in `book`."""
    from grader.classroom.submissions import file_sha256

    def mtime(task) -> float:
        try:
            return task.path.lstat().st_mtime  # never through a link
        except OSError:
            return 0.0

    times = hand_ins(tasks, lambda t: manifest.time_for(t.key, t.student) if manifest else "", book.row,
                     lambda t: file_sha256(t.path), mtime, use_mtimes=use_mtimes)
    ties = find_ties(tasks, lambda t: times[t.key].seconds, mtime, rule)
    lines = time_lines(list(times.values()), due=due, use_mtimes=use_mtimes, manifest=manifest is not None)
    return HandInPlan(times, tuple(ties), tuple(lines))
