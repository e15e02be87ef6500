"""``python -m autograder grade``: autograde a folder of submissions with nbgrader.

Outputs, all under ``--out DIR``:

- ``grades.csv``: nbgrader's CSV export, one row per student;
- ``scores.csv``: ``student_id,grade_id,score,max_score``, one row per student per graded cell;
- ``feedback/<student_id>/LAB.html``: the student's notebook with scores, without hidden tests;
- ``problems.csv``: ``student_id,problem`` for every submission not graded normally.

- ``report.html``: score distributions per graded cell, the problems, timings, where the time went;
- ``timings.json``: where the time went, mean seconds per notebook of each step and per cell.

Each notebook is graded in a process of its own (``autograder.worker``) with a
wall-clock limit for the whole notebook, one per cell and a memory limit, ``-j N``
at a time on this machine or on the workers of a Dask cluster (``--cluster``). Here, one
more worker starts ahead of its turn: it restores its notebook and starts and guards its
own fresh kernel (1.2-1.8 s on 2 cores, mostly importing torch) while the others run, and runs the
student's code once one of the ``N`` slots is free. Each
worker has its own copy of the course, and the parent merges their scores into one
gradebook. Course folders and gradebooks live in a temporary folder that is removed
afterwards, never in the repository. Each worker reports the seconds of each step of its
grading; the parent adds its own (intake, course template, merge) and the worker's start and
exit, and :func:`autograder.report.time_breakdown` aggregates them for the batch.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin
from sqlalchemy.exc import SAWarning
from tqdm import tqdm

from autograder.course import open_course
from autograder.fork_server import FORK_SERVER, ONE_THREAD, can_fork, start_fork_server
from autograder.intake import Submission, collect_submissions
from autograder.paths import REPO_ROOT, source_notebook
from autograder.release import colab_cells
from autograder.report import time_breakdown, write_report, write_timings
from autograder.restore import load_submission
from autograder.sandbox import SandboxUnavailable, check_available
from autograder.worker import (
    STUDENT_RELEASE,
    UNMEASURED,
    Request,
    Result,
    Stopwatch,
    process_group_of,
    release_process_group,
    serve_request,
)
from dlcourse.config import QUICK_ENV_VAR

# Kernels inherit these. One thread per notebook: the labs' models are small, and two
# threads fighting another process for two cores made a lab run 8x slower than one thread.
GRADING_ENVIRONMENT = {QUICK_ENV_VAR: "1", **ONE_THREAD}

# The parent's steps (the workers' come from autograder.worker and autograder.execute).
INTAKE = "intake"
TEMPLATE = "course template"
WORKER_PROCESS = "worker process"
AHEAD = "done ahead"  # a worker's work before its turn, while other notebooks ran: negative, it held no slot
MERGE = "merge"


def graded_cell_ids(lab: str) -> list[str]:
    """grade_ids of the lab's graded cells, in notebook order."""
    nb = nbformat.read(source_notebook(lab), as_version=4)
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade", False)
    ]


@dataclass
class Limits:
    """What one notebook may use: wall-clock seconds for the whole notebook and per cell, and memory."""

    seconds: float = 900.0
    cell_seconds: int = 300
    memory_mb: int | None = 6144

    @property
    def kill_after(self) -> float:
        """When the worker itself is killed: the notebook's deadline plus time to write feedback."""
        return self.seconds + 60


def start_worker(request_path: Path, log_path: Path, turn=None):
    """A process grading ``request_path``: forked from a server that has the grader imported already
    (a second saved per notebook), or, where forking is not allowed (a daemonic Dask worker), a new
    interpreter. Either way it leads its own session, so killing the group stops it and its kernel.
    ``turn`` (forked workers only): an Event the worker waits for before the notebook's first cell."""
    if can_fork():
        process = FORK_SERVER.Process(target=serve_request, args=(str(request_path), str(log_path), turn))
        process.start()
        return process
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), environment.get("PYTHONPATH")]))
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "autograder.worker", str(request_path)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            env=environment,
        )


def wait_for(process, seconds: float) -> int | None:
    """The exit code, or None when the process still runs after ``seconds``."""
    if isinstance(process, subprocess.Popen):
        try:
            return process.wait(seconds)
        except subprocess.TimeoutExpired:
            return None
    process.join(seconds)
    return process.exitcode


