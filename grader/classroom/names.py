"""Names that students choose (file and folder names) shown where they could do harm.

A submission's name reaches a terminal (progress lines, warnings), a spreadsheet
(grades.csv) and the file system (feedback/STUDENT/). Each place has its own danger:
escape sequences that clear a screen or retitle a window, cells that a spreadsheet runs
as formulas, and names that two file systems (or one case-insensitive one) treat as the
same folder. Names are never silently renamed into something else: shown escaped, or
refused with a reason.
"""
from __future__ import annotations

import re
import unicodedata

# Characters Windows refuses in a name, and the names it reserves whatever the extension.
_WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
# Longest folder name kept, in UTF-8 bytes: most file systems stop at 255; archives and
# synced drives lower it, so leave room.
MAX_FOLDER_BYTES = 120


def _is_control(ch: str) -> bool:
    """C0/C1 controls, DEL, invisible format characters (bidirectional overrides that make
    a terminal or a spreadsheet show text in another order than it is), and lone
    surrogates: a file name's bytes that are not UTF-8, or a `"\\ud800"` a student's JSON
    holds; no terminal, file or database can take them as they are."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def _escape(code: int) -> str:
    if 0xDC80 <= code <= 0xDCFF:  # a byte Python could not decode in a file name (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def fs_name(name: str) -> str:
    """A file name as text that can be stored and shown: bytes that are not UTF-8 (an
    archive made on Windows, unzipped here) are written `\\xe9`, the rest is kept. The
    file itself is still opened by its real name."""
    return "".join(_escape(ord(ch)) if unicodedata.category(ch) == "Cs" else ch for ch in name)


_ESCAPED_BYTE = re.compile(r"\\x[0-9a-fA-F]{2}")


def printable(text: object, keep: str = "") -> str:
    """`text` with every control or format character shown as an escape (`\\x1b`,
    `\\u202e`), so a name printed to a terminal shows what it is instead of acting.
    Characters in `keep` (say, newlines in a multi-line message) are left as they are."""
    out = []
    for ch in str(text):
        if _is_control(ch) and ch not in keep:
            out.append(_escape(ord(ch)))
        else:
            out.append(ch)
    return "".join(out)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: control characters escaped, and a leading
    character that would start a formula (`=`, `+`, `-`, `@`, tab, CR) guarded by a
    leading apostrophe (OWASP's advice; spreadsheets hide the apostrophe). Numbers are
    written by the caller, never through here."""
    text = " ".join(str(value).splitlines()) if "\n" in str(value) or "\r" in str(value) else str(value)
    if text.startswith(_FORMULA_STARTS) or text.lstrip().startswith(_FORMULA_STARTS):
        text = "'" + text
    return printable(text)


def terminal_safe(value):
    """`value` (JSON-like: dicts, lists, strings) with control characters escaped in every
    string, newlines and tabs kept: a whole result made fit for a terminal."""
    if isinstance(value, str):
        return printable(value, keep="\n\t")
    if isinstance(value, list):
        return [terminal_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: terminal_safe(v) for k, v in value.items()}
    return value


def folder_problem(name: str) -> str:
    """Why `name` cannot be used as one folder's name on every file system a results
    folder may travel to, or "" when it can. Refused rather than altered: altering is
    how two different names end up in one folder."""
    if not name:
        return "it is empty"
    if _ESCAPED_BYTE.search(name):
        return ("its file name is not valid UTF-8 (the bytes that are not are shown as \\xNN; an archive "
                "made on Windows does this)")
    if "\x00" in name or "/" in name or "\\" in name:
        return "it holds a path separator or a NUL character"
    if name in (".", ".."):
        return "it names a folder itself (. or ..)"
    if any(_is_control(ch) for ch in name):
        return "it holds control characters"
    if any(ch in _WINDOWS_FORBIDDEN for ch in name):
        return "it holds a character Windows refuses in a name (< > : \" | ? *)"
    if name != name.strip() or name.endswith("."):
        return ("it begins or ends with a space, or ends with a dot, which Windows and archive tools "
                "drop (so it would share a folder with the name without them)")
    if name.startswith("."):
        return "it begins with a dot (a hidden folder)"
    if unicodedata.normalize("NFC", name) != name:
        return ("it is not in Unicode's composed form (NFC); macOS stores names composed, so it would "
                "share a folder with the same letters written composed")
    if name.split(".")[0].casefold() in _WINDOWS_RESERVED:
        return f"{name.split('.')[0]!r} is a device name reserved on Windows"
    if len(name.encode("utf-8")) > MAX_FOLDER_BYTES:
        return f"it is longer than {MAX_FOLDER_BYTES} bytes"
    return ""


def folder_identity(name: str) -> str:
    """What a case-insensitive, normalizing file system (macOS, Windows) compares: two
    names with the same identity are one folder there."""
    return unicodedata.normalize("NFC", name).casefold()
