"""The classroom's commands: `grade` (a class, or a few notebooks, graded in parallel; with
--out into the gradebook), `report` (the class report), `review` (the local scoring page)
and `override` (`grader.classroom.overrides`). Each `register_*` adds its sub-parsers to
the top-level parser (`grader.cli`, which keeps their order in `grader --help`), each
command's handler runs it and returns its exit status (`grader.exit_codes`).

`grader grade`'s contract is relied on by other tools (see `grader.cli`): with
--format json, stdout holds exactly one JSON object per submission per line; exit 0 when
every submission was graded, 1 when any could not be, 2 for usage errors.

Imports here are light: the modules a command runs are imported when it runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

from grader.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_UNGRADED, EXIT_USAGE, reported
from grader.sandbox.client import ISOLATION_CHOICES


def register_grading(sub) -> None:
    """Add `grade` and `report` to the sub-parsers `sub`."""
    g = sub.add_parser("grade", help="grade submissions (notebooks or folders of notebooks)",
                       description="Grade every notebook given or found below the given folders. "
                                   "Exit 0 if all were graded, 1 if any could not be, 2 on usage errors.")
    g.add_argument("paths", nargs="+", metavar="PATH")
    g.add_argument("--assignment", "-a", required=True, help="assignment name (assignments/NAME) or folder")
    g.add_argument("--format", choices=("text", "json", "junit"), default="text",
                   help="text for people, json for tools (one object per line), junit for CI")
    g.add_argument("--jobs", "-j", type=int, default=None, help="parallel grading processes (default: cores)")
    g.add_argument("--sandbox", default="auto", choices=ISOLATION_CHOICES,
                   help="isolation: auto picks the strongest available; strict refuses anything weaker "
                        "than bubblewrap")
    g.add_argument("--visible-only", action="store_true", help="skip hidden tests (as a self-check does)")
    g.add_argument("--audience", choices=("student", "instructor"), default="instructor",
                   help="text format: what to show (students never see hidden test details)")
    g.add_argument("--out", "-o", metavar="DIR", default=None,
                   help="record results in DIR: gradebook.sqlite (as each submission finishes; a rerun grades "
                        "only new or changed notebooks), feedback/STUDENT/ (HTML, Markdown, Gradescope "
                        "results.json), grades.csv and grades.json")
    g.add_argument("--regrade", action="store_true",
                   help="with --out: grade every notebook again, even those unchanged since the last run")
    g.add_argument("--roster", metavar="CSV", default=None,
                   help="map submissions to students: a CSV with columns file_or_folder,student_id,name "
                        "(file_or_folder is the notebook's name without .ipynb, or the student's folder)")
    g.add_argument("--manifest", metavar="CSV", default=None,
                   help="with --out: when each submission was handed in, for late penalties (columns "
                        "file_or_folder or submission, and submitted_at as ISO 8601 with a time); without it "
                        "no late penalty is applied (see --times)")
    g.add_argument("--times", choices=("none", "mtime"), default="none",
                   help="with --out: `mtime` takes a file's modification time as its hand-in time when the "
                        "manifest gives none (only if the files kept them: cp, git clone and unzip reset them); "
                        "default `none`: no late penalty without a manifest's time")
    g.add_argument("--pick", metavar="RULE", default=None,
                   help="with --out: which of a student's notebooks counts when several were handed in at the "
                        "same time (never chosen by name otherwise): newest (later modification time) or "
                        "name:GLOB (e.g. 'name:hw3*.ipynb')")
    g.add_argument("--grading-timeout", type=float, default=None, metavar="SECONDS",
                   help="wall-clock budget for grading one submission (default: the assignment's "
                        "grading_timeout, else max(300, 10 x call_timeout)); past it the submission is reported "
                        "as over budget and the batch goes on")
    g.add_argument("--cluster", metavar="ADDRESS", default=None,
                   help="grade on the Dask cluster whose scheduler is at ADDRESS (tcp://HOST:8786) "
                        "instead of local processes; see docs/cluster.md")
    g.set_defaults(handler=run_grade)

    r = sub.add_parser("report", help="write the class report (RESULTS/report.html) from a results folder",
                       description="Write a self-contained HTML class report from the gradebook that "
                                   "`grader grade --out RESULTS` filled: score distribution, pass rate per "
                                   "test, common mistakes, slowest submissions, similar code.")
    r.add_argument("results", metavar="RESULTS", help="the folder given to grader grade --out")
    r.add_argument("--output", metavar="FILE", default=None, help="where to write (default RESULTS/report.html)")
    r.add_argument("--similarity", type=float, default=0.9, metavar="X",
                   help="near-identical code: token-sequence similarity (difflib ratio, after normalizing "
                        "comments, layout and local names) at least X (default 0.9)")
    r.add_argument("--top", type=int, default=10, metavar="N", help="how many slowest submissions to list")
    r.set_defaults(handler=run_report)


def register_review(sub) -> None:
    """Add `review` to the sub-parsers `sub`."""
    v = sub.add_parser("review", help="score written answers and override tests in a local web page",
                       description="Serve the instructor's review page on 127.0.0.1 (nothing leaves this "
                                   "machine): written answers side by side across students, scored from the "
                                   "rubric; each student's autograded feedback, with overrides. Every save goes "
                                   "into the gradebook and rewrites grades.csv and feedback/. Ctrl-C stops it.")
    v.add_argument("results", metavar="RESULTS", help="the folder given to grader grade --out")
    v.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    v.add_argument("--grader", metavar="NAME", default=None,
                   help="the name recorded with each score and override (default: your login name)")
    v.set_defaults(handler=run_review)


def register_override(sub) -> None:
    """Add `override` to the sub-parsers `sub` (its parser and handler live with it)."""
    from grader.classroom import overrides
    overrides.register(sub)


def run_grade(args) -> int:
    """`grader grade`: the assignment read and its framework found installed (on a cluster,
    its workers need the framework, not this machine) before any grading process starts."""
    from grader.assignment.spec import AssignmentError, load_assignment
    from grader.sandbox.client import IsolationUnavailable
    try:
        assignment = load_assignment(args.assignment)
    except AssignmentError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.cluster:
        from grader.frameworks.installed import require_framework
        require_framework(assignment, then="run the command again")
    return reported(lambda: _grade(args, assignment), ungraded=(IsolationUnavailable,))


def _grade(args, assignment) -> int:
    from grader.classroom.batch import Options, default_jobs, find_submissions
    from grader.classroom.names import printable
    from grader.classroom.gradebook import GradebookError
    from grader.classroom.roster import Identities, read_roster
    from grader.sandbox.client import choose_isolation

    if args.regrade and not args.out:
        print("grader: --regrade needs --out (without a gradebook everything is graded anyway)", file=sys.stderr)
        return EXIT_USAGE
    if args.jobs is not None and args.jobs < 1:
        print("grader: --jobs must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.grading_timeout is not None and not args.grading_timeout > 0:
        print("grader: --grading-timeout must be more than 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    if args.manifest and not args.out:
        print("grader: --manifest needs --out (submission times matter to the gradebook's late penalties)",
              file=sys.stderr)
        return EXIT_USAGE
    if (args.pick or args.times != "none") and not args.out:
        print("grader: --pick and --times need --out (they decide what the gradebook counts)", file=sys.stderr)
        return EXIT_USAGE
    from grader.classroom.handin import parse_pick
    try:
        args.pick_rule = parse_pick(args.pick)
    except ValueError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        roster = read_roster(args.roster) if args.roster else None
        from grader.classroom.manifest import read_manifest
        times = read_manifest(args.manifest) if args.manifest else None
    except GradebookError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    choose_isolation(args.sandbox)  # fail fast under --sandbox strict
    tasks = find_submissions(args.paths)
    if not tasks:
        print("grader: no notebooks found in " + printable(", ".join(args.paths)), file=sys.stderr)
        return EXIT_UNGRADED
    options = Options(assignment=str(assignment.root), isolation=args.sandbox,
                      include_hidden=not args.visible_only, grading_timeout=args.grading_timeout)
    jobs = args.jobs or min(default_jobs(), len(tasks))
    cluster_errors: tuple = ()
    if args.cluster:
        from grader.classroom.cluster import ClusterError
        cluster_errors = (ClusterError,)
    if args.out:
        return reported(lambda: _grade_into(args, assignment, options, tasks, roster, jobs, times),
                        usage=(GradebookError,), ungraded=cluster_errors)
    return reported(lambda: _grade_to_stdout(args, assignment, options, tasks,
                                             Identities(roster) if roster else None, jobs),
                    usage=(GradebookError,), ungraded=cluster_errors)


def _stream(args, options, paths, jobs, fingerprint):
    if args.cluster:
        from grader.classroom.cluster import grade_on_cluster
        return grade_on_cluster(paths, options, args.cluster, fingerprint=fingerprint)
    from grader.classroom.batch import grade_stream
    return grade_stream(paths, options, jobs=jobs)


def _backend(args, jobs: int) -> str:
    return f"dask {args.cluster}" if args.cluster else f"local, {jobs} process{'es' * (jobs != 1)}"


def _grade_to_stdout(args, assignment, options, tasks, identities, jobs) -> int:
    """Without --out: every submission is graded and shown, nothing is kept."""
    from grader.classroom.batch import Progress
    from grader.render import render_text, to_json_line, to_junit

    results = []
    if identities is not None:  # a file named like another, listed, student's id is not graded as them
        from grader.classroom.names import printable
        from grader.classroom.recording import refused
        for task in [t for t in tasks if identities.impostor(t.student)]:
            why = identities.impostor(task.student)
            print(f"grader: {printable(task.key)}: {why}", file=sys.stderr, flush=True)
            results.append(refused(task, options.assignment, why).result)
            if args.format == "json":
                print(to_json_line(results[-1]), flush=True)
        tasks = [t for t in tasks if not identities.impostor(t.student)]
    by_path = {t.path: t for t in tasks}
    show_progress = args.format != "text" or len(tasks) > 1
    progress = Progress(len(tasks), sys.stderr, tty=sys.stderr.isatty()) if show_progress else None
    for graded in _stream(args, options, list(by_path), jobs, assignment.fingerprint):
        result = graded.result
        if identities is not None:
            result.student = identities.student_id(by_path[graded.path].student)
        results.append(result)
        try:  # one result that cannot be shown is its own line; the class goes on
            if args.format == "json":
                print(to_json_line(result), flush=True)
            elif args.format == "text":
                print(render_text(for_terminal(result), color=sys.stdout.isatty(), audience=args.audience),
                      flush=True)
                print(flush=True)
        except Exception as exc:  # noqa: BLE001
            from grader.classroom.names import printable
            result.errors.append(f"its result could not be shown ({type(exc).__name__})")
            print(f"grader: {printable(graded.path)}: its result could not be shown ({type(exc).__name__}: "
                  f"{printable(exc)})", file=sys.stderr, flush=True)
        _report_problems(graded)
        if progress and args.format != "text":
            progress.update(result)
    if args.format == "junit":
        print(to_junit(results))
    return EXIT_UNGRADED if any(r.errors for r in results) else EXIT_OK


def _grade_into(args, assignment, options, tasks, roster, jobs, times=None) -> int:
    """With --out: grade what is new or changed into the gradebook, one transaction per
    submission as it finishes, then derive the class files from the gradebook."""
    from grader.classroom.batch import Progress
    from grader.classroom.names import printable
    from grader.classroom.gradebook import Gradebook
    from grader.classroom.outputs import export_grades
    from grader.classroom.handin import plan_hand_ins
    from grader.classroom.recording import record_one, refused
    from grader.render import to_json_line, to_junit

    out = Path(args.out)
    book = Gradebook(out)
    try:
        book.bind(assignment)
        if roster is not None:
            book.set_roster(roster)
        identities = book.identities()
        fingerprint = assignment.fingerprint
        todo, kept = book.split(tasks, fingerprint, regrade=args.regrade)
        if roster is not None:
            strangers = sorted({t.student for t in tasks
                                if identities.entry(t.student) is None and not identities.impostor(t.student)})
            if strangers:
                shown = ", ".join(printable(s) for s in strangers[:5]) + (
                    f" and {len(strangers) - 5} more" if len(strangers) > 5 else "")
                print(f"grader: not in the roster (graded under their own name): {shown}", file=sys.stderr)
        jobs = min(jobs, max(1, len(todo)))
        print(f"grader: {len(tasks)} notebook{'s' * (len(tasks) != 1)}: {len(todo)} to grade"
              + (f", {len(kept)} unchanged since the last run" if kept else "")
              + (f" ({_backend(args, jobs)})" if todo else ""), file=sys.stderr, flush=True)
        from grader.classroom.answer_reading import read_stored_answers  # questions added since, or never read
        for line in read_stored_answers(book, assignment, {t.key: t.path for t in tasks},
                                        skip={t.key for t in todo}).lines():
            print(line, file=sys.stderr, flush=True)

        # Which times are trusted for lateness, and ties that no file name may break (grader.classroom.handin).
        book.set_meta("times", args.times)
        book.set_meta("pick", str(args.pick_rule))
        plan = plan_hand_ins(book, tasks, times, rule=args.pick_rule, use_mtimes=args.times == "mtime",
                             due=getattr(assignment, "late", None) is not None)
        refused_now = plan.refused()
        for tie in plan.ties:
            print(f"grader: {printable(tie.student)}: {tie.message()}", file=sys.stderr, flush=True)
        for line in plan.lines:
            print(f"grader: {line}", file=sys.stderr, flush=True)
        # A file not in the roster named like a listed student's id is never graded in their place.
        impostors = {t.key: identities.impostor(t.student) for t in tasks}
        impostors = {key: why for key, why in impostors.items() if why}
        for key, why in impostors.items():
            print(f"grader: {printable(key)}: {why}", file=sys.stderr, flush=True)
        todo = [t for t in todo if t.key not in refused_now and t.key not in impostors]
        kept = [t for t in kept if t.key not in refused_now and t.key not in impostors]
        if times is not None:  # hand-in times for what is not graded again, and names that match nothing
            for task in kept:
                if times.time_for(task.key, task.student):
                    book.set_submitted_at(task.key, times.time_for(task.key, task.student))
            unused = times.unused(tasks)
            if unused:
                print("grader: in the manifest but not among the submissions: "
                      + ", ".join(printable(u) for u in unused[:5]) + (f" and {len(unused) - 5} more"
                                                                       if len(unused) > 5 else ""), file=sys.stderr)
        results = [refused(t, options.assignment, impostors[t.key]).result for t in tasks if t.key in impostors]
        for task in kept:  # already graded: reported as stored, not graded again
            try:
                result = book.result(task.key)
            except Exception as exc:  # noqa: BLE001 - one stored grade that cannot be read is its own line
                print(f"grader: {printable(task.key)}: its stored grade cannot be read ({printable(exc)}); "
                      f"grade it again with --regrade", file=sys.stderr, flush=True)
                continue
            result.student = identities.student_id(task.student)
            results.append(result)
            if args.format == "json":
                print(to_json_line(result), flush=True)

        run_id = book.start_run(fingerprint=fingerprint, command=" ".join(sys.argv[1:]) or "grade",
                                backend=_backend(args, jobs), found=len(tasks), to_grade=len(todo))
        outcome, graded_now = "interrupted", 0
        by_path = {t.path: t for t in todo}
        progress = Progress(len(todo), sys.stderr, tty=sys.stderr.isatty()) if todo else None
        try:
            for task in (t for t in tasks if t.key in refused_now):  # stored as not graded, with the reason
                recorded = record_one(book, task, refused(task, options.assignment, refused_now[task.key]),
                                      student_id=identities.student_id(task.student), run_id=run_id,
                                      fingerprint=fingerprint,
                                      submitted_at=times.time_for(task.key, task.student) if times else "")
                results.append(recorded.result)
                for line in recorded.problems:
                    print(f"grader: {line}", file=sys.stderr, flush=True)
                if args.format == "json":
                    print(to_json_line(recorded.result), flush=True)
            for graded in _stream(args, options, list(by_path), jobs, fingerprint):
                task = by_path[graded.path]
                # Storing it and rendering its feedback never stop the class: a failure is this file's line.
                recorded = record_one(book, task, graded, student_id=identities.student_id(task.student),
                                      run_id=run_id, fingerprint=fingerprint,
                                      submitted_at=times.time_for(task.key, task.student) if times else "")
                graded_now += 1
                result = recorded.result
                for line in recorded.problems:
                    print(f"grader: {line}", file=sys.stderr, flush=True)
                _report_problems(graded)
                results.append(result)
                if args.format == "json":
                    print(to_json_line(result), flush=True)
                progress.update(result)
            outcome = "finished"
        except KeyboardInterrupt:
            print(f"\ngrader: interrupted; the {graded_now} submission{'s' * (graded_now != 1)} graded in this run "
                  f"are kept in {out}/; run the same command again to grade the rest", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            book.finish_run(run_id, graded=graded_now, outcome=outcome)
            grades = export_grades(book)
        if args.format == "junit":
            print(to_junit(results))
        ungraded = sum(bool(r.errors) for r in results)
        summary = (f"{len(results) - ungraded} graded, {ungraded} could not be graded "
                   f"({graded_now} graded now, {len(kept)} unchanged); results in {out}/: grades.csv, "
                   f"grades.json, feedback/, gradebook.sqlite (`grader report {out}` for the class report)")
        print(summary, file=sys.stdout if args.format == "text" else sys.stderr, flush=True)
        from grader.classroom.overrides import attention_lines
        for line in attention_lines(grades, out):  # decisions gone stale, answers waiting for a person
            print(line, file=sys.stderr, flush=True)
        return EXIT_UNGRADED if ungraded else EXIT_OK
    finally:
        book.close()


def for_terminal(result):
    """A copy of `result` whose every text is safe to print: a file name or a student's
    print() holding escape sequences shows them escaped instead of acting on the terminal."""
    from grader.classroom.names import terminal_safe
    from grader.results import submission_result_from_dict
    return submission_result_from_dict(terminal_safe(result.to_dict()))


def _report_problems(graded) -> None:
    """The grader's own troubles that cost no grade (the class report could not use a
    submission's code): said, never swallowed."""
    from grader.classroom.names import printable
    for problem in getattr(graded, "problems", ()):
        print(f"grader: {printable(graded.path)}: {printable(problem)}", file=sys.stderr, flush=True)


def run_report(args) -> int:
    """`grader report`: RESULTS/report.html (or --output) from the gradebook."""
    from grader.classroom.gradebook import GradebookError
    from grader.classroom.report import write_report

    if not 0.0 < args.similarity <= 1.0:
        print("grader: --similarity must be in (0, 1]", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = write_report(args.results, args.output, threshold=args.similarity, top=max(0, args.top))
    except GradebookError as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(path)
    return EXIT_OK


def run_review(args) -> int:
    """Serve the review page until Ctrl-C; every score is saved as it is entered."""
    from grader.classroom.gradebook import GradebookError
    from grader.classroom.names import printable
    from grader.classroom.review import ReviewError, ReviewServer
    try:
        server = ReviewServer(args.results, grader=args.grader, port=args.port)
    except (GradebookError, ReviewError) as exc:
        print(f"grader: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"grader: reviewing {printable(args.results)} as {printable(server.review.grader)}; open\n"
          f"    {server.url}\n(the address holds an access token: keep it to yourself; Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("\ngrader: review stopped; every score and override saved is in the gradebook", file=sys.stderr)
    finally:
        server.close()
    return EXIT_OK


__all__ = ["for_terminal", "register_grading", "register_override", "register_review", "run_grade", "run_report",
           "run_review"]
