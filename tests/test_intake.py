"""What `--submissions` accepts: plain folders, nbgrader's layout, Canvas and Moodle downloads, zips."""

import os
import time
import warnings
import zipfile

import pytest

from autograder import intake
from autograder.intake import STUDENT_ID, ZipLimits, collect_submissions
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


# Hostile downloads: every refusal is a note, never an exception, and nothing lands outside the work folder.

SYMLINK = 0o120777 << 16


def make_zip(archive, entries, compression=zipfile.ZIP_DEFLATED):
    """A zip of ``entries``: (name or ZipInfo, data) pairs, written exactly as given."""
    with zipfile.ZipFile(archive, "w", compression) as handle:
        for name, data in entries:
            handle.writestr(name, data)
    return archive


def dated(name, year, mode=None):
    info = zipfile.ZipInfo(name, date_time=(year, 1, 1, 12, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    if mode is not None:
        info.create_system = 3
        info.external_attr = mode
    return info


def patch_first_central_header(archive, offset, value, size):
    """Overwrite a field of the first entry in the zip's central directory (what zipfile trusts)."""
    data = bytearray(archive.read_bytes())
    at = data.index(b"PK\x01\x02") + offset
    data[at : at + size] = value.to_bytes(size, "little")
    archive.write_bytes(bytes(data))
    return archive


def notes_about(notes, text):
    return [(where, what) for where, what in notes if text in what]


def files_under(folder):
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


def test_entries_that_would_land_outside_are_refused(tmp_path):
    outside = tmp_path / "outside.ipynb"
    names = [
        "../outside.ipynb",
        "a/../../outside.ipynb",
        "..\\outside.ipynb",
        "a\\..\\..\\outside.ipynb",
        str(outside),
        "\\\\server\\share\\outside.ipynb",
        "C:\\outside.ipynb",
        "C:outside.ipynb",
    ]
    archive = make_zip(tmp_path / "evil.zip", [(name, NOTEBOOK) for name in names] + [("alice.ipynb", NOTEBOOK)])
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"alice"}
    refused = notes_about(notes, "not extracted: ")
    assert [where for where, _ in refused] == [f"evil.zip: {name}" for name in names]
    assert all(("'..'" in what or "absolute" in what or "drive" in what) for _, what in refused)
    assert files_under(tmp_path) == ["evil.zip", "work/extracted/alice.ipynb"]


def test_symlink_entries_are_skipped_and_never_followed(tmp_path):
    secret = touch(tmp_path / "secret" / "bob.ipynb")
    archive = make_zip(
        tmp_path / "links.zip",
        [
            (dated("bob.ipynb", 2024, SYMLINK), str(secret)),
            (dated("escape", 2024, SYMLINK), str(tmp_path)),
            ("escape/carol.ipynb", NOTEBOOK),
            ("alice.ipynb", NOTEBOOK),
        ],
    )
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"alice"}
    assert [where for where, _ in notes_about(notes, "symbolic link")] == ["links.zip: bob.ipynb", "links.zip: escape"]
    assert ("escape/carol.ipynb", "no student id found in this path; use --name-pattern") in notes
    extracted = tmp_path / "work" / "extracted"
    assert not any(path.is_symlink() for path in extracted.rglob("*"))
    assert (extracted / "escape" / "carol.ipynb").is_file() and not (tmp_path / "carol.ipynb").exists()


def test_links_in_a_download_folder_are_not_followed(tmp_path):
    touch(tmp_path / "secret" / "notes.ipynb")
    download = tmp_path / "in"
    touch(download / "alice.ipynb")
    (download / "bob.ipynb").symlink_to(tmp_path / "secret" / "notes.ipynb")
    (download / "carol").symlink_to(tmp_path / "secret", target_is_directory=True)
    found, notes = collected(download, tmp_path)
    assert set(found) == {"alice"}
    assert sorted(where for where, _ in notes_about(notes, "symbolic link")) == ["bob.ipynb", "carol"]