def kill(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()  # it had not made its own session yet
    wait_for(process, 30)


def run_worker(request: Request, limits: Limits, slots: threading.Semaphore | None = None) -> Result:
    """Grade one submission in its own process, killing it (and its kernel) past the time limit.

    With ``slots`` (and a fork server), the worker starts at once and gets its notebook and kernel
    ready, while this waits for a slot; the worker runs the notebook once it holds one, and the time
    limit counts from then."""
    request_path = Path(request.result).with_suffix(".request.json")
    log_path = Path(request.result).with_suffix(".log")
    request_path.write_text(json.dumps(asdict(request)))
    turn = FORK_SERVER.Event() if slots is not None and can_fork() else None
    created = time.perf_counter()
    process = start_worker(request_path, log_path, turn)
    try:
        with slots if turn is not None else nullcontext():
            started = time.perf_counter()
            if turn is not None:
                turn.set()
            exit_code = wait_for(process, limits.kill_after)
            if exit_code is None:
                kill(process)
    finally:
        if getattr(process, "pid", None):  # the pids cgroup a killed worker left behind (a root grader's)
            release_process_group(process_group_of(process.pid))
    if exit_code is None:
        killed = f"grading stopped after {limits.kill_after:g} s and killed"
        steps = {UNMEASURED: time.perf_counter() - started}
        return Result(request.student_id, problems=[killed], seconds=limits.kill_after, steps=steps)
    # The worker writes its result last, so a readable result means it finished, whatever the exit
    # code: multiprocessing reports 255 when it loses the fork server's status message.
    try:
        result = Result(**json.loads(Path(request.result).read_text()))
    except (OSError, ValueError):
        lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
        last = [line for line in lines if line.strip()][-1:] or ["no message"]
        problem = f"grading process died (exit {exit_code}): {last[0][:300]}"
        return Result(request.student_id, problems=[problem], steps={UNMEASURED: time.perf_counter() - started})
    result.steps[WORKER_PROCESS] = time.perf_counter() - created - result.seconds - result.waited
    if turn is not None:  # what it did before its turn took no slot's time
        result.steps[AHEAD] = -max(0.0, started - created - result.waited)
    return result


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def merge_into_gradebook(gradebook: Gradebook, lab: str, results: list[Result]) -> None:
    """Record every student, and the per-cell scores of each graded one, in one gradebook."""
    for result in results:
        gradebook.update_or_create_student(result.student_id)
        if result.scores:
            gradebook.add_submission(lab, result.student_id)
            for grade_id, score in result.scores.items():
                gradebook.find_grade(grade_id, lab, lab, result.student_id).auto_score = score
    gradebook.db.commit()


def score_rows(gradebook: Gradebook, lab: str, student_ids: list[str]) -> list[list]:
    """One row per student per graded cell; a cell never graded scores 0."""
    max_scores = {cell.name: cell.max_score for cell in gradebook.find_notebook(lab, lab).grade_cells}
    grade_ids = graded_cell_ids(lab)
    rows = []
    for student_id in student_ids:
        for grade_id in grade_ids:
            try:
                score = gradebook.find_grade(grade_id, lab, lab, student_id).score
            except MissingEntry:
                score = 0.0
            rows.append([student_id, grade_id, float(score), float(max_scores[grade_id])])
    return rows


def write_student_release(course_root: Path, lab: str) -> None:
    """The notebook exactly as students got it (nbgrader's release with the Colab cells), for restoring."""
    nb = nbformat.read(course_root / "release" / lab / f"{lab}.ipynb", as_version=4)
    nb.cells = colab_cells(lab) + nb.cells
    nbformat.write(nb, course_root / STUDENT_RELEASE)


def private_folders(submissions_root: Path, work: Path, out_dir: Path) -> list[str]:
    """Folders a student's code may not read: other submissions, the grader's files, the sources."""
    folders = [submissions_root, work, out_dir, *(REPO_ROOT / name for name in ("solutions", "tests", "autograder"))]
    return [str(Path(folder).resolve()) for folder in folders]


def requests_for(
    lab: str,
    submissions: list[Submission],
    work: Path,
    out_dir: Path,
    limits: Limits,
    private,
    sandbox: bool = True,
    run_experiments: bool = False,
):
    """A worker request for each submission that can be read; a result with its problem for the others."""
    requests, unreadable = [], []
    for submission in submissions:
        nb, notes = (None, [submission.problem]) if submission.problem else load_submission(submission.path)
        if nb is None:
            unreadable.append(Result(submission.student_id, problems=notes))
            continue
        requests.append(
            Request(
                lab=lab,
                student_id=submission.student_id,
                notebook=str(submission.path.resolve()),
                template=str(work / "template"),
                feedback=str((out_dir / "feedback" / submission.student_id / f"{lab}.html").resolve()),
                result=str(work / "results" / f"{submission.student_id}.json"),
                memory_limit_mb=limits.memory_mb,
                seconds=limits.seconds,
                cell_seconds=limits.cell_seconds,
                private=private,
                environment=GRADING_ENVIRONMENT,
                sandbox=sandbox,
                run_experiments=run_experiments,
            )
        )
    return requests, unreadable


def run_requests(requests: list[Request], limits: Limits, jobs: int, cluster: str | None) -> Iterator[Result]:
    """Results in the order they finish: ``jobs`` worker processes here, or on a Dask cluster."""
    if cluster:
        from dask.distributed import Client
        from dask.distributed import as_completed as finished

        with Client(cluster) as client:
            yield from (
                future.result() for future in finished(client.map(run_worker, requests, limits=limits, pure=False))
            )
        return
    slots = threading.Semaphore(jobs)
    with ThreadPoolExecutor(max_workers=jobs + 1) as pool:  # one worker ahead of its turn
        futures = [pool.submit(run_worker, request, limits, slots) for request in requests]
        yield from (future.result() for future in as_completed(futures))


def grade_all(
    lab,
    submissions,
    submissions_root,
    work,
    out_dir,
    jobs,
    limits,
    cluster=None,
    sandbox=True,
    run_experiments=False,
    stopwatch: Stopwatch | None = None,
) -> list[Result]:
    """Grade the readable submissions; a result (or a problem) for every one. ``stopwatch`` gets the
    seconds of the course template and of reading the submissions (intake)."""
    stopwatch = stopwatch or Stopwatch()
    if not cluster:
        start_fork_server()  # where the command did not start it already: its imports overlap the template
    with stopwatch.step(TEMPLATE):
        open_course(work / "template", lab)
        write_student_release(work / "template", lab)
    (work / "results").mkdir()
    with stopwatch.step(INTAKE):
        private = private_folders(submissions_root, work, out_dir)
        requests, results = requests_for(lab, submissions, work, out_dir, limits, private, sandbox, run_experiments)
    progress = tqdm(
        run_requests(requests, limits, jobs, cluster), total=len(requests), desc=f"grading {lab}", unit="notebook"
    )
    results += list(progress)
    return results


def grade(
    lab: str,
    submissions_dir: Path,
    out_dir: Path,
    jobs: int = 1,
    limits: Limits | None = None,
    name_pattern: str | None = None,
    cluster: str | None = None,
    sandbox: bool = True,
    run_experiments: bool = False,
) -> int:
    """Grade every submission of ``lab``, ``jobs`` notebooks at a time; return 0 when every student got a row.

    ``submissions_dir`` is a folder or a zip in any layout :mod:`autograder.intake` reads;
    ``cluster`` the address of a Dask scheduler whose workers see the same files; ``sandbox``
    False runs the kernels without :mod:`autograder.sandbox` (reported in report.html);
    ``run_experiments`` runs the experiment cells the grader otherwise leaves out
    (:mod:`autograder.experiments`).
    """
    if sandbox and not cluster:
        try:
            check_available()
        except SandboxUnavailable as error:
            raise SystemExit(f"cannot grade safely: {error}") from None
    os.environ.update(GRADING_ENVIRONMENT)
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "feedback", ignore_errors=True)
    # on a cluster the work folder must be visible to every worker: keep it next to the results
    work_parent = out_dir.resolve() if cluster else None
    stopwatch = Stopwatch()  # the batch's own steps
    with tempfile.TemporaryDirectory(prefix="dlcourse-grade-", dir=work_parent) as tmp:
        work = Path(tmp)
        with stopwatch.step(INTAKE):
            submissions, notes = collect_submissions(submissions_dir, work, name_pattern)
        root = submissions_dir.resolve()
        results = grade_all(
            lab,
            submissions,
            root,
            work,
            out_dir,
            jobs,
            limits or Limits(),
            cluster,
            sandbox,
            run_experiments,
            stopwatch,
        )
        merge_started = time.perf_counter()
        order = {submission.student_id: index for index, submission in enumerate(submissions)}
        results.sort(key=lambda result: order[result.student_id])
        with Gradebook(f"sqlite:///{work / 'template' / 'gradebook.db'}") as gradebook, warnings.catch_warnings():
            # nbgrader's add_submission builds objects under SQLAlchemy's autoflush and warns; harmless
            warnings.simplefilter("ignore", SAWarning)
            merge_into_gradebook(gradebook, lab, results)
            CsvExportPlugin(to=str(out_dir / "grades.csv")).export(gradebook)
            rows = score_rows(gradebook, lab, [s.student_id for s in submissions])
    problems = [list(note) for note in notes]
    problems += [[result.student_id, result.problem] for result in results if result.problem]
    write_csv(out_dir / "scores.csv", ["student_id", "grade_id", "score", "max_score"], rows)
    write_csv(out_dir / "problems.csv", ["student_id", "problem"], problems)
    stopwatch.add(MERGE, time.perf_counter() - merge_started)
    elapsed = time.perf_counter() - started
    seconds = {result.student_id: result.seconds for result in results}
    # a result with steps came from a worker; one without was never sent to one (an unreadable file)
    breakdown = time_breakdown([(r.steps, r.cells) for r in results if r.steps], stopwatch.seconds)
    write_timings(out_dir, breakdown)
    report = write_report(out_dir, lab, rows, problems, seconds, elapsed, jobs, sandbox, breakdown)
    print(summary(lab, rows, problems, elapsed, jobs, cluster))
    print(f"report: {report}")
    return 0


def summary(lab: str, rows: list[list], problems: list[list], elapsed: float, jobs: int, cluster: str | None) -> str:
    """What the instructor reads at the end of a run."""
    totals: dict[str, float] = {}
    maximum: dict[str, float] = {}
    for student, grade_id, score, max_score in rows:
        totals[student] = totals.get(student, 0.0) + score
        maximum[grade_id] = max_score
    mean = sum(totals.values()) / len(totals) if totals else 0.0
    where = f"on {cluster}" if cluster else f"{jobs} at a time"
    return (
        f"graded {len(totals)} submissions of {lab} in {elapsed:.1f} s ({where}); "
        f"mean {mean:.2f} of {sum(maximum.values()):g} points; {len(problems)} problems (see problems.csv)"
    )
