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
the latest: by a timestamp in the path when there is one, else by file time (a zip's own dates).

Everything in a download is hostile input, so:

- Zips are extracted entry by entry, by this module, into a folder that did not exist before. An
  entry is refused when its name is absolute, starts with a drive letter, has a ``..`` part (``/``
  and ``\\`` both separate parts) or would land outside that folder; an entry that is a link is
  skipped, and a link in a download folder is not followed. :class:`ZipLimits` caps the bytes
  written, the number of entries, the compression ratio of one entry (more is a zip bomb) and how
  deep zips nest; bytes are counted as they are written, so a zip header that lies about sizes
  cannot get past the caps. Only stored and deflated entries are read (others can expand without
  bound before a size is known). A zip inside a zip is extracted into an unused folder named
  after it, next to it.
- A notebook belongs to the student named by the outermost part of its path that names one: a
  Canvas file name or a folder made from a Canvas zip, a Moodle folder (with ``--name-pattern``,
  the leftmost match). What a student uploads sits below the part the LMS named after them, so
  whatever names it carries, it can only count for that student.
- Student ids are NFKC-normalised and stripped of surrounding spaces. Ids that are equal when case
  is ignored, or equal once normalised though written differently, are never merged: the first
  (sorted) keeps its id, the others get ``~2``, ``~3``... Ids that are not :data:`STUDENT_ID`,
  are longer than :data:`MAX_ID_LENGTH` or are reserved file names are reported, not graded; every
  id that is graded matches :data:`STUDENT_ID`, so it is a safe file and folder name.
- Nothing wrong with one file or entry stops the batch: it becomes a note (file, what happened)
  for problems.csv. Only a missing source or an unusable ``--name-pattern`` stops everything.
"""

from __future__ import annotations

import os
import re
import stat
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from itertools import chain, count
from pathlib import Path
from typing import IO

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+~-]*\Z")
MAX_ID_LENGTH = 100
RESERVED_IDS = frozenset(
    {".", "..", "CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))}
)
CANVAS = re.compile(r"^(?P<name>[a-z]+)_(?:LATE_)?(?P<student_id>\d+)_(?P<submission>\d+)_(?P<file>.+)$")
MOODLE = re.compile(r"^(?P<name>.+)_(?P<student_id>\d+)_assignsubmission_(?:file|onlinetext)_?$")
TIMESTAMP = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})[T _-]?(\d{2})[:.-]?(\d{2})[:.-]?(\d{2})")
DRIVE = re.compile(r"^[A-Za-z]:")
READABLE_COMPRESSION = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
ENCRYPTED = 0x1  # general purpose flag bit 0
CHUNK_BYTES = 1024**2

Note = tuple[str, str]


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str | None = None  # set when the file cannot be graded at all


@dataclass(frozen=True)
class ZipLimits:
    """How much one download may unpack to; what goes past a limit is refused with a note."""

    total_bytes: int = 2 * 1024**3
    entries: int = 20_000
    ratio: int = 200  # uncompressed over compressed size of one entry; more is a zip bomb
    depth: int = 3  # the download is depth 1, a zip in it depth 2...
    small_entry_bytes: int = 1024**2  # never a bomb, whatever its ratio: a repetitive notebook is fine


DEFAULT_LIMITS = ZipLimits()


class Refused(Exception):
    """A zip entry that is not extracted; the message says why."""


@dataclass
class Extraction:
    """One download being unpacked: what is left of its limits, and the notes so far."""

    limits: ZipLimits
    notes: list[Note]
    bytes_left: int
    entries_left: int

    @classmethod
    def start(cls, limits: ZipLimits, notes: list[Note]) -> Extraction:
        return cls(limits, notes, limits.total_bytes, limits.entries)


@dataclass(frozen=True)
class Found:
    """A notebook in the download: where it is, and how recent it is."""

    path: Path
    relative: Path
    recency: tuple


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def made(folder: Path) -> bool:
    """Whether ``folder`` was created now (False when something of that name was there already)."""
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return False
    return True


def fresh_folder(wanted: Path) -> Path:
    """``wanted``, else ``wanted~2``, ``wanted~3``...: the first name not taken, created empty."""
    names = chain([wanted.name], (f"{wanted.name}~{n}" for n in count(2)))
    return next(folder for folder in (wanted.parent / name for name in names) if made(folder))


def destination(into: Path, name: str) -> Path:
    """Where the entry called ``name`` goes under ``into``; Refused when it could go anywhere else."""
    if name.startswith(("/", "\\")):
        raise Refused("an absolute path")
    if DRIVE.match(name):
        raise Refused("a path with a drive letter")
    parts = [part for part in re.split(r"[/\\]", name) if part not in ("", ".")]
    if ".." in parts:
        raise Refused("a path with a '..' part")
    if not parts:
        raise Refused("an empty name")
    target = into.joinpath(*parts)
    if not Path(os.path.realpath(target)).is_relative_to(os.path.realpath(into)):
        raise Refused("a path outside the extraction folder")
    return target


def is_bomb(size: int, compressed: int, limits: ZipLimits) -> bool:
    return size > limits.small_entry_bytes and size > limits.ratio * compressed


def check_size(size: int, info: zipfile.ZipInfo, extraction: Extraction) -> None:
    """Refused when ``size`` bytes of this entry break a limit."""
    limits = extraction.limits
    if size > extraction.bytes_left:
        raise Refused(f"the download would unpack to more than {limits.total_bytes:,} bytes")
    if is_bomb(size, info.compress_size, limits):
        raise Refused(f"zip bomb ({size:,} bytes from {info.compress_size:,}, more than {limits.ratio} to 1)")
    if size > info.file_size:
        raise Refused(f"more data than the {info.file_size:,} bytes its header says")


def check_entry(info: zipfile.ZipInfo, extraction: Extraction) -> None:
    """Refused for an entry that is a link, encrypted, compressed in a way not read, or past a limit."""
    if stat.S_ISLNK(info.external_attr >> 16):
        raise Refused("a symbolic link")
    if info.flag_bits & ENCRYPTED:
        raise Refused("encrypted")
    if info.compress_type not in READABLE_COMPRESSION:
        raise Refused(f"compression method {info.compress_type} (only stored and deflated entries are read)")
    check_size(info.file_size, info, extraction)


def copy_counted(source: IO[bytes], sink: IO[bytes], info: zipfile.ZipInfo, extraction: Extraction) -> int:
    """Copy chunk by chunk, checking the limits against the bytes really written; return their number."""
    written = 0
    while chunk := source.read(CHUNK_BYTES):
        written += len(chunk)
        check_size(written, info, extraction)
        sink.write(chunk)
    return written


def write_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, extraction: Extraction) -> None:
    """Write the entry's bytes to ``target``, a new file (never one that exists, nor through a link)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sink = open(target, "xb")
    try:
        with sink, archive.open(info) as source:
            extraction.bytes_left -= copy_counted(source, sink, info, extraction)
    except Exception:
        target.unlink(missing_ok=True)
        raise


def set_mtime(path: Path, date_time: tuple[int, int, int, int, int, int]) -> None:
    """The entry's date as the file's time (the latest attempt is chosen by it); left as is if unusable."""
    try:
        stamp = time.mktime(date_time + (0, 0, -1))
        os.utime(path, (stamp, stamp))
    except (OverflowError, ValueError, OSError):
        pass


def extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path, extraction: Extraction) -> Path | None:
    """Extract one entry under ``into``; its path, or None for a folder. Raises Refused."""
    target = destination(into, info.filename)
    if info.filename.endswith(("/", "\\")):
        target.mkdir(parents=True, exist_ok=True)
        return None
    check_entry(info, extraction)
    write_entry(archive, info, target, extraction)
    set_mtime(target, info.date_time)
    return target


