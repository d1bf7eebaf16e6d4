"""The instructor's CSV files (roster, hand-in manifest, a roster handed to an export) read
one way: UTF-8 with or without the byte-order mark spreadsheets write, headers matched
without regard to case or surrounding spaces, and an unreadable file reported as a usage
error that names it."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path


def read_csv_text(path: Path, what: str, error: type[Exception]) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path}: cannot be read ({exc})") from None


@dataclass
class CsvTable:
    reader: csv.DictReader  # its rows, one pass; `reader.line_num` is the file's line
    columns: dict[str, str]  # header lower-cased and stripped -> as written

    def column(self, options) -> str | None:
        """The header as written of the first of `options` (lower-case names) present."""
        return next((self.columns[o] for o in options if o in self.columns), None)


def read_csv_table(path: str | Path, what: str, error: type[Exception]) -> CsvTable:
    reader = csv.DictReader(io.StringIO(read_csv_text(Path(path), what, error)))
    return CsvTable(reader, {(c or "").strip().lower(): c for c in reader.fieldnames or []})
