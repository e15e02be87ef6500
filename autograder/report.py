"""The instructor's grading report: ``DIR/report.html`` for one graded batch.

One self-contained HTML page (inline CSS, plots as base64 PNG, no network) with:

- a header: students, mean and median total, full marks and zeros, problems, batch timing;
- a table per graded cell (max points, mean, share with full points, share with zero) and one
  figure with a score histogram per cell plus one of the total scores;
- the problems, one row per student or file;
- timings: a histogram of seconds per notebook and the slowest students;
- where the time went: mean seconds per notebook of each grading step (:data:`STEPS`) and the
  slowest cells, from the step times the workers report (:func:`time_breakdown`), also written
  to ``DIR/timings.json`` for :mod:`autograder.benchmark`.

Every piece of text that comes from submissions (student ids, file names, problem messages)
is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import base64
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

REPORT_NAME = "report.html"
TIMINGS_NAME = "timings.json"
SLOWEST_SHOWN = 10
SLOWEST_CELLS_SHOWN = 10
UNBOXED = "NOT sandboxed (--no-sandbox): student code could read and write what the grader can"
GRID_COLUMNS = 4
HISTOGRAM_BINS = 20
MAX_FIGURE_HEIGHT_INCHES = 40.0
ROW_HEIGHT_INCHES = 2.2

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
td.problem { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 0.9em; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.summary dt { font-weight: bold; }
dl.summary dd { margin: 0; }
img { max-width: 100%; height: auto; }
p.empty { color: #777; font-style: italic; }
"""

# Every step of a notebook's grading, in the order they happen, and what each one covers. Steps of the
# whole batch (intake, course template, merge) are shared out equally among the graded notebooks.
STEPS = {
    "intake": "reading the submissions and checking that each notebook can be read (batch, shared out)",
    "course template": "nbgrader generating the lab into the template course (batch, shared out)",
    "worker process": "forking the worker (the first one waits for the fork server's imports), its exit",
    "done ahead": "taken off: the steps a worker did before its turn, while other notebooks held the slots "
    "(its fork, restore, kernel start and guard install)",
    "worker setup": "limits, the temporary folder and its removal, nbgrader's configuration",
    "restore": "copying the template course, restoring the submission's structure",
    "sandbox check": "the worker's probe that bubblewrap works",
    "kernel start": "starting the sandbox and the kernel until it answers",
    "imports": "the code cells before the first answer or test cell (the lab's setup)",
    "answer cells": "the students' answer cells",
    "test cells": "the test cells, their hidden tests included",
    "experiments skipped": "experiment cells left unrun",
    "experiments run": "experiment cells run (edited, needed later, or --run-experiments)",
    "other cells": "every other code cell",
    "guard install": "installing the tampering guard, which imports torch, numpy and dlcourse.checks first",
    "guard checks": "the tampering guard's checks in the kernel before each code cell and after the last",
    "kernel stop": "shutting the kernel down",
    "gradebook": "nbgrader's database writes: student, submission and grade rows, saved scores",
    "nbgrader other": "nbgrader sanitizing, reading and writing the notebook, filtering outputs",
    "leak removal": "taking hidden test code out of the outputs",
    "feedback": "rendering the feedback page",
    "unmeasured": "the worker's time no step counted (all of it for a killed or dead worker)",
    "merge": "merging the scores into one gradebook, the CSV files, removing the work folder (batch, shared out)",
}


@dataclass
class CellSummary:
    """The scores of one graded cell across the batch."""

    grade_id: str
    max_score: float
    scores: list[float]

    @property
    def mean(self) -> float:
        """Mean score; NaN when no student has a score."""
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def full_share(self) -> float:
        """Fraction of students with the full points of this cell."""
        return share(self.scores, lambda score: math.isclose(score, self.max_score))

    @property
    def zero_share(self) -> float:
        """Fraction of students with zero points on this cell."""
        return share(self.scores, lambda score: score == 0)