def extract_or_note(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path, label: str, extraction: Extraction
) -> Path | None:
    """:func:`extract_entry`, with a note instead of an exception."""
    try:
        return extract_entry(archive, info, into, extraction)
    except Refused as refusal:
        why = str(refusal)
    except FileExistsError:
        why = "its path clashes with an entry already extracted"
    except Exception as error:
        why = describe(error)
    extraction.notes.append((f"{label}: {info.filename}", f"not extracted: {why}"))
    return None


def is_inner_zip(relative: Path) -> bool:
    return relative.suffix.lower() == ".zip" and not any(is_hidden(part) for part in relative.parts)


def extract_entries(archive: zipfile.ZipFile, into: Path, label: str, extraction: Extraction) -> list[Path]:
    """Extract every entry of ``archive`` the limits allow; return the zips among them (not opened)."""
    zips = []
    for info in archive.infolist():
        if extraction.entries_left <= 0:
            why = f"more than {extraction.limits.entries:,} entries in all; the rest of this zip was not extracted"
            extraction.notes.append((label, why))
            break
        extraction.entries_left -= 1
        path = extract_or_note(archive, info, into, label, extraction)
        if path is not None and is_inner_zip(path.relative_to(into)):
            zips.append(path)
    return zips


def extract_zip(path: Path, into: Path, label: str, extraction: Extraction) -> list[Path]:
    """Extract the zip at ``path`` into ``into``; return the zips it held. A zip that cannot be read is a note."""
    try:
        with zipfile.ZipFile(path) as archive:
            return extract_entries(archive, into, label, extraction)
    except Exception as error:
        extraction.notes.append((label, f"not a readable zip: {describe(error)}"))
        return []


