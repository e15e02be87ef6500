"""Checks of the built HTML book in _build/html; run by `make check-book` after `make book`.

``BOOK_HTML=path`` checks another build (tests/test_student_edition.py checks the published one).
"""

import os
import re
from pathlib import Path

import pytest
import yaml

from autograder.paths import REPO_ROOT

HTML = Path(os.environ.get("BOOK_HTML", REPO_ROOT / "_build" / "html"))
TOC = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [chapter["file"] for part in TOC["parts"] for chapter in part["chapters"]]

pytestmark = pytest.mark.skipif(not (HTML / "index.html").exists(), reason="run `make book` first")


@pytest.mark.parametrize("page", PAGES)
def test_every_toc_page_is_built(page):
    assert (HTML / f"{page}.html").is_file()


def test_nothing_secret_is_published():
    for path in HTML.rglob("*"):
        if path.is_file() and path.suffix in {".html", ".ipynb", ".txt", ".js", ".md"}:
            text = path.read_text(errors="ignore")
            for marker in ["BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"]:
                assert marker not in text, f"{path.relative_to(HTML)} contains {marker!r}"
    assert not list(HTML.rglob("solutions")), "solutions/ must not be part of the book"
    assert not list(HTML.rglob("autograder")), "autograder/ must not be part of the book"


def test_intro_is_executed_with_a_kernel_free_player():
    html = (HTML / "book" / "intro.html").read_text()
    assert "split sizes:" in html  # an executed output
    assert re.search(r'<input[^>]*type="range"', html), "the interactive figure needs its frame player"
    assert html.count("data:image/png;base64") >= 10


def test_lab_pages_offer_colab():
    html = (HTML / "labs" / "lab00_setup" / "lab00_setup.html").read_text()
    assert "colab.research.google.com/github/" in html


CHAPTERS = {
    # page: (executed outputs that must appear, tables, figures, base64 frames of the kernel-free player)
    "01_sequences": (["one word per update:"], 5, 3, 8),
    "02_stability_init": (["every entry is multiplied by threshold / (norm + 1e-6)"], 10, 5, 10),
    "03_batchnorm": (
        [
            "running_var  = (1 - m) * old + m * UNBIASED batch variance",
            "Expected more than 1 value per channel when training",  # the batch-size-1 error, caught
        ],
        6,
        3,
        11,
    ),
    "04_advanced_cnns": (
        ["output_size agreed with nn.Conv2d in", "inputs of the fully connected layer: 8 x 8 x 4 = 256"],
        7,
        5,
        12,
    ),
    "05_visualization": (
        [
            "filters: (16, 3, 3), responses to one digit: (16, 8, 8)",
            "Grad-CAM maps that are constant (all zero), left out of the means:",
        ],
        8,
        7,
        40,
    ),
    "06_adversarial": (["clean test accuracy of model A:"], 10, 8, 11),
    "07_calibration": (
        ["AUROC test digits vs letters: ranks", "the search bracket for T is"],
        12,
        9,
        21,
    ),
}


@pytest.mark.parametrize("page", sorted(CHAPTERS))
def test_chapter_is_executed_with_tables_figures_and_a_kernel_free_player(page):
    outputs, tables, figures, frames = CHAPTERS[page]
    html = (HTML / "book" / f"{page}.html").read_text()
    for output in outputs:
        assert output in html, f"the executed output {output!r} is missing"
    assert html.count("<table") >= tables, "the measured results must render as tables"
    found = re.findall(r'<img[^>]*src="\.\./_images/[^"]+\.png"', html)
    assert len(found) >= figures, f"expected at least {figures} figures, found {len(found)}"
    assert re.search(r'<input[^>]*type="range"', html), "the interactive figure needs its frame player"
    assert html.count("data:image/png;base64") >= frames, "the frame player needs one frame per setting"