@dataclass
class BatchScores:
    """Per-cell and per-student scores of a batch, cells and students in first-seen order."""

    cells: list[CellSummary]
    totals: dict[str, float]

    @property
    def max_total(self) -> float:
        """The points a student with full marks on every cell gets."""
        return sum(cell.max_score for cell in self.cells)


def share(values: Sequence[float], predicate) -> float:
    """Fraction of ``values`` for which ``predicate`` holds; NaN for no values."""
    if not values:
        return math.nan
    return sum(1 for value in values if predicate(value)) / len(values)


def summarize_scores(score_rows: list[list]) -> BatchScores:
    """Group ``[student_id, grade_id, score, max_score]`` rows by cell and total them per student."""
    cells: dict[str, CellSummary] = {}
    totals: dict[str, float] = {}
    for student_id, grade_id, score, max_score in score_rows:
        cell = cells.setdefault(grade_id, CellSummary(grade_id, float(max_score), []))
        cell.max_score = max(cell.max_score, float(max_score))
        cell.scores.append(float(score))
        totals[student_id] = totals.get(student_id, 0.0) + float(score)
    return BatchScores(list(cells.values()), totals)


@dataclass
class CellTime:
    """One code cell's grading seconds across the notebooks that have it (cells are named by
    grade_id, the others by position and first line)."""

    label: str
    step: str
    mean: float
    maximum: float
    notebooks: int


@dataclass
class TimeBreakdown:
    """Where a batch's grading time went: mean seconds per graded notebook of each step, and per cell."""

    notebooks: int
    steps: dict[str, float]  # in the order of STEPS, unknown steps after
    cells: list[CellTime]  # slowest mean first

    @property
    def total(self) -> float:
        """Seconds per notebook over all steps: its busy time, wherever it ran."""
        return sum(self.steps.values())

    def share(self, step: str) -> float:
        """``steps[step] / total``; NaN when nothing was timed."""
        return self.steps[step] / self.total if self.total > 0 else math.nan


def time_breakdown(
    notebooks: Sequence[tuple[dict[str, float], Sequence[Sequence]]], batch_seconds: dict[str, float]
) -> TimeBreakdown:
    """Aggregate the graded notebooks' ``(seconds per step, [label, step, seconds] per cell)``.

    A step's figure is its mean per notebook, ``sum over notebooks of its seconds / n`` (0 for a
    notebook without it), and a batch step's ``batch_seconds[step] / n``, so the steps add up to the
    mean busy time per notebook. A cell's mean is over the notebooks that have it.
    """
    count = len(notebooks)
    if not count:
        return TimeBreakdown(0, {}, [])
    totals: dict[str, float] = dict.fromkeys(STEPS, 0.0)
    seen: set[str] = set(batch_seconds)
    for step, seconds in batch_seconds.items():
        totals[step] = totals.get(step, 0.0) + seconds
    cells: dict[tuple[str, str], list[float]] = {}  # an experiment skipped here and run there: two entries
    for steps, cell_seconds in notebooks:
        for step, seconds in steps.items():
            totals[step] = totals.get(step, 0.0) + seconds
            seen.add(step)
        for label, step, seconds in cell_seconds:
            cells.setdefault((label, step), []).append(seconds)
    means = {step: total / count for step, total in totals.items() if step in seen}
    per_cell = [
        CellTime(label, step, statistics.fmean(values), max(values), len(values))
        for (label, step), values in cells.items()
    ]
    return TimeBreakdown(count, means, sorted(per_cell, key=lambda cell: cell.mean, reverse=True))


def write_timings(out_dir: Path, breakdown: TimeBreakdown) -> Path:
    """Write the breakdown as ``out_dir/timings.json`` (``notebooks``, ``steps``, ``cells``) and return its path."""
    path = out_dir / TIMINGS_NAME
    path.write_text(json.dumps(asdict(breakdown), indent=1), encoding="utf-8")
    return path