def extract_nested(path: Path, into: Path, label: str, depth: int, extraction: Extraction) -> None:
    """Extract a zip, then each zip it held into a fresh folder next to that zip, as deep as the limits allow."""
    for inner in extract_zip(path, into, label, extraction):
        inner_label = f"{label}/{inner.relative_to(into).as_posix()}"
        if depth >= extraction.limits.depth:
            extraction.notes.append((inner_label, f"not opened: zips nested more than {extraction.limits.depth} deep"))
            continue
        try:
            extract_nested(inner, fresh_folder(inner.with_suffix("")), inner_label, depth + 1, extraction)
            inner.unlink()
        except Exception as error:
            extraction.notes.append((inner_label, f"not opened: {describe(error)}"))


def extract_download(source: Path, workdir: Path, limits: ZipLimits, notes: list[Note]) -> Path:
    """Unpack the zip ``source`` (and the zips inside it) into a fresh folder of ``workdir``; return that folder."""
    root = fresh_folder(workdir / "extracted")
    extract_nested(source, root, source.name, 1, Extraction.start(limits, notes))
    return root


def scan_folder(folder: Path, root: Path, notes: list[Note]) -> tuple[list[Path], list[Path]]:
    """The sub-folders and the notebooks directly in ``folder``, neither hidden nor links (those are noted)."""
    folders, notebooks = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if is_hidden(entry.name):
                continue
            if entry.is_symlink():
                notes.append((path.relative_to(root).as_posix(), "not read: a symbolic link (links are not followed)"))
            elif entry.is_dir(follow_symlinks=False):
                folders.append(path)
            elif entry.name.endswith(".ipynb") and entry.is_file(follow_symlinks=False):
                notebooks.append(path)
    return folders, notebooks


def notebooks_under(root: Path, notes: list[Note]) -> list[Path]:
    """Every notebook below ``root``, sorted; hidden files and folders, ``__MACOSX`` and links left out."""
    folders, notebooks = [root], []
    while folders:
        folder = folders.pop()
        try:
            inner, found = scan_folder(folder, root, notes)
        except OSError as error:
            notes.append((folder.relative_to(root).as_posix(), f"not read: {describe(error)}"))
            continue
        folders += inner
        notebooks += found
    return sorted(notebooks)


def student_of(relative: Path, pattern: re.Pattern | None) -> str | None:
    """The student id a notebook at ``relative`` (inside the download) belongs to, if any is known.

    The outermost part that names a student decides: parts further in are what a student uploaded.
    """
    if pattern is not None:
        match = pattern.search(relative.as_posix())
        return match.group("student_id") if match else None
    folders = len(relative.parts) - 1
    for index, part in enumerate(relative.parts):
        if match := (index < folders and MOODLE.match(part)) or CANVAS.match(part):
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


def normalised(student_id: str) -> str:
    return unicodedata.normalize("NFKC", student_id).strip()


def notebooks_by_student(root: Path, pattern: re.Pattern | None, notes: list[Note]) -> dict[str, list[Found]]:
    """The notebooks under ``root`` by the student id (as written) their path names; notes for the others."""
    candidates: dict[str, list[Found]] = {}
    for path in notebooks_under(root, notes):
        relative = path.relative_to(root)
        try:
            student = student_of(relative, pattern)
            found = Found(path, relative, recency(path))
        except Exception as error:
            notes.append((relative.as_posix(), f"not read: {describe(error)}"))
            continue
        if student is None or not normalised(student):
            notes.append((relative.as_posix(), "no student id found in this path; use --name-pattern"))
            continue
        candidates.setdefault(student, []).append(found)
    return candidates


def is_reserved(student_id: str) -> bool:
    """``.``, ``..``, or a name Windows keeps for a device (``CON``, ``nul.txt``, ``COM1``...)."""
    return student_id in RESERVED_IDS or student_id.split(".")[0].upper() in RESERVED_IDS


