"""No measured number is typed into a chapter's prose: each comes from the page's own run.

A chapter's markdown may state a measured result only through myst-nb's ``{glue:text}`` /
``{glue:md}`` roles (or in markdown that a code cell emits), so that a rebuild on another
machine, thread count or seed can never leave the text contradicting the page's own tables and
figures. This test reads every markdown cell of ``book/*.ipynb``, removes what may legitimately
hold numbers (glue roles, inline code, math, link targets, section and figure numbers, shapes
such as 8×8) and fails on anything that still looks measured:

- a decimal (``0.37``) or a percentage (``12 %``, ``12 percent``);
- a count next to a word that counts outcomes or costs (``3 of 5``, ``4 seeds``, ``7 spikes``,
  ``13 minutes``, ``6x faster``).

Published figures (with their citation) and exact mathematical constants that prose needs are
listed in ``ALLOWED`` with the reason they may stay typed.
"""

import json
import re
from pathlib import Path

import pytest

from autograder.paths import REPO_ROOT

CHAPTERS = sorted((REPO_ROOT / "book").glob("*.ipynb"))

# (chapter stem, number as written) -> why it may be typed: a citation, or why it is not measured.
ALLOWED: dict[tuple[str, str], str] = {
    ("03_batchnorm", "14"): "BN-Inception matched Inception in 14 times fewer steps, Ioffe & Szegedy 2015",
    ("03_batchnorm", "4.9"): "the BN-Inception ensemble's top-5 validation error, Ioffe & Szegedy 2015",
    ("03_batchnorm", "10.6"): "group norm's error below BN's at 2 images per GPU, Wu & He 2018",
    ("06_adversarial", "78"): "universal perturbations' fooling rate, Moosavi-Dezfooli et al. 2017",
    ("06_adversarial", "94"): "universal perturbations' fooling rate, Moosavi-Dezfooli et al. 2017",
    ("06_adversarial", "99.9"): "FGSM error rate on MNIST, Goodfellow et al. 2015",
    ("06_adversarial", "89.4"): "FGSM error rate on MNIST, Goodfellow et al. 2015",
    ("06_adversarial", "97.6"): "FGSM's average confidence on MNIST, Goodfellow et al. 2015",
    ("06_adversarial", "17.9"): "FGSM error rate after adversarial training, Goodfellow et al. 2015",
    ("06_adversarial", "98.8"): "clean MNIST accuracy of the robust model, Madry et al. 2018",
    ("06_adversarial", "89"): "PGD accuracy on MNIST of the robust model, Madry et al. 2018",
    ("06_adversarial", "87"): "clean CIFAR-10 accuracy of the robust model, Madry et al. 2018",
    ("06_adversarial", "46"): "PGD accuracy on CIFAR-10 of the robust model, Madry et al. 2018",
    ("04_advanced_cnns", "1.2"): "ImageNet's training set size, Deng et al. 2009",
    ("04_advanced_cnns", "15.3"): "AlexNet's ILSVRC-2012 top-5 error, Krizhevsky et al. 2012",
    ("04_advanced_cnns", "26.2"): "the second-best ILSVRC-2012 entry, Krizhevsky et al. 2012",
    ("04_advanced_cnns", "6.67"): "GoogLeNet's ILSVRC-2014 top-5 error, Szegedy et al. 2015",
    ("04_advanced_cnns", "1"): "the title of Goyal et al. 2017 ('training ImageNet in 1 hour')",
    ("04_advanced_cnns", "0.01"): "a setting: the quadrant experiment's learning rate",
    ("04_advanced_cnns", "0.05"): "a setting: the depth experiment's learning rate",
    ("04_advanced_cnns", "0.9"): "a setting: SGD momentum",
    ("05_visualization", "0.003"): "a setting: Adam's learning rate",
    ("05_visualization", "0.5"): "a setting the exercise asks for: the occlusion fill",
    ("07_calibration", "0.97"): "an illustration: a confidence a doctor might read",
    ("07_calibration", "0.55"): "an illustration: a confidence a doctor might read",
    ("07_calibration", "0.7"): "an illustration of a single prediction",
    ("07_calibration", "0.999"): "an illustration: an always-certain classifier",
    ("07_calibration", "70"): "an illustration: a weather forecast's announced chance",
    ("07_calibration", "95"): "an illustration: an always-certain classifier's accuracy",
    ("07_calibration", "16.53"): "ECE before temperature scaling, Guo et al. 2017, Table 1",
    ("07_calibration", "1.26"): "ECE after temperature scaling, Guo et al. 2017, Table 1",
    ("07_calibration", "0.25"): "a setting: the smallest temperature of the sweep",
    ("07_calibration", "0.5"): "a constant: the AUROC of chance",
    ("07_calibration", "0.9"): "a setting: the confidence threshold counted",
    ("07_calibration", "0.1"): "an illustration: the MSP of a network that knew it did not know",
}

