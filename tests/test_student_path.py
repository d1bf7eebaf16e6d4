"""A student's whole path with the conv_bn kit, for real: the instructor exports the kit and
builds the wheel; the student follows the kit's README (a fresh venv, its install line
exactly, its kernel line), works the notebook in a real Jupyter kernel of that venv, makes
a mistake, fixes it without saving, restarts the kernel, and makes each of the usual
mistakes in calling check() and `grader check`. Every message asserted is what the student
reads.

No network: pip sees only a folder of wheels repacked from this environment's installed
distributions (tests/wheelhouse.py), through PIP_NO_INDEX and PIP_FIND_LINKS, so the
README's line runs unchanged. PIP_NO_COMPILE spares byte-compiling TensorFlow."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import nbformat
import pytest

from wheelhouse import SAME_RELEASE, wheelhouse

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
PYTHON = sys.executable
HIDDEN_ALSO_COUNT = "Hidden tests also count toward your final grade"


def _pins(requires: list[str], extras: set[str]) -> list[str]:
    """`name==version` for every distribution `requires` needs with `extras`, transitively,
    as installed here (what pip will look for in the wheelhouse)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    seen: dict[str, set[str]] = {}
    todo = [(line, frozenset(extras)) for line in requires]
    while todo:
        line, active = todo.pop()
        req = Requirement(line)
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in ("", *sorted(active))):
            continue
        key = canonicalize_name(req.name)
        if key == "grader":
            continue
        new = set(req.extras) - seen.get(key, set())
        if key in pins and not new:
            continue
        seen.setdefault(key, set()).update(req.extras)
        try:
            dist = metadata.distribution(req.name)
            name = dist.metadata["Name"]
        except metadata.PackageNotFoundError:
            if key not in SAME_RELEASE:
                raise
            # The instructor's set-up holds the full tensorflow, of the same release and
            # requirements: the wheelhouse packs the kit's tensorflow-cpu pin from it.
            dist, name = metadata.distribution(SAME_RELEASE[key]), req.name
        pins[key] = f"{name}=={dist.version}"
        todo += [(r, frozenset(seen[key])) for r in (dist.requires or [])]
    return sorted(pins.values())


def _wheel(tmp_path: Path, dest: Path) -> Path:
    """The grader's wheel as the instructor builds it (from a copy: setuptools writes build/
    into the source folder, which a concurrent build in the checkout would share)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, source / name)
    shutil.copytree(REPO / "grader", source / "grader", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([PYTHON, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(dest)], check=True, cwd=tmp_path, capture_output=True)
    return next(dest.glob("grader-*.whl"))


def _requires_of(wheel: Path) -> list[str]:
    import zipfile
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _documented_setup(readme: str) -> list[str]:
    """The README's set-up block, line by line, as the student types it."""
    block = re.search(r"## Set up once.*?```sh\n(.*?)```", readme, re.S)
    assert block, readme
    return [line for line in block.group(1).splitlines() if line.strip()]


def _student_env(tmp_path: Path, wheels: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"  # `python3` is a plain Python of this version, not this checkout's venv
    bin_dir.mkdir(exist_ok=True)
    python3 = bin_dir / "python3"  # runs the real interpreter, as a system's or pyenv's python3 does
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    python3.unlink(missing_ok=True)
    python3.write_text(f'#!/bin/sh\nexec "{base.resolve()}" "$@"\n')
    python3.chmod(0o755)
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and Path(d).resolve() != Path(PYTHON).parent.resolve()]
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "GRADER_ASSIGNMENTS", "GRADER_SELF_CHECK", "GRADER_NOTEBOOK")}
    env.update(PATH=os.pathsep.join([str(bin_dir), *path]), PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels),
               PIP_NO_COMPILE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
               TF_CPP_MIN_LOG_LEVEL="3")
    return env