def test_a_zip_bomb_is_refused_by_name(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", [("bomb.ipynb", b"\0" * 8 * 1024**2), ("alice.ipynb", NOTEBOOK)])
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"alice"}
    assert [where for where, what in notes_about(notes, "zip bomb")] == ["bomb.zip: bomb.ipynb"]
    assert not (tmp_path / "work" / "extracted" / "bomb.ipynb").exists()


def test_a_small_repetitive_notebook_is_not_a_bomb(tmp_path):
    repetitive = NOTEBOOK[:-1] + ', "x": "' + "0" * 500_000 + '"}'
    archive = make_zip(tmp_path / "fine.zip", [("alice.ipynb", repetitive)])
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"alice"} and notes == []


def test_total_size_limit_counts_every_zip(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", [("carol.ipynb", "x" * 600)], zipfile.ZIP_STORED)
    archive = make_zip(
        tmp_path / "big.zip",
        [("alice.ipynb", "x" * 600), ("bob.ipynb", "x" * 600), ("more/inner.zip", inner.read_bytes())],
        zipfile.ZIP_STORED,
    )
    found, notes = collect_submissions(archive, tmp_path / "work", limits=ZipLimits(total_bytes=1000))
    assert [s.student_id for s in found] == ["alice"]
    assert [where for where, _ in notes_about(notes, "more than 1,000 bytes")] == [
        "big.zip: bob.ipynb",
        "big.zip: more/inner.zip",
    ]


def test_a_header_that_lies_about_the_size_cannot_pass_the_limit(tmp_path):
    archive = make_zip(tmp_path / "liar.zip", [("bob.ipynb", "y" * 50_000), ("alice.ipynb", NOTEBOOK)])
    patch_first_central_header(archive, 24, 10, 4)  # uncompressed size: 10 bytes
    found, notes = collect_submissions(archive, tmp_path / "work", limits=ZipLimits(total_bytes=1000))
    assert [s.student_id for s in found] == ["alice"]
    assert [where for where, _ in notes_about(notes, "not extracted")] == ["liar.zip: bob.ipynb"]
    assert sum(path.stat().st_size for path in (tmp_path / "work").rglob("*") if path.is_file()) <= 1000


def test_entry_count_limit(tmp_path):
    archive = make_zip(tmp_path / "many.zip", [(f"s{n}.ipynb", NOTEBOOK) for n in range(10)])
    found, notes = collect_submissions(archive, tmp_path / "work", limits=ZipLimits(entries=4))
    assert [s.student_id for s in found] == ["s0", "s1", "s2", "s3"]
    assert notes == [("many.zip", notes[0][1])] and "more than 4 entries" in notes[0][1]


def test_zips_nested_deeper_than_the_limit_are_not_opened(tmp_path):
    level4 = make_zip(tmp_path / "d4.zip", [("dave.ipynb", NOTEBOOK)])
    level3 = make_zip(
        tmp_path / "d3.zip", [("Carol C_3_assignsubmission_file_/lab.ipynb", NOTEBOOK), ("d4.zip", level4.read_bytes())]
    )
    level2 = make_zip(tmp_path / "d2.zip", [("d3.zip", level3.read_bytes())])
    archive = make_zip(tmp_path / "d1.zip", [("d2.zip", level2.read_bytes())])
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"3"}
    assert notes == [("d1.zip/d2.zip/d3.zip/d4.zip", "not opened: zips nested more than 3 deep")]


def test_corrupt_zips_are_notes(tmp_path):
    not_a_zip = tmp_path / "not.zip"
    not_a_zip.write_text("this is not a zip")
    whole = make_zip(tmp_path / "whole.zip", [("alice.ipynb", NOTEBOOK), ("bob.ipynb", NOTEBOOK)])
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for source in (not_a_zip, truncated):
        found, notes = collected(source, tmp_path / source.stem)
        assert found == {}
        assert notes == [(source.name, notes[0][1])] and "not a readable zip" in notes[0][1]
    archive = make_zip(tmp_path / "outer.zip", [("roeric_7_3_up.zip", b"PK\x03\x04broken"), ("alice.ipynb", NOTEBOOK)])
    found, notes = collected(archive, tmp_path / "nested")
    assert set(found) == {"alice"}
    assert [where for where, _ in notes_about(notes, "not a readable zip")] == ["outer.zip/roeric_7_3_up.zip"]


