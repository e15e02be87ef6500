"""`python -m autograder release`: labs/ is nbgrader's current output, with nothing secret in it."""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder import release as release_module
from autograder.paths import REPO_ROOT, all_labs, released_notebook, repository, source_notebook

LABS = all_labs()


def nbgrader_meta(cell):
    return cell.metadata.get("nbgrader", {})


def test_there_are_labs():
    assert "lab00_setup" in LABS


def test_release_check_passes_on_committed_labs():
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "release", "--check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_release_check_fails_when_labs_are_stale(tmp_path, monkeypatch):
    stale = tmp_path / "lab00_setup.ipynb"
    stale.write_text(released_notebook("lab00_setup").read_text().replace("Lab 0", "Lab zero"))
    monkeypatch.setattr(release_module, "released_notebook", lambda lab: stale)
    assert release_module.release(["lab00_setup"], check=True) == 1


def test_unknown_lab_is_an_error():
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "release", "lab99_nothing"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "no source notebook" in result.stderr


@pytest.mark.parametrize("lab", LABS)
def test_release_hides_solutions_and_hidden_tests(lab):
    text = released_notebook(lab).read_text()
    for marker in ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"]:
        assert marker not in text
    released = nbformat.read(released_notebook(lab), as_version=4)
    for cell in released.cells:
        if nbgrader_meta(cell).get("solution"):
            assert "raise NotImplementedError()" in cell.source, nbgrader_meta(cell)["grade_id"]
        assert not cell.get("outputs"), "released notebooks carry no outputs"


@pytest.mark.parametrize("lab", LABS)
def test_release_starts_with_colab_badge_and_setup(lab):
    cells = nbformat.read(released_notebook(lab), as_version=4).cells
    assert "colab.research.google.com/github/" in cells[0].source
    assert f"/blob/main/labs/{lab}/{lab}.ipynb" in cells[0].source
    assert cells[1].cell_type == "code"
    assert 'if "google.colab" in sys.modules:' in cells[1].source
    url, _ = repository()
    assert f'PACKAGE = "dlcourse @ git+{url}@{release_module.dlcourse_tag()}"' in cells[1].source
    assert '%pip install --quiet "$PACKAGE"' in cells[1].source


def test_the_dlcourse_tag_follows_the_package_sources(tmp_path, monkeypatch):
    copy = tmp_path / "dlcourse"
    shutil.copytree(REPO_ROOT / "dlcourse", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(release_module, "DLCOURSE_DIR", copy)
    monkeypatch.setattr(release_module, "REPO_ROOT", tmp_path)
    tag = release_module.dlcourse_tag()
    assert re.fullmatch(r"dlcourse-[0-9a-f]{12}", tag) and tag == release_module.dlcourse_tag()
    (copy / "seed.py").write_text((copy / "seed.py").read_text().replace("\n", "\r\n"))
    assert release_module.dlcourse_tag() == tag, "line endings of a checkout must not change the tag"
    (copy / "seed.py").write_text((copy / "seed.py").read_text() + "\n# a change\n")
    assert release_module.dlcourse_tag() != tag
    monkeypatch.setattr(release_module, "published_pyproject", lambda: "[project]\nname = 'other'\n")
    assert release_module.dlcourse_tag() != tag


@pytest.mark.parametrize("lab", LABS)
def test_release_keeps_every_graded_cell(lab):
    def graded(path):
        return [nbgrader_meta(c)["grade_id"] for c in nbformat.read(path, as_version=4).cells if nbgrader_meta(c)]

    assert graded(released_notebook(lab)) == graded(source_notebook(lab))


@pytest.mark.parametrize("lab", LABS)
def test_source_notebooks_are_committed_without_outputs(lab):
    nb = nbformat.read(source_notebook(lab), as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
