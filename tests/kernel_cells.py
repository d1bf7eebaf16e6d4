"""What a notebook cell run in a real Jupyter kernel (nbclient) showed: the self-check's one
HTML report, and a JSON line a test's own cell printed about the kernel's process."""
from __future__ import annotations

import json


def cell_html(cell) -> str:
    """The cell's single HTML display (a check() result); a cell that raised fails the test."""
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    html = [o.data["text/html"] for o in cell.outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert len(html) == 1, cell.outputs
    return html[0]


def cell_report(cell) -> dict:
    """The JSON a cell printed after 'REPORT ' on its standard output."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    line = next(line for line in text.splitlines() if line.startswith("REPORT "))
    return json.loads(line[len("REPORT "):])
