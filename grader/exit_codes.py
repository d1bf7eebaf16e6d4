"""The command line's exit statuses, in one place every command module imports (the command
modules never import `grader.cli`, which imports them). Other tools rely on them: 0 when
every submission was graded (whatever the scores), 1 when any could not be read or graded
(or a check scored below --min-score), 2 for usage errors, 130 when interrupted (Ctrl-C),
as shells report a process ended by SIGINT."""
from __future__ import annotations

import sys
from typing import Callable

EXIT_OK, EXIT_UNGRADED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


def reported(action: Callable[[], int], *, usage: tuple[type[BaseException], ...] = (),
             ungraded: tuple[type[BaseException], ...] = ()) -> int:
    """Run a command's body; an error it was expected to meet becomes one `grader: ...` line
    on stderr and its exit status (`usage` -> 2, `ungraded` -> 1), and Ctrl-C becomes 130."""
    try:
        return action()
    except usage as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ungraded as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_UNGRADED
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNGRADED", "EXIT_USAGE", "reported"]
