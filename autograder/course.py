"""A throw-away nbgrader course directory holding one lab, and the API around it."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from autograder.paths import NBGRADER_CONFIG, source_notebook


def put_scripts_on_path() -> None:
    """nbgrader runs the ``alembic`` command: make this interpreter's scripts folder findable.

    Needed when the tools are started as ``.venv/bin/python -m autograder`` without
    activating the virtual environment.
    """
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def load_config(course_root: Path) -> Config:
    """The course's nbgrader configuration, pointed at ``course_root``."""
    config = PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(NBGRADER_CONFIG.parent)).load_config()
    config.CourseDirectory.root = str(course_root)
    config.CourseDirectory.db_url = f"sqlite:///{course_root / 'gradebook.db'}"
    return config


def open_course(course_root: Path, lab: str) -> NbGraderAPI:
    """Create the course folder with ``lab`` as its only assignment and generate it.

    The gradebook then knows every graded cell of the lab and the release
    lies in ``course_root/release/LAB/LAB.ipynb``.
    """
    put_scripts_on_path()
    source_dir = course_root / "source" / lab
    source_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(source_notebook(lab), source_dir / f"{lab}.ipynb")
    config = load_config(course_root)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    api.log.setLevel(logging.ERROR)
    result = api.generate_assignment(lab, force=True, create=True)
    if not result["success"]:
        raise RuntimeError(f"nbgrader could not generate {lab}:\n{result.get('error') or result.get('log')}")
    return api
