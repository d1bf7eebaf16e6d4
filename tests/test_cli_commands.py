"""`grader`'s commands live with what they do (`grader.classroom.command`,
`grader.kit.command`, `grader.authoring.command`) and `grader.cli` keeps the top-level
parser and the dispatch: the command modules never import `grader.cli` (no import
circle), importing the command line loads no framework, `grader check` builds its parser
without the instructor's commands, and the commands, their order and their exit statuses
are what they were."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from grader.exit_codes import EXIT_OK, EXIT_UNGRADED, EXIT_USAGE
from test_import_boundaries import imported_names

ROOT = Path(__file__).resolve().parents[1]
COMMAND_MODULES = ("grader/classroom/command.py", "grader/kit/command.py", "grader/authoring/command.py",
                   "grader/exit_codes.py")
COMMANDS = ["grade", "report", "check", "review", "new", "assign", "validate-assignment", "export", "override"]


@pytest.mark.parametrize("path", COMMAND_MODULES)
def test_command_modules_never_import_the_command_line(path):
    names = imported_names(ROOT / path)
    assert not {n for n in names if n == "grader.cli" or n.startswith("grader.cli.")}, names


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_listed_in_order_and_runs_from_its_home():
    from grader.cli import build_parser
    parser = build_parser()
    assert list(_subcommands(parser)) == COMMANDS
    homes = {"grade": ["grade", "x.ipynb", "-a", "conv_bn"], "report": ["report", "results"],
             "check": ["check", "x.ipynb"], "review": ["review", "results"], "override": ["override", "results"],
             "new": ["new", "hw1"], "validate-assignment": ["validate-assignment", "conv_bn"]}
    modules = {name: parser.parse_args(argv).handler.__module__ for name, argv in homes.items()}
    assert modules == {"grade": "grader.classroom.command", "report": "grader.classroom.command",
                       "check": "grader.kit.command", "review": "grader.classroom.command",
                       "override": "grader.classroom.overrides", "new": "grader.authoring.scaffold",
                       "validate-assignment": "grader.authoring.validate"}


def test_importing_the_command_line_loads_no_framework_and_check_no_instructor_command():
    code = ("import sys\n"
            "import grader.cli\n"
            "grader.cli._parser_for(['check', 'nb.ipynb']).parse_args(['check', 'nb.ipynb'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'tf_keras', 'torch')"
            " or m.startswith(('grader.frameworks.keras', 'grader.frameworks.torch', 'grader.classroom.',"
            " 'grader.authoring', 'grader.export'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_exit_statuses_keep_their_meaning(tmp_path, capsys):
    from grader.cli import main
    assert main([]) == EXIT_USAGE
    with pytest.raises(SystemExit) as exited:
        main(["grade"])  # PATH and --assignment missing: argparse's usage error
    assert exited.value.code == EXIT_USAGE
    assert main(["report", str(tmp_path), "--similarity", "2"]) == EXIT_USAGE
    assert main(["grade", str(tmp_path), "-a", "no_such_assignment"]) == EXIT_USAGE
    assert main(["grade", str(tmp_path), "-a", "conv_bn", "--regrade"]) == EXIT_USAGE
    assert main(["check", str(tmp_path / "missing.ipynb")]) == EXIT_USAGE
    assert main(["grade", str(tmp_path), "-a", "conv_bn"]) == EXIT_UNGRADED  # no notebooks found
    err = capsys.readouterr().err
    assert "grader: --regrade needs --out" in err and f"grader: no notebooks found in {tmp_path}" in err
    assert "no such notebook" in err
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == EXIT_OK
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()
              if line.startswith("    ") and not line.startswith("     ")]  # a command's first help line
    assert listed == COMMANDS


def test_a_commands_expected_errors_become_one_line_and_their_exit_status(capsys):
    from grader.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNGRADED, EXIT_USAGE, reported

    def raising(exc):
        def action():
            raise exc
        return action

    assert reported(lambda: EXIT_OK) == EXIT_OK
    assert reported(raising(ValueError("bad spec")), usage=(ValueError,), ungraded=(OSError,)) == EXIT_USAGE
    assert reported(raising(OSError("no bubblewrap")), usage=(ValueError,), ungraded=(OSError,)) == EXIT_UNGRADED
    assert reported(raising(KeyboardInterrupt())) == EXIT_INTERRUPTED
    assert capsys.readouterr().err.splitlines() == ["grader: bad spec", "grader: no bubblewrap", "grader: interrupted"]
    with pytest.raises(RuntimeError):  # an error nobody expected is not hidden behind a status
        reported(raising(RuntimeError("bug")), usage=(ValueError,))
