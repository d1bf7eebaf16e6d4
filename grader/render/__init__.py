"""One renderer per output format, all reading only `grader.results`.

Student-facing formats (text, markdown, html, coursera, Gradescope's top-level output)
apply one hidden-test policy, defined in `_common`; instructor formats (junit, jsonl,
`audience="instructor"`) show everything.
"""
from grader.render._common import is_hidden_from_student
from grader.render.coursera import to_coursera, write_coursera
from grader.render.gradescope import to_gradescope, write_gradescope
from grader.render.html import render_html, render_html_fragment
from grader.render.jsonl import to_json_line
from grader.render.junit import to_junit
from grader.render.markdown import render_markdown
from grader.render.text import render_text

__all__ = [
    "render_text", "render_markdown", "render_html", "render_html_fragment",
    "to_gradescope", "write_gradescope", "to_junit", "to_coursera", "write_coursera",
    "to_json_line", "is_hidden_from_student",
]
