"""What `--submissions` accepts: plain folders, nbgrader's layout, Canvas and Moodle downloads, zips."""

import os
import zipfile

import pytest

from autograder.intake import collect_submissions
from tests.grading import read_csv, run_grade
from tests.submissions import reference_answers, student_notebook, write_submission

NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def touch(path, mtime=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(NOTEBOOK)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def zip_folder(folder, archive):
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(folder))
    return archive


def collected(source, tmp_path, pattern=None):
    submissions, notes = collect_submissions(source, tmp_path / "work", pattern)
    return {s.student_id: s for s in submissions}, notes


def test_plain_folder_of_student_notebooks(tmp_path):
    touch(tmp_path / "in" / "alice.ipynb")
    touch(tmp_path / "in" / "has space.ipynb")
    found, notes = collected(tmp_path / "in", tmp_path)
    assert set(found) == {"alice", "has space"}
    assert found["alice"].problem is None
    assert "not a usable student id" in found["has space"].problem
    assert notes == []


def test_nbgrader_submitted_layout(tmp_path):
    touch(tmp_path / "course" / "submitted" / "bob" / "lab00_setup" / "lab00_setup.ipynb")
    touch(tmp_path / "course" / "submitted" / "carol" / "lab00_setup" / "lab00_setup.ipynb")
    for source in (tmp_path / "course", tmp_path / "course" / "submitted"):
        found, _ = collected(source, tmp_path)
        assert set(found) == {"bob", "carol"}


def test_canvas_zip_with_colab_copy_and_resubmission(tmp_path):
    download = tmp_path / "canvas"
    touch(download / "doejane_12345_600001_Copy of lab00_setup.ipynb", mtime=1_700_000_000)
    touch(download / "doejane_LATE_12345_600002_lab00_setup-1.ipynb", mtime=1_700_000_100)
    touch(download / "roeric_777_600003_lab00_setup.ipynb", mtime=1_700_000_050)
    found, notes = collected(zip_folder(download, tmp_path / "submissions.zip"), tmp_path)
    assert set(found) == {"12345", "777"}
    assert found["12345"].path.name == "doejane_LATE_12345_600002_lab00_setup-1.ipynb"
    assert notes == [("12345", notes[0][1])] and "graded the latest" in notes[0][1]


def test_moodle_folders_inside_a_nested_zip(tmp_path):
    download = tmp_path / "moodle"
    touch(download / "Jane Doe_4711_assignsubmission_file_" / "lab00_setup.ipynb")
    touch(download / "Eric Roe_4712_assignsubmission_file_" / "Copy of lab00_setup.ipynb")
    touch(download / "__MACOSX" / "Jane Doe_4711_assignsubmission_file_" / "lab00_setup.ipynb")
    inner = zip_folder(download, tmp_path / "inner.zip")
    outer_folder = tmp_path / "outer"
    outer_folder.mkdir()
    inner.rename(outer_folder / "inner.zip")
    found, notes = collected(zip_folder(outer_folder, tmp_path / "outer.zip"), tmp_path)
    assert set(found) == {"4711", "4712"}
    assert notes == []


def test_name_pattern_and_timestamps_in_paths(tmp_path):
    download = tmp_path / "other"
    touch(download / "s1234567" / "2026-11-02T09-00-00" / "lab.ipynb", mtime=1_700_000_000)
    touch(download / "s1234567" / "2026-11-01T10-00-00" / "lab.ipynb", mtime=1_700_009_000)
    touch(download / "readme" / "notes.ipynb")
    found, notes = collected(download, tmp_path, pattern=r"(?P<student_id>s\d{7})")
    assert set(found) == {"s1234567"}
    assert "2026-11-02" in str(found["s1234567"].path)  # the timestamp in the path beats the file time
    assert any(where == "readme/notes.ipynb" and "--name-pattern" in what for where, what in notes)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no such file or folder"):
        collect_submissions(tmp_path / "nowhere", tmp_path)


def test_canvas_zip_is_graded_end_to_end(tmp_path):
    lab = "lab00_setup"
    download = tmp_path / "canvas"
    download.mkdir()
    write_submission(
        download, "doejane_12345_600001_Copy of lab00_setup", student_notebook(lab, reference_answers(lab))
    )
    write_submission(download, "roeric_777_600003_lab00_setup", student_notebook(lab))
    result = run_grade(lab, zip_folder(download, tmp_path / "canvas.zip"), tmp_path / "out", "-j", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    grades = {row["student_id"]: float(row["raw_score"]) for row in read_csv(tmp_path / "out" / "grades.csv")}
    assert grades == {"12345": 8.0, "777": 0.0}
