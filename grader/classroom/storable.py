"""Text that can be stored and written anywhere: lone surrogates escaped.

JSON may hold a lone surrogate (`"\\ud800"`), Jupyter saves one when a student pastes it,
and Python decodes it into a `str` that UTF-8 cannot encode: SQLite, a UTF-8 file and an
HTTP body all refuse it with UnicodeEncodeError. A Python `str` never holds a valid pair
(JSON's `"\\ud83d\\ude00"` decodes to one code point), so every surrogate here is lone, and
it is written as the six characters `\\ud800` the student's file holds: visible to the
reviewer, stable (the same text always stores the same way), never the reason a run stops.
"""
from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with each lone surrogate replaced by its escape (`\\ud800`)."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def storable(value: Any) -> Any:
    """A JSON-like value (dicts, lists, tuples, strings, numbers) with every string, keys
    included, made storable; anything else is returned as it is."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(storable(v) for v in value)
    return value


def utf8(text: str) -> bytes:
    """`text` as UTF-8 bytes, lone surrogates written as their escape."""
    return storable_text(text).encode("utf-8")


__all__ = ["storable", "storable_text", "utf8"]
