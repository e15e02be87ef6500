"""Command line of the instructor tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from autograder.paths import all_labs, check_lab_name


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate labs/LAB/LAB.ipynb from solutions/ with nbgrader")
    release.add_argument("labs", nargs="*", metavar="LAB", help="labs to release (default: all)")
    release.add_argument("--check", action="store_true", help="exit 1 if labs/ is out of date; write nothing")

    publish = commands.add_parser("publish", help="write the student edition (book, labs, dlcourse) into DEST")
    publish.add_argument("dest", type=Path, metavar="DEST", help="an empty folder or a clone of the student repository")
    publish.add_argument("--url", help="the public student repository (default: repository.url in _config.yml)")
    publish.add_argument("--branch", help="its branch (default: repository.branch in _config.yml)")

    grade = commands.add_parser("grade", help="autograde a folder of <student_id>.ipynb submissions")
    grade.add_argument("lab", metavar="LAB")
    grade.add_argument(
        "--submissions", type=Path, required=True, help="folder or zip: <student_id>.ipynb, nbgrader, Canvas or Moodle"
    )
    grade.add_argument("--name-pattern", help="regex with a student_id group, matched against each notebook's path")
    grade.add_argument("--out", type=Path, required=True, help="folder for grades, scores, feedback, problems")
    grade.add_argument("-j", "--jobs", type=int, default=1, help="notebooks graded at once, each in its own process")
    grade.add_argument("--timeout", type=float, default=900, help="wall-clock seconds per notebook (default 900)")
    grade.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell (default 300)")
    grade.add_argument("--memory-mb", type=int, default=6144, help="memory limit per notebook in MiB (default 6144)")
    grade.add_argument("--cluster", metavar="ADDRESS", help="grade on a Dask scheduler, e.g. tcp://host:8786")
    grade.add_argument(
        "--no-sandbox",
        dest="sandbox",
        action="store_false",
        help="run kernels without bubblewrap (only on a machine with nothing to protect; noted in report.html)",
    )
    grade.add_argument(
        "--run-experiments",
        action="store_true",
        help="also run the lab's experiment cells, which decide no score (slower; their plots in the feedback)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "release":
        from autograder.release import release

        labs = [check_lab_name(lab) for lab in args.labs] or all_labs()
        return release(labs, check=args.check)
    if args.command == "publish":
        from autograder.publish import publish

        return publish(args.dest, url=args.url, branch=args.branch)
    if args.cluster is None:
        from autograder.fork_server import start_fork_server

        start_fork_server()  # first: the workers' imports overlap the grader's own (see autograder.fork_server)
    from autograder.grade import Limits, grade

    if args.jobs < 1:
        raise SystemExit("-j must be at least 1")
    limits = Limits(seconds=args.timeout, cell_seconds=args.cell_timeout, memory_mb=args.memory_mb)
    return grade(
        check_lab_name(args.lab),
        args.submissions,
        args.out,
        jobs=args.jobs,
        limits=limits,
        name_pattern=args.name_pattern,
        cluster=args.cluster,
        sandbox=args.sandbox,
        run_experiments=args.run_experiments,
    )
