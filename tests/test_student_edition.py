"""The student edition: published deterministically, free of secrets, installable and buildable on its own.

The module publishes the edition into a temporary folder, commits it to a git repository, clones
that, and then, with nothing from the instructor tree on the path:

- installs the published ``dlcourse`` (not editable) into a fresh virtual environment whose
  third-party packages are this environment's (torch, Jupyter Book, ...) but which cannot import
  the instructor's ``dlcourse``, ``autograder`` or ``tests``;
- runs every released lab, its answers filled in from the reference solution, with that
  environment's kernel, so every visible test runs against the published package;
- builds the published book from the clone in quick mode, with that environment's kernels;
- runs the content-based leak check on the tree and on the built HTML, its ``_sources``, its
  notebook downloads and its search index, then the built-book checks and the browser test on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import site
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
import yaml

from autograder.leaks import Secrets, readable_texts, scan
from autograder.paths import REPO_ROOT, all_labs, instructor_repository, repository
from autograder.publish import MARKER, check_no_leaks, publish
from autograder.release import dlcourse_tag
from tests.submissions import reference_answers

STUDENT_TOP_LEVEL = [
    ".gitignore",
    MARKER,
    "LICENSE",
    "Makefile",
    "README.md",
    "_config.yml",
    "_toc.yml",
    "book",
    "dlcourse",
    "environment.yml",
    "labs",
    "pyproject.toml",
    "requirements.txt",
]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def git(*args: str, cwd: Path) -> None:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def student_env() -> dict[str, str]:
    """The environment of the student's processes: quick mode, one thread, no instructor paths."""
    # MPLBACKEND is left out: a kernel draws figures inline only with its own backend.
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTHONHOME", "MPLBACKEND"}}
    env.update(DLCOURSE_QUICK="1", OMP_NUM_THREADS="1", DLCOURSE_STATIC_FIGURES="1")
    return env


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("publish") / "student-edition"
    assert publish(dest, check_release=False) == 0  # tests/test_release.py checks the release
    return dest


@pytest.fixture(scope="module")
def clone(edition, tmp_path_factory) -> Path:
    """A fresh clone of the edition after committing it, as a student or a Pages build gets it."""
    git("init", "-q", "-b", "main", cwd=edition)
    git("add", "-A", cwd=edition)
    git("commit", "-q", "-m", "Publish", cwd=edition)
    target = tmp_path_factory.mktemp("clone") / "course"
    git("clone", "-q", str(edition), str(target), cwd=edition.parent)
    return target


@pytest.fixture(scope="module")
def student_python(clone, tmp_path_factory) -> Path:
    """Python of a fresh virtual environment with the published dlcourse installed from the clone."""
    env_dir = tmp_path_factory.mktemp("student-venv")
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    own_site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Third-party packages come from this environment's site-packages as a plain path entry: its
    # .pth files (the editable dlcourse, the instructor tree) are not processed there.
    Path(own_site, "third-party.pth").write_text(site.getsitepackages()[0] + "\n")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", str(clone)],
        check=True,
        capture_output=True,
        text=True,
        cwd=env_dir,
        env=student_env(),
    )
    return python


def test_publishing_twice_gives_identical_trees(edition, tmp_path):
    again = tmp_path / "again"
    assert publish(again, check_release=False) == 0
    assert tree_digest(again) == tree_digest(edition)