def test_an_entry_that_cannot_be_read_is_a_note_and_the_rest_goes_on(tmp_path):
    unsupported = make_zip(tmp_path / "method.zip", [("bob.ipynb", NOTEBOOK), ("alice.ipynb", NOTEBOOK)])
    patch_first_central_header(unsupported, 10, 99, 2)  # compression method 99 (AES)
    encrypted = make_zip(tmp_path / "secret.zip", [("bob.ipynb", NOTEBOOK), ("alice.ipynb", NOTEBOOK)])
    patch_first_central_header(encrypted, 8, 1, 2)  # flag bit 0: encrypted
    for source in (unsupported, encrypted):
        found, notes = collected(source, tmp_path / source.stem)
        assert set(found) == {"alice"}
        assert [where for where, _ in notes] == [f"{source.name}: bob.ipynb"]
        assert "method 99" in notes[0][1] or "encrypted" in notes[0][1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate name
        clashes = make_zip(
            tmp_path / "clash.zip",
            [("alice.ipynb", NOTEBOOK), ("alice.ipynb", "second"), ("bob", "a file"), ("bob/bob.ipynb", NOTEBOOK)],
        )
    found, notes = collected(clashes, tmp_path / "clash")
    assert set(found) == {"alice"} and found["alice"].path.read_text() == NOTEBOOK
    assert [where for where, _ in notes] == ["clash.zip: alice.ipynb", "clash.zip: bob/bob.ipynb"]


def test_an_exception_for_one_file_does_not_stop_the_batch(tmp_path, monkeypatch):
    touch(tmp_path / "in" / "alice.ipynb")
    touch(tmp_path / "in" / "bob.ipynb")
    real = intake.student_of

    def student_of(relative, pattern):
        if relative.name == "bob.ipynb":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return real(relative, pattern)

    monkeypatch.setattr(intake, "student_of", student_of)
    found, notes = collected(tmp_path / "in", tmp_path)
    assert set(found) == {"alice"}
    assert notes == [("bob.ipynb", notes[0][1])] and "UnicodeDecodeError" in notes[0][1]


def test_an_inner_zip_is_extracted_into_a_folder_of_its_own(tmp_path):
    upload = make_zip(tmp_path / "upload.zip", [("lab00_setup.ipynb", NOTEBOOK)])
    archive = make_zip(
        tmp_path / "canvas.zip",
        [
            (dated("roeric_777_600003_work/lab00_setup.ipynb", 2024), NOTEBOOK),
            (dated("roeric_777_600003_work.zip", 2025), upload.read_bytes()),
        ],
    )
    found, notes = collected(archive, tmp_path)
    extracted = tmp_path / "work" / "extracted"
    assert files_under(extracted) == [
        "roeric_777_600003_work/lab00_setup.ipynb",
        "roeric_777_600003_work~2/lab00_setup.ipynb",
    ]
    assert set(found) == {"777"} and "2 notebooks" in notes[0][1]


def test_a_students_zip_counts_for_that_student_whatever_its_files_are_called(tmp_path):
    attack = make_zip(
        tmp_path / "upload.zip",
        [
            (dated("victim_222_600009_lab00_setup.ipynb", 2030), '{"attacker": true}'),
            (dated("Victim_222_assignsubmission_file_/lab00_setup.ipynb", 2030), '{"attacker": true}'),
        ],
    )
    archive = make_zip(
        tmp_path / "canvas.zip",
        [
            (dated("victim_222_600001_lab00_setup.ipynb", 2024), NOTEBOOK),
            (dated("attacker_111_600005_upload.zip", 2024), attack.read_bytes()),
        ],
    )
    found, notes = collected(archive, tmp_path)
    assert set(found) == {"111", "222"}
    assert found["222"].path.name == "victim_222_600001_lab00_setup.ipynb"
    assert found["222"].path.read_text() == NOTEBOOK
    assert found["111"].path.parent.name == "attacker_111_600005_upload"
    assert time.localtime(found["111"].path.stat().st_mtime).tm_year == 2030  # the zip's dates are kept
    assert [where for where, _ in notes] == ["111"]  # the attacker's two notebooks, not the victim's


def test_moodle_the_outermost_student_folder_decides(tmp_path):
    attack = make_zip(tmp_path / "work.zip", [("Victim V_4712_assignsubmission_file_/lab.ipynb", NOTEBOOK)])
    archive = make_zip(
        tmp_path / "moodle.zip",
        [
            ("Victim V_4712_assignsubmission_file_/lab.ipynb", NOTEBOOK),
            ("Eve E_4711_assignsubmission_file_/work.zip", attack.read_bytes()),
        ],
    )
    found, _ = collected(archive, tmp_path)
    assert (
        found["4711"].path.relative_to(tmp_path / "work" / "extracted").parts[0] == "Eve E_4711_assignsubmission_file_"
    )
    assert (
        found["4712"].path.relative_to(tmp_path / "work" / "extracted").parts[0]
        == "Victim V_4712_assignsubmission_file_"
    )


def test_student_ids_equal_but_for_case_or_unicode_form_are_never_merged(tmp_path):
    download = tmp_path / "in"
    for name in ("Alice", "alice", "\uff41\uff4c\uff49\uff43\uff45", "alice~2", " carol "):
        touch(download / f"{name}.ipynb")
    found, notes = collected(download, tmp_path)
    assert {student: s.path.stem for student, s in found.items()} == {
        "Alice": "Alice",
        "alice~2": "alice~2",
        "alice~3": "alice",
        "alice~4": "\uff41\uff4c\uff49\uff43\uff45",
        "carol": " carol ",
    }
    assert all(s.problem is None and STUDENT_ID.match(student) for student, s in found.items())
    by_student = dict(notes)
    assert set(by_student) == {"alice~3", "alice~4", "carol"}
    assert "'Alice'" in by_student["alice~3"] and "not merged" in by_student["alice~3"]
    assert "read as 'carol'" in by_student["carol"]


def test_unusable_student_ids_are_reported_and_stay_inside_the_output(tmp_path):
    download = tmp_path / "in"
    for name in ("a" * 101, "CON", "nul.x", "a\nb", "ok", "x" * 100, " \u3000"):
        touch(download / name / "lab.ipynb")
    found, notes = collected(download, tmp_path, pattern=r"^(?P<student_id>[^/]*)/lab\.ipynb$")
    assert notes == [(" \u3000/lab.ipynb", "no student id found in this path; use --name-pattern")]
    assert {s: bool(sub.problem) for s, sub in found.items()} == {
        "a" * 101: True,
        "CON": True,
        "nul.x": True,
        "a\nb": True,
        "ok": False,
        "x" * 100: False,
    }
    assert "longer than 100" in found["a" * 101].problem and "reserved" in found["CON"].problem
    touch(tmp_path / "deep" / "dir" / "bob.ipynb")
    deep, _ = collected(tmp_path / "deep", tmp_path, pattern=r"(?P<student_id>.+)\.ipynb")
    assert "not a usable student id" in deep["dir/bob"].problem
    out = tmp_path / "out"
    for student, submission in {**found, **deep}.items():
        if submission.problem is None:
            assert STUDENT_ID.match(student) and (out / student).resolve().parent == out.resolve()


def test_a_bad_name_pattern_is_a_clear_error(tmp_path):
    touch(tmp_path / "in" / "alice.ipynb")
    for pattern in ("(unclosed", r"(?P<id>\d+)"):
        with pytest.raises(SystemExit, match="--name-pattern"):
            collect_submissions(tmp_path / "in", tmp_path / "work", pattern)
