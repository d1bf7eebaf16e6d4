"""The kit's README.md: what a student alone with the kit needs to get from an unzipped
folder to a first `check()`, and nothing an instructor would have to explain in person.

Its install line is the one `tests/test_student_path.py` runs in a fresh virtual
environment, and that test reads it from here, so the README cannot drift from what works.
"""
from __future__ import annotations

from pathlib import Path

import grader
from grader.frameworks.installed import wheel_name

KERAS_EXTRA = {"3": "keras", "2": "keras2"}  # the pyproject extra that brings the assignment's TensorFlow
README = "README.md"


def install_line(keras: str = "3", version: str = grader.__version__, framework: str = "keras") -> str:
    """The one pip command a student runs: the grader wheel with the assignment's framework
    (its TensorFlow, or torch for a PyTorch assignment: a torch kit never imports
    TensorFlow), what the notebook imports (matplotlib) and a Jupyter kernel."""
    extra = "torch" if framework == "torch" else KERAS_EXTRA.get(str(keras), "keras")
    return f'pip install "{wheel_name(version)}[{extra},student]"'


def kernel_line(name: str) -> str:
    return f'python -m ipykernel install --user --name {name} --display-name "{name} (grader)"'


def readme_text(assignment, notebook: str, warms_up: bool = False) -> str:
    name = assignment.name
    first = assignment.exercises[0] if assignment.exercises else "EXERCISE"
    exercises = ", ".join(f"`{e}`" for e in assignment.exercises)
    title = getattr(assignment, "title", "") or name
    library = "PyTorch" if getattr(assignment, "framework", "keras") == "torch" else "TensorFlow"
    early = (" The notebook's\nfirst code cell starts the grader early, so the first check is usually quicker."
             if warms_up else "")
    return f"""# {title}: your notebook and its self-check

This folder holds `{notebook}` (the assignment), the files it imports, and `selfcheck/`:
the visible tests the instructor wrote, so that you can check your work as you go. Keep
the notebook **in this folder**: `check()` looks for `selfcheck/` next to it.

## Set up once (about 5 minutes; {library} is a few hundred MB to download)

You need Python 3.10 or newer, and the file `{wheel_name()}` from your instructor,
saved in this folder. In a terminal, in this folder:

```sh
python3 -m venv .venv
. .venv/bin/activate          # Windows: .venv\\Scripts\\activate
{install_line(assignment.keras, framework=getattr(assignment, "framework", "keras"))}
{kernel_line(name)}
```

The first three lines make a private Python environment and install the grader with
{library}, matplotlib and a Jupyter kernel; the last one lets Jupyter use that
environment under the name "{name} (grader)".

## Open the notebook

Open `{notebook}` from this folder in Jupyter (JupyterLab, Jupyter Notebook or VS Code)
and choose the kernel "{name} (grader)". No Jupyter yet? In the activated environment:
`pip install notebook`, then `jupyter notebook {notebook}`.

## Check your work

Run the cells from the top. After each exercise a cell runs, for example,

```python
from grader import check
check("{first}")
```

It grades the code you last **ran** for that exercise (no need to save) with the
visible tests, and shows each test's points, what was expected, what your code gave,
where, and what to change. `check()` with no name checks every exercise ({exercises}).
It also says which code it checked: the code you ran, or the saved file when the
exercise's cell has not run since the kernel started (run that cell, then check again).
Hidden tests count toward your grade too; they are not shown.

The first check in a kernel starts the grader: about 5 s (up to half a minute on a busy
machine; it says so while you wait). Later checks take about a second.{early}

From a terminal, `grader check {notebook}` prints the same feedback for the saved file.

Before you hand in: save the notebook (check() warns when the code you ran differs from
the saved file), and hand in `{notebook}` only.
"""


def write_readme(folder: Path, assignment, notebook: str) -> Path:
    path = Path(folder) / README
    try:
        warms_up = "warm_up(" in (Path(folder) / notebook).read_text(encoding="utf-8")
    except OSError:
        warms_up = False
    path.write_text(readme_text(assignment, notebook, warms_up), encoding="utf-8")
    return path