def read_timings(path: Path) -> TimeBreakdown:
    """The breakdown :func:`write_timings` wrote."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return TimeBreakdown(data["notebooks"], data["steps"], [CellTime(**cell) for cell in data["cells"]])


def executed_seconds(seconds: dict[str, float]) -> dict[str, float]:
    """Seconds per student for the notebooks that were actually run (more than 0 s)."""
    return {student_id: value for student_id, value in seconds.items() if value and value > 0}


def format_number(value: float, digits: int = 2) -> str:
    """A score or mean with at most ``digits`` decimals, trailing zeros dropped; a dash for NaN."""
    if math.isnan(value):
        return "–"
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_percent(fraction: float) -> str:
    """A fraction as a percentage with one decimal, so that 499 of 500 is not shown as 100 %; a dash for NaN."""
    return "–" if math.isnan(fraction) else f"{100 * fraction:.1f} %"


def format_duration(seconds: float) -> str:
    """Seconds as ``12.3 s``, ``4 min 05 s`` or ``1 h 02 min``."""
    if math.isnan(seconds):
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def figure_png_base64(figure: Figure) -> str:
    """The figure rendered as PNG and encoded in base64 (Agg, never a display)."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def image_tag(figure: Figure, alt: str) -> str:
    """An ``<img>`` with the figure embedded as a data URI."""
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{figure_png_base64(figure)}">'


def draw_histogram(axes: Axes, values: Sequence[float], upper: float, title: str, xlabel: str = "") -> None:
    """Histogram of ``values`` over ``[0, upper]``; a single repeated value still gets a bar."""
    upper = max(upper, max(values, default=0.0))
    if upper <= 0:
        upper = 1.0
    axes.hist(values, bins=HISTOGRAM_BINS, range=(0.0, upper), color="#4c72b0", edgecolor="white")
    axes.set_title(title, fontsize=9)
    if xlabel:
        axes.set_xlabel(xlabel, fontsize=8)
    axes.tick_params(labelsize=7)


def grid_figure(panels: int) -> tuple[Figure, list[Axes]]:
    """A figure with ``panels`` subplots, ``GRID_COLUMNS`` per row, at most ``MAX_FIGURE_HEIGHT_INCHES`` tall.

    Margins are fixed in inches rather than computed by a layout engine, which would take
    seconds for a hundred subplots.
    """
    rows = math.ceil(panels / GRID_COLUMNS)
    row_height = min(ROW_HEIGHT_INCHES, MAX_FIGURE_HEIGHT_INCHES / rows)
    height = row_height * rows + 0.3
    figure = Figure(figsize=(3.0 * GRID_COLUMNS, height))
    gap = 0.33 * row_height  # room for the tick labels below a row and the title above the next one
    figure.subplots_adjust(
        left=0.06, right=0.98, wspace=0.3, top=1 - 0.35 / height, bottom=0.3 / height, hspace=gap / (row_height - gap)
    )
    axes = figure.subplots(rows, GRID_COLUMNS, squeeze=False)
    for row_axes in axes:
        row_axes[0].set_ylabel("students", fontsize=8)
    flat = axes.ravel().tolist()
    for unused in flat[panels:]:
        unused.set_visible(False)
    return figure, flat[:panels]


def score_histograms(batch: BatchScores) -> Figure:
    """One histogram per graded cell, in notebook order, and one of the total scores."""
    figure, axes = grid_figure(len(batch.cells) + 1)
    for cell, cell_axes in zip(batch.cells, axes[:-1], strict=True):
        draw_histogram(cell_axes, cell.scores, cell.max_score, f"{cell.grade_id} (max {cell.max_score:g})")
    draw_histogram(axes[-1], list(batch.totals.values()), batch.max_total, f"total (max {batch.max_total:g})")
    return figure


def seconds_histogram(seconds: dict[str, float]) -> Figure:
    """Histogram of grading seconds per executed notebook."""
    figure = Figure(figsize=(6.0, 3.0), layout="constrained")
    axes = figure.subplots()
    values = list(seconds.values())
    draw_histogram(axes, values, max(values, default=1.0), "grading time per notebook", "seconds")
    axes.set_ylabel("students", fontsize=8)
    return figure


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str, classes: Sequence[str]) -> str:
    """A table from already-escaped cells; ``classes`` gives each column's ``td`` class ("" for none)."""
    head = "".join(f"<th>{name}</th>" for name in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{css}">{value}</td>' if css else f"<td>{value}</td>"
            for value, css in zip(row, classes, strict=True)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="{table_id}">\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody></table>"
    )