def test_the_edition_holds_what_students_need_and_nothing_of_the_instructor(edition):
    assert sorted(path.name for path in edition.iterdir()) == sorted(STUDENT_TOP_LEVEL)
    files = tree_digest(edition)
    assert not [name for name in files if name.split("/")[0] in {"solutions", "tests", "autograder", ".ci"}]
    assert sorted(name for name in files if name.startswith("labs/")) == [
        f"labs/{lab}/{lab}.ipynb" for lab in all_labs()
    ]
    readme = (edition / "README.md").read_text()
    for instructor_words in ["For instructors", "hidden test", "autograder", "solutions/", "nbgrader"]:
        assert instructor_words not in readme, instructor_words
    assert "[tool.pytest" not in (edition / "pyproject.toml").read_text()
    config = yaml.safe_load((edition / "_config.yml").read_text())
    assert (config["repository"]["url"], config["repository"]["branch"]) == repository()
    assert "instructor_repository" not in config
    assert instructor_repository() not in "".join(
        text for path in edition.rglob("*") if path.is_file() for text in readable_texts(path)
    )


def test_labs_point_at_the_public_repository_and_pin_dlcourse(tmp_path):
    dest = tmp_path / "elsewhere"
    assert publish(dest, url="https://github.com/some-school/dl-fall", branch="fall", check_release=False) == 0
    for lab in all_labs():
        badge, setup = nbformat.read(dest / "labs" / lab / f"{lab}.ipynb", as_version=4).cells[:2]
        assert f"github/some-school/dl-fall/blob/fall/labs/{lab}/{lab}.ipynb" in badge.source
        assert f'PACKAGE = "dlcourse @ git+https://github.com/some-school/dl-fall@{dlcourse_tag()}"' in setup.source
    config = yaml.safe_load((dest / "_config.yml").read_text())
    assert config["repository"]["url"] == "https://github.com/some-school/dl-fall"