REMOVED = [
    r"\{glue(?::\w+)?\}`[^`]*`",  # glued values
    r"```.*?```",  # fenced blocks (code, directives' bodies are checked below)
    r"`[^`]*`",  # inline code: code, settings as code
    r"\$\$.*?\$\$",  # display math
    r"\$[^$\n]+\$",  # inline math
    r"\\\(.*?\\\)",
    r"\]\([^)]*\)",  # link targets
    r"<[^>]+>",  # HTML tags and their attributes
    r"https?://\S+",
    r"^\s*#+\s*[\d.]+",  # heading numbers
    r"(?i)\b(?:sections?|chapters?|figures?|fig\.|tables?|eq\.|equations?|§|lab|part|step|exercises?|"
    r"version|python|pytorch|torch|numpy|jupyter[- ]book|v)\s*\(?[\d.]+(?:\s*(?:,|and|or|to|-|–)\s*[\d.]+)*\)?",
    r"(?i)\btop-\d+",  # top-5 error
    r"\b\d+(?:\.\d+)*\.x\b",  # 1.x
    r"\b\d+\.\d+\.\d+\b",  # versions 2.13.0
    r"\b\d+\s*[×x]\s*\d+(?:\s*[×x]\s*\d+)*\b",  # shapes 8×8, 3x3x16
    r"(?i)(?:arXiv:\s*|doi:\s*)\S+",  # before years: identifiers hold years' digits
    r"\b(?:19|20)\d\d[a-z]?\b",  # years in citations
]

MEASURED = [
    r"\d*\.\d+(?:e[-+]?\d+)?",  # decimals
    r"\d+(?:\.\d+)?\s*(?:%|percent\b)",
    r"\b\d+\s+(?:of|out of)\s+(?:the\s+)?\d+\b",
    r"\b\d+(?:\.\d+)?\s*(?:[×x]|times)\s+(?:faster|slower|larger|smaller|more|less|fewer|higher|lower)\b",
    r"\b\d+(?:\.\d+)?\s+(?:runs?|seeds?|spikes?|minutes?|seconds?|hours?|s\b|ms\b|diverge\w*|failures?|"
    r"fail\w*|steps? (?:to|until|before)|epochs? (?:to|until|before)|errors?|mistakes?|wins?|flips?|"
    r"misclassified|correct)",
]


def prose(cell_source: str) -> str:
    text = cell_source
    for pattern in REMOVED:
        text = re.sub(pattern, " ", text, flags=re.DOTALL | re.MULTILINE)
    return text


def typed_numbers(notebook: Path) -> list[tuple[int, str, str]]:
    """(cell index, number as written, its context) for each measured-looking typed number."""
    found = []
    cells = json.loads(notebook.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        text = prose("".join(cell["source"]))
        for pattern in MEASURED:
            for match in re.finditer(pattern, text, flags=re.IGNORECASE):
                number = re.match(r"[\d.]+(?:e[-+]?\d+)?", match.group(0)).group(0)
                if not re.search(r"\d", number):
                    continue
                context = " ".join(text[max(0, match.start() - 60) : match.end() + 40].split())
                found.append((index, number, context))
    unique = {}
    for index, number, context in found:
        unique.setdefault((index, number, context), None)
    return list(unique)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_prose_types_no_measured_number(notebook):
    offending = [
        f"cell {index}: {number!r} in ...{context}..."
        for index, number, context in typed_numbers(notebook)
        if (notebook.stem, number) not in ALLOWED
    ]
    assert not offending, (
        f"{notebook.name}: measured-looking numbers typed into the prose; glue them from the run "
        "(myst-nb {glue:text}), or, for a published figure with its citation or an exact constant, "
        "add them to ALLOWED in tests/test_book_numbers.py with the reason:\n" + "\n".join(offending)
    )


def test_allowed_numbers_are_still_in_the_prose():
    stale = []
    for stem, number in ALLOWED:
        numbers = {found for _, found, _ in typed_numbers(REPO_ROOT / "book" / f"{stem}.ipynb")}
        if number not in numbers:
            stale.append(f"{stem}: {number}")
    assert not stale, "ALLOWED entries no longer in the prose (remove them):\n" + "\n".join(stale)


@pytest.mark.parametrize(
    ("markdown", "flagged"),
    [
        ("the loss fell to 0.37 after training", ["0.37"]),
        ("about 12 % of the runs", ["12"]),
        ("3 of 5 seeds diverged", ["3", "5"]),
        ("we saw 7 spikes", ["7"]),
        ("it took 13 minutes", ["13"]),
        ("one thread was 6x faster", ["6"]),
        ("the loss fell to {glue:text}`final_loss:.2f` after training", []),
        ("set `lr=0.1` and use $\\alpha = 0.5$ in section 3.5", []),
        ("## 2.3 Clipping\nan 8×8 image, see Figure 4.2 and [the paper](https://arxiv.org/abs/1512.03385)", []),
        ("(He et al., 2016) with PyTorch 2.13.0 or Jupyter Book 1.x", []),
    ],
)
def test_the_detector(markdown, flagged, tmp_path):
    notebook = tmp_path / "page.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": markdown}]}))
    assert [number for _, number, _ in typed_numbers(notebook)] == flagged