def summary_list(items: Sequence[tuple[str, str]]) -> str:
    """A definition list of (label, already-escaped value) pairs."""
    entries = "".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in items)
    return f'<dl class="summary">{entries}</dl>'


def header_section(
    lab: str,
    batch: BatchScores,
    problems: list[list[str]],
    executed: dict[str, float],
    total_seconds: float,
    jobs: int,
    sandboxed: bool = True,
) -> str:
    """Headline numbers: students, totals, full marks and zeros, problems, batch timing, isolation."""
    totals = list(batch.totals.values())
    max_total = batch.max_total
    unscored = {str(row[0]) for row in problems} - set(batch.totals)
    problem_text = f"{len(problems)}"
    if unscored:
        problem_text += f" ({len(unscored)} for names without scores)"
    items = [
        ("Students", str(len(totals))),
        ("Mean total", f"{format_number(statistics.fmean(totals) if totals else math.nan)} / {max_total:g}"),
        ("Median total", f"{format_number(statistics.median(totals) if totals else math.nan)} / {max_total:g}"),
        ("Full marks", str(sum(1 for total in totals if math.isclose(total, max_total)))),
        ("Zero", str(sum(1 for total in totals if total == 0))),
        ("Problems", problem_text),
        ("Batch time", format_duration(total_seconds)),
        ("Notebooks at once (jobs)", str(jobs)),
        ("Notebooks executed", str(len(executed))),
        ("Mean per notebook", format_duration(statistics.fmean(executed.values()) if executed else math.nan)),
        ("Max per notebook", format_duration(max(executed.values(), default=math.nan))),
        ("Student kernels", "sandboxed (bubblewrap)" if sandboxed else UNBOXED),
    ]
    return f"<h1>Grading report: {escape(lab)}</h1>\n{summary_list(items)}"


def cells_section(batch: BatchScores) -> str:
    """Per-cell table and the figure of score histograms."""
    if not batch.cells:
        return '<h2>Graded cells</h2>\n<p class="empty">No scores in this batch.</p>'
    rows = [
        [
            escape(cell.grade_id),
            format_number(cell.max_score),
            format_number(cell.mean),
            format_percent(cell.full_share),
            format_percent(cell.zero_share),
        ]
        for cell in batch.cells
    ]
    table = html_table(
        ["Graded cell", "Max points", "Mean score", "Full points", "Zero"],
        rows,
        "cells",
        ["", "number", "number", "number", "number"],
    )
    figure = image_tag(score_histograms(batch), "score distribution per graded cell and of the total")
    return f"<h2>Graded cells</h2>\n{table}\n{figure}"


def problems_section(problems: list[list[str]]) -> str:
    """Every problem as a row (student or file, message), escaped."""
    if not problems:
        return '<h2>Problems</h2>\n<p class="empty">None: every submission was graded normally.</p>'
    rows = [[escape(str(who)), escape(str(problem))] for who, problem in problems]
    return "<h2>Problems</h2>\n" + html_table(["Student or file", "Problem"], rows, "problems", ["", "problem"])


def slowest_students(executed: dict[str, float], count: int = SLOWEST_SHOWN) -> list[tuple[str, float]]:
    """The ``count`` students whose notebooks took longest, slowest first."""
    return sorted(executed.items(), key=lambda item: item[1], reverse=True)[:count]


