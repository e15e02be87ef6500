"""Grade one submission in a process of its own: ``python -m autograder.worker REQUEST.json``.

The parent (:mod:`autograder.grade`) prepares a template course once (the lab
generated into a fresh gradebook). Each worker copies that template into its own
folder, autogrades one notebook with nbgrader, writes the feedback page, and
reports the per-cell scores as JSON. No two processes ever write the same SQLite
file; the parent merges the reports into one gradebook at the end.
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from autograder.course import load_config, put_scripts_on_path


@dataclass
class Request:
    lab: str
    student_id: str
    notebook: str  # path of the submitted notebook
    template: str  # course folder with the generated lab and its gradebook
    feedback: str  # where the feedback page goes
    result: str  # where the Result JSON goes
    memory_limit_mb: int | None = None


@dataclass
class Result:
    student_id: str
    scores: dict[str, float] = field(default_factory=dict)  # grade_id -> score
    problem: str | None = None
    seconds: float = 0.0


def last_error_line(result: dict) -> str:
    text = (result.get("error") or result.get("log") or "unknown error").strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


def limit_memory(megabytes: int | None) -> None:
    """Cap this process's data memory, a limit the kernel it starts inherits.

    RLIMIT_DATA counts the heap and private writable mappings, where tensors and
    arrays live, but not address space merely reserved (as CUDA does by the
    gigabyte), which an address-space limit would refuse.
    """
    if megabytes:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def autograde(request: Request, course_root: Path) -> Result:
    lab, student = request.lab, request.student_id
    result = Result(student)
    target = course_root / "submitted" / student / lab / f"{lab}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(request.notebook, target)
    config = load_config(course_root)
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    api.log.setLevel(logging.ERROR)
    with Gradebook(api.coursedir.db_url) as gradebook:
        gradebook.update_or_create_student(student)
    outcome = api.autograde(lab, student, force=True, create=True)
    if not outcome["success"]:
        result.problem = f"autograding failed: {last_error_line(outcome)}"
        return result
    with Gradebook(api.coursedir.db_url) as gradebook:
        notebook = gradebook.find_submission_notebook(lab, lab, student)
        result.scores = {grade.name: float(grade.score) for grade in notebook.grades}
    outcome = api.generate_feedback(lab, student, force=True)
    html = course_root / "feedback" / student / lab / f"{lab}.html"
    if not outcome["success"] or not html.exists():
        result.problem = f"graded, but feedback failed: {last_error_line(outcome)}"
        return result
    Path(request.feedback).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(html, request.feedback)
    return result


def run(request: Request) -> Result:
    started = time.perf_counter()
    put_scripts_on_path()
    limit_memory(request.memory_limit_mb)
    with tempfile.TemporaryDirectory(prefix=f"dlcourse-{request.student_id}-") as tmp:
        course_root = Path(tmp) / "course"
        shutil.copytree(request.template, course_root)
        result = autograde(request, course_root)
    result.seconds = time.perf_counter() - started
    return result


def main(argv: list[str]) -> int:
    request = Request(**json.loads(Path(argv[0]).read_text()))
    result = run(request)
    Path(request.result).write_text(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
