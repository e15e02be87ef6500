"""The instructor's report: synthetic batches in, one self-contained HTML page out; no grading runs."""

import base64
import math
import re
import struct
from html.parser import HTMLParser

import pytest

from autograder import report
from autograder.report import STEPS, read_timings, time_breakdown, write_report, write_timings

CELLS = {"q1_linear": 2.0, "q2_loss": 3.0, "q3_train": 5.0}
STUDENTS = [f"student{index:02d}" for index in range(30)]
SLOWEST = "student17"
SCRIPT_PROBLEM = "<script>alert('x')</script> in cell 3 & more"
SCRIPT_CELL = "cell 4: print('<script>')"


class TableReader(HTMLParser):
    """Rows of text of every ``<table id=...>`` on a page, and every ``src`` / ``href`` value."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self.table = None
        self.cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[name] for name in ("src", "href") if name in attrs]
        if tag == "table":
            self.table = self.tables.setdefault(attrs.get("id", ""), [])
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.table[-1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def read_page(path):
    reader = TableReader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader


def batch_rows():
    """q1: 20 students 2/2 and 10 with 0 (mean 1.33); q2: everyone 0; q3: index-dependent."""
    rows = []
    for index, student in enumerate(STUDENTS):
        rows.append([student, "q1_linear", 2.0 if index < 20 else 0.0, CELLS["q1_linear"]])
        rows.append([student, "q2_loss", 0.0, CELLS["q2_loss"]])
        rows.append([student, "q3_train", float(index % 6), CELLS["q3_train"]])
    return rows


def batch_seconds():
    seconds = {student: 10.0 + index for index, student in enumerate(STUDENTS)}
    seconds[SLOWEST] = 250.0
    seconds["student00"] = 0.0  # never executed
    return seconds


def notebook_times(index):
    """Worker steps of notebook ``index`` (restore 1 s, kernel start 2 s, test cells 3 + index s) and its cells:
    q3_train 3 + index s, q1_linear 1 s, an experiment skipped, and eleven small cells (0.1 s each)."""
    steps = {"restore": 1.0, "kernel start": 2.0, "test cells": 3.0 + index}
    cells = [["q3_train", "test cells", 3.0 + index], ["q1_linear", "answer cells", 1.0], [SCRIPT_CELL, "imports", 0.5]]
    cells += [["cell 9: plot(x)", "experiments skipped", 0.0]]
    cells += [[f"small{cell:02d}", "other cells", 0.1] for cell in range(11)]
    return steps, cells


def batch_breakdown(notebooks=4):
    """Notebooks 0..3: mean test cells 4.5 s; intake 2 s and merge 6 s for the batch (0.5 and 1.5 per notebook)."""
    return time_breakdown([notebook_times(index) for index in range(notebooks)], {"merge": 6.0, "intake": 2.0})


def write_batch(tmp_path, **changes):
    arguments = dict(
        out_dir=tmp_path / "out",
        lab="lab01_demo",
        score_rows=batch_rows(),
        problems=[["student03", SCRIPT_PROBLEM], ["stray_file.txt", "not a notebook"]],
        seconds=batch_seconds(),
        total_seconds=321.0,
        jobs=4,
        breakdown=batch_breakdown(),
    )
    arguments.update(changes)
    return write_report(**arguments)


def row_for(table, first_cell):
    matches = [row for row in table if row and row[0] == first_cell]
    assert len(matches) == 1, table
    return matches[0]


def test_report_is_one_self_contained_page(tmp_path):
    path = write_batch(tmp_path)
    assert path == tmp_path / "out" / "report.html"
    text = path.read_text(encoding="utf-8")
    page = read_page(path)
    sources = re.findall(r'\bsrc="([^"]*)"', text)
    assert len(sources) == 2  # the score histograms and the seconds histogram
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not [link for link in page.links if re.match(r"\s*(https?:)?//", link)]
    assert "<link" not in text and "<script" not in text


def test_header_gives_students_totals_and_timing(tmp_path):
    text = write_batch(tmp_path).read_text(encoding="utf-8")
    assert "lab01_demo" in text
    header = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text))
    # totals are 2 (first 20 students) + index % 6: sum 115; only student24 scores 0; q2 keeps everyone below 10
    assert header["Students"] == "30"
    assert header["Mean total"] == "3.83 / 10"
    assert header["Median total"] == "4 / 10"
    assert header["Full marks"] == "0"
    assert header["Zero"] == "1"
    assert header["Problems"].startswith("2 (1 for names without scores)")
    assert header["Notebooks at once (jobs)"] == "4"
    assert header["Notebooks executed"] == "29"
    assert header["Max per notebook"] == "4 min 10 s"


def test_cell_table_in_notebook_order_with_mean_and_shares(tmp_path):
    cells = read_page(write_batch(tmp_path)).tables["cells"]
    assert [row[0] for row in cells[1:]] == list(CELLS)
    assert row_for(cells, "q1_linear") == ["q1_linear", "2", "1.33", "66.7 %", "33.3 %"]
    assert row_for(cells, "q2_loss") == ["q2_loss", "3", "0", "0.0 %", "100.0 %"]
    assert row_for(cells, "q3_train")[2] == "2.5"  # 0..5, five times each


def test_problem_text_is_escaped(tmp_path):
    path = write_batch(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; in cell 3 &amp; more" in text
    assert "<script>" not in text
    problems = read_page(path).tables["problems"]
    assert row_for(problems, "student03") == ["student03", SCRIPT_PROBLEM]
    assert row_for(problems, "stray_file.txt") == ["stray_file.txt", "not a notebook"]


def test_slowest_students_are_listed_slowest_first(tmp_path):
    slowest = read_page(write_batch(tmp_path)).tables["slowest"]
    assert slowest[1] == ["1", SLOWEST, "250.0", "7"]  # total of index 17: 2 + 17 % 6
    listed = [row[1] for row in slowest[1:]]
    assert len(listed) == 10
    assert listed[1:] == [f"student{index:02d}" for index in range(29, 20, -1)]
    assert "student00" not in listed  # 0 s: never executed


def test_zero_students_still_produce_a_page(tmp_path):
    path = write_batch(tmp_path, score_rows=[], problems=[], seconds={}, total_seconds=0.0)
    text = path.read_text(encoding="utf-8")
    header = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text))
    assert header["Students"] == "0"
    assert header["Mean total"] == "– / 0"
    assert "No scores in this batch." in text
    assert "No notebook was executed." in text


def test_problems_only_batch_lists_every_name(tmp_path):
    problems = [["a.zip", "nested zip without a notebook"], ["bob", "stopped after 900 s"]]
    path = write_batch(tmp_path, score_rows=[], problems=problems, seconds={"bob": 0.0})
    assert read_page(path).tables["problems"][1:] == problems
    header = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", path.read_text(encoding="utf-8")))
    assert header["Problems"] == "2 (2 for names without scores)"


def test_all_equal_scores_still_get_histograms(tmp_path):
    rows = [[student, grade_id, max_score, max_score] for student in STUDENTS for grade_id, max_score in CELLS.items()]
    seconds = dict.fromkeys(STUDENTS, 12.0)
    path = write_batch(tmp_path, score_rows=rows, seconds=seconds)
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 2
    header = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text))
    assert header["Full marks"] == "30"
    assert header["Median total"] == "10 / 10"
    assert all(row[3] == "100.0 %" for row in read_page(path).tables["cells"][1:])


def test_everyone_zero_even_on_a_zero_point_cell(tmp_path):
    cells = {**CELLS, "q0_setup": 0.0}
    rows = [[student, grade_id, 0.0, max_score] for student in STUDENTS for grade_id, max_score in cells.items()]
    path = write_batch(tmp_path, score_rows=rows)
    text = path.read_text(encoding="utf-8")
    header = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", text))
    assert header["Zero"] == "30"
    assert header["Mean total"] == "0 / 10"
    assert row_for(read_page(path).tables["cells"], "q0_setup") == ["q0_setup", "0", "0", "100.0 %", "100.0 %"]
    assert text.count("data:image/png;base64,") == 2


def png_size(text, index=0):
    """Width and height in pixels of the ``index``-th embedded PNG of a page."""
    encoded = re.findall(r'src="data:image/png;base64,([^"]*)"', text)[index]
    return struct.unpack(">II", base64.b64decode(encoded)[16:24])


def test_many_cells_keep_the_figure_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "MAX_FIGURE_HEIGHT_INCHES", 6.0)  # reached with few cells: the test stays fast
    rows = [[student, f"cell{cell:02d}", 1.0, 1.0] for student in STUDENTS[:3] for cell in range(23)]
    text = write_batch(tmp_path, score_rows=rows).read_text(encoding="utf-8")
    width, height = png_size(text)
    assert text.count("<tr><td>cell") == 23
    assert width == 4 * 3 * 80  # 4 columns of 3 inches at 80 dpi
    assert height <= (6.0 + 0.3) * 80  # 6 rows of 24 panels squeezed into the capped height


def test_few_cells_get_full_height_rows(tmp_path):
    text = write_batch(tmp_path).read_text(encoding="utf-8")
    width, height = png_size(text)
    assert width == 4 * 3 * 80
    assert height == round((report.ROW_HEIGHT_INCHES + 0.3) * 80)  # 3 cells and the total: one row


def test_breakdown_means_per_notebook_with_batch_steps_shared_out():
    breakdown = batch_breakdown()
    assert breakdown.notebooks == 4
    # grading order (report.STEPS), whatever order the steps came in
    assert list(breakdown.steps) == ["intake", "restore", "kernel start", "test cells", "merge"]
    assert breakdown.steps == pytest.approx(
        {"intake": 0.5, "restore": 1.0, "kernel start": 2.0, "test cells": 4.5, "merge": 1.5}
    )
    assert breakdown.total == pytest.approx(9.5)
    assert breakdown.share("test cells") == pytest.approx(4.5 / 9.5)
    assert sum(breakdown.share(step) for step in breakdown.steps) == pytest.approx(1.0)


def test_breakdown_counts_a_step_a_notebook_lacks_as_zero():
    breakdown = time_breakdown([({"feedback": 2.0}, []), ({"restore": 1.0}, [])], {})
    assert breakdown.steps == {"restore": 0.5, "feedback": 1.0}


def test_breakdown_keeps_unknown_steps_after_the_known_ones():
    breakdown = time_breakdown([({"zz new step": 1.0, "restore": 1.0}, [])], {})
    assert list(breakdown.steps) == ["restore", "zz new step"]


def test_breakdown_cells_slowest_mean_first_over_the_notebooks_that_have_them():
    notebooks = [notebook_times(0), notebook_times(2), ({"restore": 1.0}, [["late_cell", "other cells", 9.0]])]
    cells = time_breakdown(notebooks, {}).cells
    assert (cells[0].label, cells[0].step, cells[0].notebooks, cells[0].mean) == ("late_cell", "other cells", 1, 9.0)
    assert (cells[1].label, cells[1].mean, cells[1].maximum, cells[1].notebooks) == ("q3_train", 4.0, 5.0, 2)
    assert [cell.mean for cell in cells] == sorted((cell.mean for cell in cells), reverse=True)


def test_breakdown_keeps_a_cell_skipped_here_and_run_there_apart():
    notebooks = [({}, [["cell 9", "experiments skipped", 0.0]]), ({}, [["cell 9", "experiments run", 4.0]])]
    cells = {(cell.label, cell.step): cell.mean for cell in time_breakdown(notebooks, {}).cells}
    assert cells == {("cell 9", "experiments run"): 4.0, ("cell 9", "experiments skipped"): 0.0}


def test_breakdown_of_no_notebooks_is_empty():
    breakdown = time_breakdown([], {"intake": 3.0})
    assert (breakdown.notebooks, breakdown.steps, breakdown.cells, breakdown.total) == (0, {}, [], 0)
    assert math.isnan(time_breakdown([({"restore": 0.0}, [])], {}).share("restore"))  # nothing timed: no share


def test_timings_file_reads_back_the_same_breakdown(tmp_path):
    breakdown = batch_breakdown()
    path = write_timings(tmp_path, breakdown)
    assert path == tmp_path / "timings.json"
    assert read_timings(path) == breakdown


def test_where_the_time_went_lists_steps_in_grading_order_with_shares(tmp_path):
    steps = read_page(write_batch(tmp_path)).tables["steps"]
    assert steps[0] == ["Step", "What it covers", "Seconds per notebook", "Share"]
    assert [row[0] for row in steps[1:]] == ["intake", "restore", "kernel start", "test cells", "merge", "total"]
    assert row_for(steps, "test cells") == ["test cells", STEPS["test cells"], "4.50", "47.4 %"]
    assert row_for(steps, "intake")[2:] == ["0.50", "5.3 %"]
    assert row_for(steps, "total")[2:] == ["9.50", "100.0 %"]


def test_slowest_cells_by_mean_time_at_most_ten_escaped(tmp_path):
    path = write_batch(tmp_path)
    slowest = read_page(path).tables["slowest-cells"]
    assert slowest[0] == ["#", "Cell", "Step", "Mean seconds", "Max seconds", "Notebooks"]
    assert slowest[1] == ["1", "q3_train", "test cells", "4.50", "6.00", "4"]
    assert slowest[2] == ["2", "q1_linear", "answer cells", "1.00", "1.00", "4"]
    assert slowest[3][1] == SCRIPT_CELL
    assert len(slowest) == 1 + 10  # 15 cells, the slowest 10 shown
    text = path.read_text(encoding="utf-8")
    assert "print(&#x27;&lt;script&gt;&#x27;)" in text and "<script>" not in text
    assert "<h3>Slowest 10 cells</h3>" in text


def test_where_the_time_went_without_step_times(tmp_path):
    for breakdown in (None, time_breakdown([], {})):
        text = write_batch(tmp_path, breakdown=breakdown).read_text(encoding="utf-8")
        assert "<h2>Where the time went</h2>" in text
        assert "No notebook was graded: no step times." in text
        assert 'id="steps"' not in text
