"""Late work: the spec's due date and penalty policy, applied to a submission's time.

    due = "2026-12-04T23:59:00+01:00"   # a time without an offset is read as UTC
    [late]
    per_day = 10        # percent of the points lost per day late (each day begun counts)
    cap = 50            # never more than this percent
    grace_minutes = 15  # submissions this close after the deadline are on time

A student's own deadline (the roster's `extension`: days, or a date) replaces the
assignment's. The penalty is a percentage of what the student earned, so a late perfect
score and a late half score lose in proportion, and feedback can say exactly why.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

LATE_KEYS = ("per_day", "cap", "grace_minutes")


def date_alone(text: str) -> date | None:
    """The day `text` names when it is a date without a time, in any of ISO 8601's forms
    (`2026-12-05`, basic `20261205`, week date `2026W496` or `2026-W49-6`); else None."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def parse_time(text: str, zone: tzinfo = timezone.utc) -> datetime:
    """ISO 8601; a date alone (in any of its forms) means the end of that day; no offset
    means `zone` (UTC unless said otherwise). ValueError with the accepted spellings
    otherwise."""
    text = text.strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time such as 2026-12-04T23:59:00+01:00") from None
    if date_alone(text) is not None:  # a date alone: the whole day is still on time
        when = when.replace(hour=23, minute=59, second=59)
    return when if when.tzinfo else when.replace(tzinfo=zone)


@dataclass(frozen=True)
class LatePolicy:
    due: datetime
    per_day: float = 0.0
    cap: float = 100.0
    grace_minutes: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"due": self.due.isoformat(), "per_day": self.per_day, "cap": self.cap,
                "grace_minutes": self.grace_minutes}

    def due_for(self, extension_days: float = 0.0, own_due: str = "") -> datetime:
        """A student's deadline. Their own date, written without an offset (the roster's
        `2026-12-06` or `2026-12-06T12:00`), is in the assignment's time zone: an instructor
        writing a date means their course's clock, not UTC's."""
        if own_due:
            return parse_time(own_due, zone=self.due.tzinfo or timezone.utc)
        return self.due + timedelta(days=extension_days)


def policy_from_dict(d: dict[str, Any] | None) -> LatePolicy | None:
    if not d:
        return None
    return LatePolicy(due=parse_time(d["due"]), per_day=float(d.get("per_day", 0.0)),
                      cap=float(d.get("cap", 100.0)), grace_minutes=float(d.get("grace_minutes", 0.0)))


def late_problems(due, late) -> list[str]:
    problems = []
    if due is not None:
        if not isinstance(due, str):
            problems.append("`due` must be a date and time in quotes, e.g. \"2026-12-04T23:59:00+01:00\"")
        else:
            try:
                parse_time(due)
            except ValueError as exc:
                problems.append(f"`due`: {exc}")
    if late is not None:
        if not isinstance(late, dict):
            return problems + ["`late` must be a table: [late] on a line of its own, then per_day, cap, grace_minutes"]
        if due is None:
            problems.append("[late] needs a `due` date to count from")
        for key, value in late.items():
            if key not in LATE_KEYS:
                problems.append(f"unknown key `{key}` in [late] (valid: {', '.join(LATE_KEYS)})")
            elif not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                problems.append(f"[late] `{key}` must be a number of at least 0, not {value!r}")
            elif key in ("per_day", "cap") and value > 100:
                problems.append(f"[late] `{key}` is a percentage: at most 100, not {value!r}")
    return problems


def policy_from_spec(due, late) -> LatePolicy | None:
    """The spec's policy (call after `late_problems` found none); a due date without [late]
    only marks submissions late, with no penalty."""
    if due is None:
        return None
    late = late or {}
    return LatePolicy(due=parse_time(due), per_day=float(late.get("per_day", 0.0)),
                      cap=float(late.get("cap", 100.0)), grace_minutes=float(late.get("grace_minutes", 0.0)))


@dataclass(frozen=True)
class Lateness:
    """How late one submission was and what it costs."""
    submitted: datetime
    due: datetime
    days_late: int      # whole days begun after the deadline; 0 when on time or within the grace
    percent: float      # of the earned points, lost

    @property
    def late(self) -> bool:
        return self.days_late > 0

    def penalty(self, earned: float) -> float:
        return round(earned * self.percent / 100.0, 6)

    def describe(self) -> str:
        """One sentence for the student, both times on the deadline's clock."""
        submitted = _show(self.submitted.astimezone(self.due.tzinfo))
        if not self.late:
            return f"Submitted on time ({submitted}; due {_show(self.due)})."
        day = "day" if self.days_late == 1 else "days"
        cost = (f"{self.percent:g}% of the points earned are deducted" if self.percent
                else "no points are deducted for it")
        return f"Submitted {submitted}, {self.days_late} {day} after the deadline ({_show(self.due)}): {cost}."


def _show(when: datetime) -> str:
    """`2026-12-04 23:59 UTC+01:00`: minutes are enough, and the offset makes it unambiguous."""
    return when.strftime("%Y-%m-%d %H:%M %Z").strip()


def lateness(policy: LatePolicy, submitted: datetime, *, extension_days: float = 0.0,
             own_due: str = "") -> Lateness:
    due = policy.due_for(extension_days, own_due)
    over = (submitted - due).total_seconds()
    if over <= policy.grace_minutes * 60:
        return Lateness(submitted, due, 0, 0.0)
    days = math.ceil(over / 86400.0)
    return Lateness(submitted, due, days, min(policy.cap, policy.per_day * days))
