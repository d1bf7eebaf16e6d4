"""A private virtual environment holding nbgrader, for the comparison in `compare.py`.

nbgrader is a competitor, not a dependency: it must never enter the project's own
environment (its Jupyter server stack would change what the grader and its tests import),
and a test run must never download it. So the benchmark builds a separate venv on first
use, keyed by a stamp of exactly what was asked for, and reuses it on every later run.

The notebooks nbgrader executes import TensorFlow, NumPy and matplotlib, so the venv gets
the very versions the project's own venv has: otherwise a difference in time could come
from a different TensorFlow, not from the way each tool executes a submission.

Everything that can go wrong (no network, no wheel for this platform, a broken
resolver) comes back as `Unavailable(reason)`: the benchmark reports the arm as
unavailable and carries on with the others.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / ".venv-nbgrader"
# The newest nbgrader when this benchmark was written; pinned so two runs of the benchmark
# compare the same competitor. Override with --nbgrader-spec to try another release.
NBGRADER_SPEC = "nbgrader==0.9.6"
# What the submissions import, pinned to the versions of the environment running the benchmark.
SAME_AS_OURS = ("tensorflow-cpu", "numpy", "matplotlib", "keras", "ipykernel")
INSTALL_TIMEOUT = 1500.0


@dataclass(frozen=True)
class NbgraderEnv:
    venv: Path
    version: str
    requirements: tuple[str, ...]
    install_seconds: float  # 0 when the cached venv was reused

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def nbgrader(self) -> list[str]:
        # `python -m nbgrader` rather than the console script: the venv's scripts carry an
        # absolute shebang, which breaks if the checkout is moved after the venv was made.
        return [str(self.python), "-m", "nbgrader"]


@dataclass(frozen=True)
class Unavailable:
    reason: str


def requirements(nbgrader_spec: str = NBGRADER_SPEC) -> tuple[str, ...]:
    pinned = []
    for name in SAME_AS_OURS:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            if name == "tensorflow-cpu":  # macOS and others ship plain `tensorflow`
                try:
                    pinned.append(f"tensorflow=={importlib.metadata.version('tensorflow')}")
                    continue
                except importlib.metadata.PackageNotFoundError:
                    pass
            pinned.append(name)
    return (nbgrader_spec, *pinned)


def _stamp(reqs: tuple[str, ...], python: str) -> str:
    key = json.dumps({"requirements": list(reqs), "python": sys.version.split()[0], "base": python})
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def ensure(venv: Path = DEFAULT_VENV, *, nbgrader_spec: str = NBGRADER_SPEC, log: Path | None = None,
           python: str = sys.executable, echo=print) -> NbgraderEnv | Unavailable:
    """The cached environment if it matches what is asked for, else a freshly built one."""
    venv = Path(venv)
    reqs = requirements(nbgrader_spec)
    stamp_file = venv / ".bench-stamp"
    stamp = _stamp(reqs, python)
    log = log or HERE / "out" / "nbgrader-install.log"
    started = time.perf_counter()
    fresh = not (stamp_file.is_file() and stamp_file.read_text().strip() == stamp and (venv / "bin" / "python").exists())
    if fresh:
        echo(f"installing {', '.join(reqs)} into {venv} (once; later runs reuse it) ...")
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log, "w") as out:
                if not (venv / "bin" / "python").exists():
                    subprocess.run([python, "-m", "venv", str(venv)], check=True, stdout=out, stderr=subprocess.STDOUT,
                                   timeout=300)
                # The venv is a cache, never part of the repository.
                (venv / ".gitignore").write_text("*\n")
                env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
                subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *reqs], check=True,
                               stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, env=env)
        except subprocess.TimeoutExpired:
            return Unavailable(f"installing nbgrader took over {INSTALL_TIMEOUT:.0f} s (log: {log})")
        except (OSError, subprocess.CalledProcessError) as exc:
            return Unavailable(f"could not install nbgrader ({exc}); last lines of {log}:\n{_tail(log)}")
    try:
        probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import nbgrader, tensorflow, ipykernel; print(nbgrader.__version__)"],
                               capture_output=True, text=True, timeout=180,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Unavailable(f"the nbgrader environment does not start: {exc}")
    if probe.returncode != 0:
        stamp_file.unlink(missing_ok=True)  # rebuild next time instead of failing the same way
        return Unavailable(f"the nbgrader environment is broken: {probe.stderr.strip()[-800:]}")
    stamp_file.write_text(stamp + "\n")
    return NbgraderEnv(venv=venv, version=probe.stdout.strip().splitlines()[-1], requirements=reqs,
                       install_seconds=round(time.perf_counter() - started, 1) if fresh else 0.0)


if __name__ == "__main__":
    result = ensure()
    print(result)
    sys.exit(0 if isinstance(result, NbgraderEnv) else 1)