def timings_section(executed: dict[str, float], totals: dict[str, float]) -> str:
    """Histogram of seconds per notebook and the slowest students with their totals."""
    if not executed:
        return '<h2>Timings</h2>\n<p class="empty">No notebook was executed.</p>'
    figure = image_tag(seconds_histogram(executed), "grading seconds per notebook")
    rows = [
        [str(rank), escape(student_id), f"{value:.1f}", format_number(totals.get(student_id, math.nan))]
        for rank, (student_id, value) in enumerate(slowest_students(executed), start=1)
    ]
    table = html_table(["#", "Student", "Seconds", "Total score"], rows, "slowest", ["number", "", "number", "number"])
    return f"<h2>Timings</h2>\n{figure}\n<h3>Slowest {len(rows)}</h3>\n{table}"


def breakdown_section(breakdown: TimeBreakdown | None) -> str:
    """Mean seconds per notebook and share of each step, and the slowest cells by mean time."""
    if breakdown is None or not breakdown.notebooks:
        return '<h2>Where the time went</h2>\n<p class="empty">No notebook was graded: no step times.</p>'
    intro = (
        f"<p>Mean seconds per graded notebook ({breakdown.notebooks}), steps of the whole batch shared out "
        "equally. They add up to the busy time per notebook: with several notebooks at once (jobs) the batch "
        "takes less than their sum.</p>"
    )
    rows = [
        [escape(step), escape(STEPS.get(step, "")), f"{seconds:.2f}", format_percent(breakdown.share(step))]
        for step, seconds in breakdown.steps.items()
    ]
    rows.append(["total", "", f"{breakdown.total:.2f}", format_percent(1.0 if breakdown.total > 0 else math.nan)])
    steps = html_table(
        ["Step", "What it covers", "Seconds per notebook", "Share"], rows, "steps", ["", "", "number", "number"]
    )
    shown = breakdown.cells[:SLOWEST_CELLS_SHOWN]
    cell_rows = [
        [
            str(rank),
            escape(cell.label),
            escape(cell.step),
            f"{cell.mean:.2f}",
            f"{cell.maximum:.2f}",
            str(cell.notebooks),
        ]
        for rank, cell in enumerate(shown, start=1)
    ]
    cells = html_table(
        ["#", "Cell", "Step", "Mean seconds", "Max seconds", "Notebooks"],
        cell_rows,
        "slowest-cells",
        ["number", "", "", "number", "number", "number"],
    )
    return f"<h2>Where the time went</h2>\n{intro}\n{steps}\n<h3>Slowest {len(shown)} cells</h3>\n{cells}"


def render_report(
    lab: str,
    score_rows: list[list],
    problems: list[list[str]],
    seconds: dict[str, float],
    total_seconds: float,
    jobs: int,
    sandboxed: bool = True,
    breakdown: TimeBreakdown | None = None,
) -> str:
    """The whole report page as a string."""
    batch = summarize_scores(score_rows)
    executed = executed_seconds(seconds)
    sections = [
        header_section(lab, batch, problems, executed, total_seconds, jobs, sandboxed),
        cells_section(batch),
        problems_section(problems),
        timings_section(executed, batch.totals),
        breakdown_section(breakdown),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Grading report: {escape(lab)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(
    out_dir: Path,
    lab: str,
    score_rows: list[list],
    problems: list[list[str]],
    seconds: dict[str, float],
    total_seconds: float,
    jobs: int,
    sandboxed: bool = True,
    breakdown: TimeBreakdown | None = None,
) -> Path:
    """Write ``out_dir/report.html`` for a graded batch and return its path.

    ``score_rows`` are ``[student_id, grade_id, score, max_score]``, one per student per graded
    cell in notebook order; ``problems`` are ``[student_id_or_file, problem]``; ``seconds`` is the
    grading wall time per student (0 or missing when never executed); ``total_seconds`` the wall
    time of the whole batch; ``jobs`` how many notebooks were graded at once; ``sandboxed``
    whether the kernels ran in :mod:`autograder.sandbox` (False: graded with ``--no-sandbox``);
    ``breakdown`` where the grading time went (:func:`time_breakdown`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_NAME
    page = render_report(lab, score_rows, problems, seconds, total_seconds, jobs, sandboxed, breakdown)
    path.write_text(page, encoding="utf-8")
    return path
