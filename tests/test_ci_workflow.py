"""The example GitHub Actions workflow (docs/ci/github-actions.yml) has the steps a classroom
repository needs, and the grading command it runs passes on a correct notebook and fails on a
wrong one, leaving report.xml either way."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / "docs" / "ci" / "github-actions.yml"
SAMPLES = REPO / "assignments" / "conv_bn" / "samples"
MARKER = "# grader-ci: grade"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps() -> list[dict]:
    (job,) = workflow()["jobs"].values()
    return job["steps"]


def grading_command() -> str:
    """The line after the marker comment: the command the grading step runs."""
    lines = WORKFLOW.read_text(encoding="utf-8").splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.strip().startswith(MARKER)]
    return lines[at + 1].strip()


def test_the_workflow_has_the_steps_a_classroom_repository_needs():
    data = workflow()
    assert set(data[True]) >= {"push"}  # YAML 1.1 reads the key `on` as True
    uses = [s.get("uses", "") for s in steps()]
    runs = "\n".join(s.get("run", "") for s in steps())
    assert any(u.startswith("actions/checkout@") for u in uses)
    assert any(u.startswith("actions/setup-python@") for u in uses)
    assert "pip install ./grader-src" in runs
    assert "apt-get install -y -q bubblewrap" in runs
    upload = next(s for s in steps() if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "report.xml" and upload["if"] == "always()"
    grade = next(s for s in steps() if MARKER in s.get("run", ""))
    assert grading_command() in grade["run"]
    assert "--junitxml=report.xml" in grading_command()
    assert {"ASSIGNMENT", "NOTEBOOK"} <= set(data["env"])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Run the workflow's command as the runner would, in a fresh checkout-like folder per
    sample (the student's notebook at the top, the grader repository in grader-src/)."""
    env_vars = workflow()["env"]
    procs = {}
    for sample in ("correct", "relu_before_bn"):
        work = tmp_path_factory.mktemp(f"ci_{sample}")
        (work / "grader-src").symlink_to(REPO, target_is_directory=True)
        (work / env_vars["NOTEBOOK"]).write_bytes((SAMPLES / f"{sample}.ipynb").read_bytes())
        env = dict(os.environ, ASSIGNMENT=env_vars["ASSIGNMENT"], NOTEBOOK=env_vars["NOTEBOOK"],
                   TF_CPP_MIN_LOG_LEVEL="3",
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        # GitHub runs `shell: bash` steps as `bash --noprofile --norc -eo pipefail {0}`.
        procs[sample] = (work, subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", grading_command()], cwd=work, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return {name: (p.communicate(timeout=300)[0], p.returncode, work / "report.xml")
            for name, (work, p) in procs.items()}


def _counts(report: Path) -> dict[str, int]:
    root = ET.parse(report).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    return {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}


@pytest.mark.slow
def test_the_grading_command_passes_on_a_correct_notebook(graded):
    out, code, report = graded["correct"]
    assert code == 0, out
    assert _counts(report) == {"tests": 7, "failures": 0, "errors": 0, "skipped": 0}  # visible tests only
    assert "conv_bn · conv_bn.ipynb · 21 / 21 points (hidden tests not run)" in out


@pytest.mark.slow
def test_the_grading_command_fails_on_a_wrong_notebook(graded):
    out, code, report = graded["relu_before_bn"]
    assert code != 0, out
    counts = _counts(report)
    assert counts["failures"] == 1 and counts["skipped"] == 1, counts
    assert "ReLU comes before BatchNormalization" in ET.parse(report).getroot().find(".//failure").get("message")
    assert "ReLU comes before BatchNormalization" in out