def id_problem(student_id: str, base: str) -> str | None:
    """Why ``student_id`` (``base`` with any ``~n`` suffix) cannot be graded, or None."""
    if len(base) > MAX_ID_LENGTH:
        why = f"longer than {MAX_ID_LENGTH} characters"
    elif is_reserved(base):
        why = "a reserved file name"
    elif not STUDENT_ID.match(student_id):
        why = "letters, digits, . _ @ + - ~ only, starting with a letter or digit"
    else:
        return None
    return f"{base!r} is not a usable student id ({why}); not graded, rename the file and grade again"


def unused_id(base: str, taken: set[str]) -> str:
    """``base~2``, ``base~3``...: the first that is not in ``taken`` (compared without case); now taken."""
    student_id = next(f"{base}~{n}" for n in count(2) if f"{base}~{n}".casefold() not in taken)
    taken.add(student_id.casefold())
    return student_id


def collision_note(student_id: str, written: str, found: Found, keeper: str, kept: Found) -> Note:
    """Why the student written ``written`` is graded as ``student_id``: another, ``keeper``, has that id."""
    return (
        student_id,
        f"student id {written!r} ({found.relative.as_posix()}) is {keeper!r} ({kept.relative.as_posix()}) once "
        f"case, Unicode forms and surrounding spaces are ignored; graded apart as {student_id!r}, not merged: "
        "check which student this is",
    )


def unique_ids(latest: dict[str, Found], notes: list[Note]) -> dict[str, str]:
    """The id each student is graded under, by the id as written (keys sorted); a note for each id changed."""
    keepers: dict[str, str] = {}
    for written in latest:
        keepers.setdefault(normalised(written).casefold(), written)
    taken = set(keepers)
    ids = {}
    for written, found in latest.items():
        keeper = keepers[normalised(written).casefold()]
        where = found.relative.as_posix()
        if keeper == written:
            ids[written] = normalised(written)
            if ids[written] != written:
                notes.append((ids[written], f"student id {written!r} ({where}) read as {ids[written]!r}"))
            continue
        ids[written] = unused_id(normalised(written), taken)
        notes.append(collision_note(ids[written], written, found, keeper, latest[keeper]))
    return ids


def several_notebooks_note(student_id: str, chosen: Found, found: list[Found]) -> Note | None:
    """The note for a student with more than one notebook, None for one."""
    others = ", ".join(other.path.name for other in found if other is not chosen)
    if not others:
        return None
    return student_id, f"{len(found)} notebooks; graded the latest, {chosen.path.name} (ignored: {others})"


def submissions_from(candidates: dict[str, list[Found]], notes: list[Note]) -> list[Submission]:
    """One submission per student, the latest notebook, under a unique id; notes for what was left out."""
    latest = {written: max(candidates[written], key=lambda found: found.recency) for written in sorted(candidates)}
    ids = unique_ids(latest, notes)
    submissions = []
    for written, chosen in latest.items():
        submissions.append(Submission(ids[written], chosen.path, id_problem(ids[written], normalised(written))))
        if note := several_notebooks_note(ids[written], chosen, candidates[written]):
            notes.append(note)
    return submissions


def compiled_pattern(name_pattern: str | None) -> re.Pattern | None:
    """``--name-pattern`` compiled; SystemExit when it is not a regular expression with a student_id group."""
    if not name_pattern:
        return None
    try:
        pattern = re.compile(name_pattern)
    except re.error as error:
        raise SystemExit(f"--name-pattern {name_pattern!r}: {error}") from error
    if "student_id" not in pattern.groupindex:
        raise SystemExit(f"--name-pattern {name_pattern!r}: needs a (?P<student_id>...) group")
    return pattern


def submissions_root(source: Path, workdir: Path, limits: ZipLimits, notes: list[Note]) -> Path:
    """The folder to look for notebooks in: ``source``, or where it was unpacked; nbgrader's ``submitted/``."""
    root = extract_download(source, workdir, limits, notes) if source.is_file() else source
    return root / "submitted" if (root / "submitted").is_dir() else root


def collect_submissions(
    source: Path, workdir: Path, name_pattern: str | None = None, *, limits: ZipLimits = DEFAULT_LIMITS
) -> tuple[list[Submission], list[Note]]:
    """One submission per student, and notes (student or file, what happened) for problems.csv."""
    if not source.exists():
        raise SystemExit(f"--submissions {source}: no such file or folder")
    pattern = compiled_pattern(name_pattern)
    notes: list[Note] = []
    root = submissions_root(source, workdir, limits, notes)
    return submissions_from(notebooks_by_student(root, pattern, notes), notes), notes