def _solved(kit_nb: Path, happy_from: Path):
    """The kit's notebook as a student who solved every exercise has it, with `happyModel`
    taken from `happy_from` (a sample holding a mistake)."""
    master = nbformat.read(SAMPLES / "correct.ipynb", as_version=4)
    mistake = nbformat.read(happy_from, as_version=4)
    solutions = {c.metadata["grader"]["exercise"]: c.source for c in master.cells
                 if c.metadata.get("grader", {}).get("exercise")}
    solutions["happyModel"] = next(c.source for c in mistake.cells
                                   if c.metadata.get("grader", {}).get("exercise") == "happyModel")
    nb = nbformat.read(kit_nb, as_version=4)
    for cell in nb.cells:
        name = cell.metadata.get("grader", {}).get("exercise")
        if name in solutions and cell.cell_type == "code":
            cell.source = solutions[name]
    for cell in nb.cells:  # written answers: one answered, one left empty
        if "written:why_bn_after_conv" in cell.metadata.get("tags", []):
            cell.source = "BatchNormalization standardizes the convolution's output, the next layer's input."
    return nb


def _streams(cell, name: str | None = None) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and (name is None or o.name == name))


def _html(cell) -> str:
    assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    html = [o.data["text/html"] for o in cell.outputs if o.output_type == "display_data" and "text/html" in o.data]
    assert len(html) == 1, cell.outputs
    return html[0]


def _no_traceback(cell) -> None:
    assert not [o for o in cell.outputs if o.output_type == "error"], cell.outputs
    text = _streams(cell)
    assert "Traceback" not in text and "grader/" not in text, text


