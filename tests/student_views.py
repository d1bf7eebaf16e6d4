"""Every view of a result a student reads, as text: what hidden-input leak tests search."""
from __future__ import annotations

import json


def student_views(result) -> dict[str, str]:
    from grader.render import render_html, render_markdown, render_text, to_gradescope
    gradescope = to_gradescope(result)
    visible = [t for t in gradescope["tests"] if t.get("visibility") == "visible"]
    return {"text": render_text(result, audience="student"), "markdown": render_markdown(result),
            "html": render_html(result),
            "gradescope": json.dumps({"output": gradescope.get("output", ""), "tests": visible})}
