"""Where the course's files are, and the repository facts the release needs."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = REPO_ROOT / "solutions"
LABS_DIR = REPO_ROOT / "labs"
BOOK_CONFIG = REPO_ROOT / "_config.yml"
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


def repository() -> tuple[str, str]:
    """(url, branch) of the course repository, read from the book's ``_config.yml``."""
    config = yaml.safe_load(BOOK_CONFIG.read_text())
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")