@pytest.mark.slow
def test_a_student_follows_the_kit_readme_from_install_to_feedback(tmp_path, monkeypatch):
    from grader.assignment.spec import load_assignment
    from grader.kit.export import build_kit

    # The instructor: the kit (with its README) and the wheel.
    kit = build_kit(load_assignment("conv_bn"), tmp_path / "conv_bn_kit", samples=False).root
    readme = (kit / "README.md").read_text()
    wheels = tmp_path / "wheels"
    wheel = _wheel(tmp_path, wheels)
    shutil.copyfile(wheel, kit / wheel.name)  # "the file ... from your instructor, saved in this folder"
    lines = _documented_setup(readme)
    install = next(line for line in lines if line.startswith("pip install"))
    assert install == f'pip install "{wheel.name}[keras,student]"'
    extras = set(re.search(r"\[(.*)\]", install).group(1).split(","))
    wheelhouse(_pins(_requires_of(wheel), extras), wheels)

    # The student: the README's set-up block, exactly, in the kit folder.
    env = _student_env(tmp_path, wheels)
    started = time.monotonic()
    done = subprocess.run(["bash", "-e", "-c", "\n".join(lines)], cwd=kit, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    print(f"the README's set-up took {time.monotonic() - started:.0f} s; wheels "
          f"{sum(p.stat().st_size for p in wheels.iterdir()) / 2**20:.0f} MiB (uncompressed)")  # for the record
    venv_python = kit / ".venv" / "bin" / "python"
    spec = json.loads((tmp_path / "jupyter" / "kernels" / "conv_bn" / "kernel.json").read_text())
    assert Path(spec["argv"][0]).parent == venv_python.parent and spec["display_name"] == "conv_bn (grader)"
    installed = subprocess.run([str(venv_python), "-c", "import importlib.metadata as m, json; print(json.dumps("
                                "sorted(d.metadata['Name'].lower().replace('_', '-') for d in m.distributions())))"],
                               env=env, capture_output=True, text=True, check=True).stdout
    installed = json.loads(installed)
    assert "tensorflow-cpu" in installed and "tensorflow" not in installed  # one TensorFlow
    assert "matplotlib" in installed and "ipykernel" in installed and "tf-keras" not in installed
    monkeypatch.setenv("JUPYTER_DATA_DIR", env["JUPYTER_DATA_DIR"])  # where the README's line put the kernel
    work_the_notebook(kit, env, tmp_path)


def work_the_notebook(kit: Path, env: dict[str, str], tmp_path: Path) -> None:
    """The student's evening in the kit's notebook, from the installed venv's kernel."""
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient

    from grader.assignment.spec import load_assignment

    # The notebook as saved: everything solved but happyModel (ReLU before BatchNormalization).
    nb_path = kit / "conv_bn.ipynb"
    nbformat.write(_solved(nb_path, SAMPLES / "relu_before_bn.ipynb"), nb_path)
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(nb, kernel_name="conv_bn", timeout=600, allow_errors=False,
                            resources={"metadata": {"path": str(kit)}})
    checks = {}
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):  # top to bottom, as "Run All" does
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
                found = re.search(r'check\("(\w+)"\)', cell.source)
                if found:
                    checks[found.group(1)] = cell
        assert sorted(checks) == sorted(load_assignment("conv_bn").exercises)
        for name in ("standardize", "batchnorm_forward", "convolutional_model"):
            html = _html(checks[name])
            assert "All visible tests passed." in html and HIDDEN_ALSO_COUNT in html, (name, html)
            assert "checked the code you ran in this kernel (the same as the saved conv_bn.ipynb)" in html
        mistake = _html(checks["happyModel"])
        assert "ReLU comes before BatchNormalization" in mistake and "visible tests: 0 / " in mistake
        assert "(not run: fix `layer order` first)" in mistake
        titles = re.findall(r'<span class="title">([^<]*)', mistake)
        assert titles and not [t for t in titles if "hidden" in t.lower()], titles  # visible tests say so
        assert float(re.search(r"graded in ([\d.]+) s", mistake).group(1)) > 0

        def run(source: str):
            cell = nbformat.v4.new_code_cell(source)
            nb.cells.append(cell)
            client.execute_cell(cell, len(nb.cells) - 1)
            return cell

        # The fix, run but not saved: checked as run, and the student is told to save.
        fixed = next(c.source for c in nbformat.read(SAMPLES / "correct.ipynb", as_version=4).cells
                     if c.metadata.get("grader", {}).get("exercise") == "happyModel")
        run(fixed)
        html = _html(run('check("happyModel")'))
        got, of = re.search(r"visible tests: ([\d.]+) / ([\d.]+) points", html).groups()
        assert got == of and float(of) > 0
        assert ("checked the code you ran in this kernel; `happyModel` differs from the saved conv_bn.ipynb: "
                "save the notebook before you submit") in html
        assert "standardize" not in html  # the warning is about the exercise checked, once

        # Mistakes in calling check(): one line each, saying what to do, no traceback.
        cell = run('check("happymodel")')
        _no_traceback(cell)
        assert _streams(cell, "stderr").strip() == ("[grader] `happymodel` is not an exercise of conv_bn: did you "
                                                    "mean check('happyModel')?")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        shutil.copyfile(nb_path, elsewhere / "conv_bn.ipynb")
        cell = run(f'check("happyModel", notebook={str(elsewhere / "conv_bn.ipynb")!r})')
        _no_traceback(cell)
        assert _streams(cell, "stderr").startswith(
            "[grader] this notebook is not next to its kit's selfcheck/ folder")
        assert "move it back into the kit folder, or give assignment=" in _streams(cell, "stderr")
        html = _html(run("check()"))  # no argument: every exercise
        assert all(f"{name} · " in html for name in checks), html
        got, total = re.search(r"visible tests: ([\d.]+) / ([\d.]+) points", html).groups()
        assert got == total, re.sub(r"<style>.*?</style>|<[^>]+>", " ", html)

        # After a restart, before happyModel's cell runs again: the saved file, and why.
        run_sync(client.km.restart_kernel)(now=True)
        run_sync(client.kc.wait_for_ready)(timeout=120)
        html = _html(run('from grader import check\ncheck("happyModel")'))
        assert ("checked the saved conv_bn.ipynb for `happyModel`: its cell has not run in this kernel yet "
                "(or not since it restarted)") in html
        assert "ReLU comes before BatchNormalization" in html  # the saved file still has the mistake

    # The command line, in the student's venv.
    grader_cmd = str(kit / ".venv" / "bin" / "grader")
    done = subprocess.run([grader_cmd, "check", "conv_bm.ipynb"], cwd=kit, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "grader: conv_bm.ipynb: no such notebook (here: conv_bn.ipynb)"
    done = subprocess.run([grader_cmd, "check", str(elsewhere / "conv_bn.ipynb")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "conv_bn.ipynb is not next to its kit's selfcheck/ folder" in done.stderr
    done = subprocess.run([grader_cmd, "check", "conv_bn.ipynb", "--min-score", total, "--color", "never"], cwd=kit,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("grader: checking conv_bn.ipynb against conv_bn")
    score = re.search(rf"visible tests: ([\d.]+) / {total} points", done.stdout).group(1)  # the saved mistake
    assert float(score) < float(total) and "ReLU comes before BatchNormalization" in done.stdout
    assert f"grader: {score} points is below --min-score {total}: exit 1" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "  found: Why BatchNormalization right after Conv2D?" in done.stdout
    assert "  EMPTY: Should the inputs be standardized too?" in done.stdout
