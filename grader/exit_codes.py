"""The command line's exit statuses, in one place every command module imports (the command
modules never import `grader.cli`, which imports them). Other tools rely on them: 0 when
every submission was graded (whatever the scores), 1 when any could not be read or graded
(or a check scored below --min-score), 2 for usage errors, 130 when interrupted (Ctrl-C),
as shells report a process ended by SIGINT."""
from __future__ import annotations

EXIT_OK, EXIT_UNGRADED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNGRADED", "EXIT_USAGE"]