def test_publish_refuses_the_private_repository_and_foreign_folders(tmp_path):
    with pytest.raises(SystemExit, match="private instructor repository"):
        publish(tmp_path / "x", url=instructor_repository(), check_release=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds no student edition"):
        publish(foreign, check_release=False)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_the_published_tree_leaks_no_solution_or_hidden_test(edition):
    report = check_no_leaks(edition)
    print(report.summary())
    assert report.secret_lines > 300 and report.secret_words > 100 and report.files_scanned >= 40
    assert not report.leaks, "\n".join(report.leaks)


def test_the_leak_check_finds_a_planted_solution_line_and_hidden_word(edition, tmp_path):
    secrets = Secrets.of_course()
    line = sorted(secrets.lines)[len(secrets.lines) // 2]
    planted = tmp_path / "planted"
    shutil.copytree(edition, planted)
    chapter = planted / "book" / "intro.ipynb"
    nb = nbformat.read(chapter, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("    " + line))
    nbformat.write(nb, chapter)
    assert f"book/intro.ipynb: line {line[:100]!r}" in scan(planted, secrets).leaks
    page = planted / "page.html"
    page.write_text("<p>the grader calls <span>check_fgsm</span></p>")
    words = secrets.words_absent_from(readable_texts(edition / "labs/lab06_adversarial/lab06_adversarial.ipynb"))
    assert "page.html: word 'check_fgsm'" in scan(planted, words, word_paths=[page]).leaks


def test_published_dlcourse_is_installed_alone(student_python):
    probe = (
        "import importlib.util, dlcourse, dlcourse.checks, sys; "
        "print(dlcourse.__file__); "
        "print([m for m in ('autograder', 'tests') if importlib.util.find_spec(m)])"
    )
    out = subprocess.run(
        [student_python, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        cwd=student_python.parent,
        env=student_env(),
    ).stdout.splitlines()
    assert out[0].startswith(str(student_python.parent.parent)), out[0]
    assert out[1] == "[]", "the instructor's packages must not be importable"


def filled_lab(clone: Path, lab: str, student_python: Path, folder: Path) -> Path:
    """The published lab with the reference answers in its answer cells and a first cell that
    proves the kernel imports the published dlcourse and cannot import the grader."""
    nb = nbformat.read(clone / "labs" / lab / f"{lab}.ipynb", as_version=4)
    answers = reference_answers(lab)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = answers.pop(grade_id)
    assert not answers, f"answer cells missing from the published lab: {sorted(answers)}"
    prefix = str(student_python.parent.parent)
    nb.cells.insert(
        0,
        nbformat.v4.new_code_cell(
            "import dlcourse, importlib.util\n"
            f"assert dlcourse.__file__.startswith({prefix!r}), dlcourse.__file__\n"
            "assert importlib.util.find_spec('autograder') is None"
        ),
    )
    folder.mkdir(parents=True)
    path = folder / f"{lab}.ipynb"
    nbformat.write(nb, path)
    return path


def execute_lab(student_python: Path, path: Path) -> subprocess.CompletedProcess:
    options = ["--to", "notebook", "--execute", "--inplace", "--ExecutePreprocessor.timeout=600"]
    command = [student_python, "-m", "nbconvert", *options, str(path)]
    return subprocess.run(command, capture_output=True, text=True, cwd=path.parent, env=student_env())


class PublishedRuns:
    """The published book's build and the eight lab runs, started together to keep both cores busy:
    the build (one kernel at a time) in a process of its own, the labs one after another beside it."""

    def __init__(self, clone: Path, student_python: Path, work: Path):
        build = [student_python, "-c", "from jupyter_book.cli.main import main; main()", "build", "."]
        self.log = work / "book-build.log"
        with self.log.open("w") as log:  # a file, not a pipe: nobody reads the build's output while it runs
            self.build = subprocess.Popen(
                [*build, "--warningiserror"], cwd=clone, env=student_env(), stdout=log, stderr=subprocess.STDOUT
            )
        self.html = clone / "_build" / "html"
        self.lab_paths = {lab: filled_lab(clone, lab, student_python, work / lab) for lab in all_labs()}
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.labs = {lab: self.pool.submit(execute_lab, student_python, path) for lab, path in self.lab_paths.items()}

    def built_html(self) -> Path:
        assert self.build.wait() == 0, self.log.read_text()[-5000:]
        return self.html

    def close(self) -> None:
        for future in self.labs.values():
            future.cancel()
        self.pool.shutdown(wait=True)
        if self.build.poll() is None:
            self.build.kill()
            self.build.wait()


@pytest.fixture(scope="module")
def published_runs(clone, student_python, tmp_path_factory):
    runs = PublishedRuns(clone, student_python, tmp_path_factory.mktemp("labs"))
    yield runs
    runs.close()


@pytest.mark.parametrize("lab", all_labs())
def test_released_lab_passes_its_visible_tests_with_the_published_dlcourse(lab, published_runs):
    run = published_runs.labs[lab].result()
    assert run.returncode == 0, run.stderr[-3000:]
    executed = nbformat.read(published_runs.lab_paths[lab], as_version=4)
    errors = [output for cell in executed.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors


@pytest.fixture(scope="module")
def built_html(published_runs) -> Path:
    """The published book built from the clone in quick mode with the student environment's kernels."""
    return published_runs.built_html()


def test_the_published_book_leaks_nothing(built_html, edition):
    sources = [text for path in sorted(edition.rglob("*")) if path.is_file() for text in readable_texts(path)]
    secrets = Secrets.of_course().words_absent_from(sources)
    pages = [
        path
        for path in built_html.rglob("*")
        if path.is_file() and path.relative_to(built_html).parts[0] not in {"_static", "_images"}
    ]
    report = scan(built_html, secrets, word_paths=pages)
    print(report.summary())
    assert report.files_scanned > 50 and any(path.name == "searchindex.js" for path in pages)
    assert any(path.suffix == ".ipynb" for path in pages), "the notebook downloads must be scanned"
    assert not report.leaks, "\n".join(report.leaks)


def test_the_published_book_passes_the_page_checks_and_the_browser_test(built_html):
    env = {**student_env(), "BOOK_HTML": str(built_html)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-o",
            "addopts=-p no:cacheprovider",
            "tests/built_book.py",
            "tests/browser_book.py",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-5000:]
