"""The book's configuration: what is built, how it executes, where Colab finds it."""

from pathlib import Path

import nbformat
import yaml

from autograder.paths import REPO_ROOT

CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())


def toc_files():
    files = [TOC["root"]]
    for part in TOC["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_toc_has_intro_seven_chapters_and_the_labs():
    files = toc_files()
    assert files[0] == "book/intro"
    chapters = [f for f in files if f.startswith("book/") and f != "book/intro"]
    assert len(chapters) == 7
    assert "labs/lab00_setup/lab00_setup" in files


def test_every_page_is_a_notebook_so_colab_can_open_it():
    for file in toc_files():
        assert (REPO_ROOT / f"{file}.ipynb").is_file(), file


def test_no_solution_or_autograder_file_is_in_the_toc():
    assert not [f for f in toc_files() if f.startswith(("solutions", "autograder", "tests"))]
    assert CONFIG["only_build_toc_files"] is True


def test_placeholder_chapters_say_which_issue_fills_them():
    for file in toc_files():
        nb = nbformat.read(REPO_ROOT / f"{file}.ipynb", as_version=4)
        text = "\n".join(cell.source for cell in nb.cells)
        if "being written" in text:
            assert "issue" in text, file


def test_execution_colab_and_repository_settings():
    assert CONFIG["execute"]["execute_notebooks"] == "cache"
    assert CONFIG["execute"]["timeout"] >= 300
    assert "labs/*/*.ipynb" in CONFIG["execute"]["exclude_patterns"]
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["repository"]["branch"] == "main"
    assert CONFIG["repository"]["url"].startswith("https://github.com/")


def test_jupyter_book_is_pinned_below_version_two():
    requirements = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    pin = next(line for line in requirements if line.lower().startswith("jupyter-book=="))
    major = int(pin.split("==")[1].split(".")[0])
    assert major == 1
    assert "torch==2.13.0" in requirements


def test_notebooks_are_committed_without_outputs():
    for path in Path(REPO_ROOT).glob("*/**/*.ipynb"):
        if ".venv" in path.parts or "_build" in path.parts:
            continue
        nb = nbformat.read(path, as_version=4)
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), path
