"""Where the course's files are, and the repository facts the release needs."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
LABS_DIR = REPO_ROOT / "labs"
BOOK_CONFIG = REPO_ROOT / "_config.yml"
DLCOURSE_DIR = REPO_ROOT / "dlcourse"
PYPROJECT = REPO_ROOT / "pyproject.toml"
NBGRADER_CONFIG = Path(__file__).resolve().parent / "nbgrader_config.py"
BATTERY_DIR = Path(__file__).resolve().parent / "battery"  # the hidden tests' shared code


def source_notebook(lab: str) -> Path:
    """The instructor's source notebook ``solutions/LAB/LAB.ipynb``."""
    return SOLUTIONS_DIR / lab / f"{lab}.ipynb"


def released_notebook(lab: str) -> Path:
    """The student release ``labs/LAB/LAB.ipynb``."""
    return LABS_DIR / lab / f"{lab}.ipynb"


def all_labs() -> list[str]:
    """Names of every lab that has a source notebook, in order."""
    return sorted(path.parent.name for path in SOLUTIONS_DIR.glob("*/*.ipynb") if path.stem == path.parent.name)


def check_lab_name(lab: str) -> str:
    if not source_notebook(lab).is_file():
        known = ", ".join(all_labs()) or "none"
        raise SystemExit(f"no source notebook {source_notebook(lab).relative_to(REPO_ROOT)} (labs: {known})")
    return lab


# Between these lines a configuration file holds what only the instructor repository keeps:
# `python -m autograder publish` leaves them out of the student edition.
INSTRUCTOR_ONLY_BEGIN = "# --- instructor only: not published ---"
INSTRUCTOR_ONLY_END = "# --- end of instructor only ---"


def repository() -> tuple[str, str]:
    """(url, branch) of the public student repository, read from the book's ``_config.yml``.

    Colab badges, the labs' setup cell and the book's launch buttons point there.
    """
    repo = yaml.safe_load(BOOK_CONFIG.read_text())["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


def instructor_repository() -> str:
    """Address of the private instructor repository (this one), from ``_config.yml``."""
    return yaml.safe_load(BOOK_CONFIG.read_text())["instructor_repository"]["url"].rstrip("/")
