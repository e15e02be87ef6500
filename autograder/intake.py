"""From what an instructor downloads to one notebook per student.

``--submissions`` may be

- a folder of ``<student_id>.ipynb`` files;
- nbgrader's ``submitted/<student_id>/<LAB>/<LAB>.ipynb`` layout (the folder itself or its parent);
- an LMS download, as a folder or a zip (zips inside zips are opened too): Canvas names files
  ``<name>_[LATE_]<user id>_<submission id>_<file>``, Moodle puts each student's files in a
  folder ``<Full Name>_<participant id>_assignsubmission_file_``; the numeric id becomes the
  student id. Any other naming works with ``--name-pattern``, a regular expression with a
  ``student_id`` group matched against each notebook's path inside the download.

A student with several notebooks (resubmissions, "Copy of LAB.ipynb" from Colab) is graded on
the latest: by a timestamp in the path when there is one, else by file time.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$")
CANVAS = re.compile(r"^(?P<name>[a-z]+)_(?:LATE_)?(?P<student_id>\d+)_(?P<submission>\d+)_(?P<file>.+)$")
MOODLE = re.compile(r"^(?P<name>.+)_(?P<student_id>\d+)_assignsubmission_(?:file|onlinetext)_?$")
TIMESTAMP = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T _-]?(\d{2})[:.-]?(\d{2})[:.-]?(\d{2})")


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str | None = None  # set when the file cannot be graded at all


def extract_zips(path: Path, into: Path) -> Path:
    """Unpack ``path`` (and every zip found inside it) into ``into``; return the folder."""
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
        for info in archive.infolist():  # keep the upload times: the latest attempt is chosen by them
            stamp = time.mktime(info.date_time + (0, 0, -1))
            os.utime(into / info.filename, (stamp, stamp))
    for inner in sorted(into.rglob("*.zip")):
        extract_zips(inner, inner.with_suffix(""))
        inner.unlink()
    return into


def student_of(relative: Path, pattern: re.Pattern | None) -> str | None:
    """The student id a notebook at ``relative`` (inside the download) belongs to, if any is known."""
    if pattern is not None:
        match = pattern.search(relative.as_posix())
        return match.group("student_id") if match else None
    for part in relative.parts[:-1]:
        if match := MOODLE.match(part):
            return match.group("student_id")
    if match := CANVAS.match(relative.name):
        return match.group("student_id")
    if len(relative.parts) == 3 and relative.parts[1] == relative.parts[2].removesuffix(".ipynb"):
        return relative.parts[0]  # nbgrader: <student>/<LAB>/<LAB>.ipynb
    if len(relative.parts) == 1:
        return relative.stem
    return None


def recency(path: Path) -> tuple:
    """Sort key: a timestamp written in the path wins over the file's modification time."""
    stamps = TIMESTAMP.findall(path.as_posix())
    return (tuple(int(part) for part in stamps[-1]) if stamps else (), path.stat().st_mtime, path.name)


def collect_submissions(
    source: Path, workdir: Path, name_pattern: str | None = None
) -> tuple[list[Submission], list[tuple[str, str]]]:
    """One submission per student, and notes (student or file, what happened) for problems.csv."""
    if not source.exists():
        raise SystemExit(f"--submissions {source}: no such file or folder")
    root = extract_zips(source, workdir / "extracted") if source.is_file() else source
    if (root / "submitted").is_dir():
        root = root / "submitted"
    pattern = re.compile(name_pattern) if name_pattern else None
    candidates: dict[str, list[Path]] = {}
    notes: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*.ipynb")):
        relative = path.relative_to(root)
        if any(part.startswith(".") or part == "__MACOSX" for part in relative.parts):
            continue
        student = student_of(relative, pattern)
        if student is None:
            notes.append((relative.as_posix(), "no student id found in this path; use --name-pattern"))
            continue
        candidates.setdefault(student, []).append(path)
    submissions = []
    for student, paths in sorted(candidates.items()):
        latest = max(paths, key=recency)
        submission = Submission(student, latest)
        if not STUDENT_ID.match(student):
            submission.problem = (
                f"{student!r} is not a usable student id (letters, digits, . _ @ + -); "
                "not graded, rename the file and grade again"
            )
        if len(paths) > 1:
            others = ", ".join(p.name for p in paths if p != latest)
            notes.append((student, f"{len(paths)} notebooks; graded the latest, {latest.name} (ignored: {others})"))
        submissions.append(submission)
    return submissions, notes
