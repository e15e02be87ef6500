"""``python -m autograder publish DEST``: the student edition, a folder for the public repository.

The instructor repository (solutions, hidden tests, the grader) stays private. The student
edition holds what students need and nothing else: the book's chapters, the released labs,
the ``dlcourse`` package with the part of ``pyproject.toml`` that installs it, the book's
configuration pointing at the public repository, a student README, a Makefile, the pinned
requirements and the licence. It is written the same way every time (same files, same bytes),
and checked for leaks before the command returns (:mod:`autograder.leaks`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import yaml

from autograder.leaks import LeakReport, Secrets, readable_texts, scan
from autograder.paths import (
    BOOK_CONFIG,
    INSTRUCTOR_ONLY_BEGIN,
    INSTRUCTOR_ONLY_END,
    REPO_ROOT,
    all_labs,
    instructor_repository,
    released_notebook,
    repository,
)
from autograder.release import colab_cells, colab_url, dlcourse_tag, normalized, published_pyproject, release

TEMPLATES = Path(__file__).resolve().parent / "student_edition"
COPIED_TREES = ("book", "dlcourse")
COPIED_FILES = ("_toc.yml", "requirements.txt", "environment.yml", "LICENSE")
SKIPPED = {"__pycache__", ".ipynb_checkpoints", "_build", ".pytest_cache", ".DS_Store"}
MARKER = ".student-edition"


def without_instructor_only(text: str) -> str:
    """``text`` less the lines from each instructor-only marker to its end marker."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == INSTRUCTOR_ONLY_BEGIN:
            skipping = True
        elif line.strip() == INSTRUCTOR_ONLY_END:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "".join(kept)


def student_config(url: str, branch: str) -> str:
    """The book's ``_config.yml`` for the student edition: the public repository, nothing private."""
    lines = []
    section = None
    for line in without_instructor_only(BOOK_CONFIG.read_text()).splitlines(keepends=True):
        if line[:1].isalpha():
            section = line.split(":")[0]
        if section == "repository" and line.startswith("  url:"):
            line = f"  url: {url}\n"
        elif section == "repository" and line.startswith("  branch:"):
            line = f"  branch: {branch}\n"
        lines.append(line)
    text = "".join(lines)
    config = yaml.safe_load(text)
    assert (config["repository"]["url"], config["repository"]["branch"]) == (url, branch), "_config.yml's layout"
    assert "instructor_repository" not in config, "_config.yml must mark instructor_repository instructor-only"
    return text


def student_lab(lab: str, url: str, branch: str) -> str:
    """The released lab with its badge and setup cell pointing at ``url``/``branch``."""
    nb = nbformat.read(released_notebook(lab), as_version=4)
    assert [cell.id for cell in nb.cells[:2]] == ["colab-badge", "colab-setup"], f"{lab}: release it again"
    nb.cells = colab_cells(lab, url, branch) + nb.cells[2:]
    return normalized(nb)


def lab_row(lab: str, url: str, branch: str) -> str:
    """A README table row: the lab's title and its Colab badge."""
    first_heading = next(
        line.lstrip("# ").strip()
        for cell in nbformat.read(released_notebook(lab), as_version=4).cells
        if cell.cell_type == "markdown"
        for line in cell.source.splitlines()
        if line.startswith("# ")
    )
    badge = "https://colab.research.google.com/assets/colab-badge.svg"
    return f"| [{first_heading}](labs/{lab}/{lab}.ipynb) | [![Open In Colab]({badge})]({colab_url(lab, url, branch)}) |"


def from_template(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, f"{name}: a placeholder was not filled"
    return text


def edition_files(url: str, branch: str) -> dict[str, bytes]:
    """Every file of the student edition: relative path -> content."""
    files: dict[str, bytes] = {}
    for tree in COPIED_TREES:
        for path in sorted((REPO_ROOT / tree).rglob("*")):
            relative = path.relative_to(REPO_ROOT)
            if path.is_file() and not SKIPPED & set(relative.parts) and path.suffix != ".pyc":
                files[relative.as_posix()] = path.read_bytes()
    for name in COPIED_FILES:
        files[name] = (REPO_ROOT / name).read_bytes()
    for lab in all_labs():
        files[f"labs/{lab}/{lab}.ipynb"] = student_lab(lab, url, branch).encode()
    title = yaml.safe_load(BOOK_CONFIG.read_text())["title"]
    owner, _, name = url.removeprefix("https://github.com/").partition("/")
    values = {
        "url": url,
        "branch": branch,
        "tag": dlcourse_tag(),
        "title": title,
        "repo_name": name,
        "pages": f"https://{owner.lower()}.github.io/{name}/",
        "labs": "\n".join(lab_row(lab, url, branch) for lab in all_labs()),
    }
    files["_config.yml"] = student_config(url, branch).encode()
    files["pyproject.toml"] = published_pyproject().encode()
    files["README.md"] = from_template("README.md", **values).encode()
    files["Makefile"] = from_template("Makefile", **values).encode()
    files[".gitignore"] = from_template("gitignore", **values).encode()
    files[MARKER] = from_template("student-edition", **values).encode()
    return files


def clear(dest: Path) -> None:
    """Empty ``dest`` for a new edition, keeping its ``.git``; refuse a folder that holds something else."""
    if not dest.exists():
        dest.mkdir(parents=True)
        return
    entries = [entry for entry in dest.iterdir() if entry.name != ".git"]
    if entries and not (dest / MARKER).is_file():
        raise SystemExit(
            f"{dest} is not empty and holds no student edition ({MARKER} is missing); "
            "publish into an empty folder or a clone of the student repository"
        )
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def check_no_leaks(dest: Path) -> LeakReport:
    """The leak check of :mod:`autograder.leaks` on the edition's files."""
    sources = [text for path in sorted(dest.rglob("*")) if path.is_file() for text in readable_texts(path)]
    return scan(dest, Secrets.of_course().words_absent_from(sources))


def publish(dest: Path, url: str | None = None, branch: str | None = None, check_release: bool = True) -> int:
    """Write the student edition into ``dest``; returns the exit status.

    ``check_release=False`` skips confirming that ``labs/`` matches ``solutions/`` (for tests
    that publish several times in a row).
    """
    configured_url, configured_branch = repository()
    url, branch = (url or configured_url).rstrip("/"), branch or configured_branch
    if url == instructor_repository():
        raise SystemExit(f"{url} is the private instructor repository; publish to the public student repository")
    if check_release and release(all_labs(), check=True):
        raise SystemExit("publish only released labs: run `python -m autograder release` first")
    dest = dest.resolve()
    if (dest == REPO_ROOT or REPO_ROOT in dest.parents) and REPO_ROOT / "_build" not in dest.parents:
        raise SystemExit("publish outside the instructor repository (or under its _build/)")
    clear(dest)
    files = edition_files(url, branch)
    for relative, content in sorted(files.items()):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    report = check_no_leaks(dest)
    print(f"wrote the student edition to {dest}: {len(files)} files")
    print(f"leak check: {report.summary()}")
    if report.leaks:
        print("\n".join(f"  {leak}" for leak in report.leaks))
        return 1
    tag = dlcourse_tag()
    print(f"next, in a clone of {url} (the labs install dlcourse at the tag {tag}):")
    print(f"  git -C {dest} add -A && git -C {dest} commit -m 'Publish the course'")
    print(f"  git -C {dest} tag {tag}    # once per version of dlcourse; an existing tag stays where it is")
    print(f"  git -C {dest} push origin {branch} {tag}")
    return 0
