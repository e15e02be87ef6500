"""Content-based proof that a published tree carries no solution and no hidden test.

The secrets are the lines of every solution region and every hidden-test region of the source
labs in ``solutions/``. A line counts once it is stripped of surrounding whitespace; lines
shorter than :data:`MIN_LINE_LENGTH`, lines that also occur in the released labs (what students
get anyway: a signature repeated in the solution, a shared import) and the few idioms the book
teaches in the same words (:data:`TAUGHT_IN_THE_BOOK`, each with its reason) are ignored. Every text file of
the published tree is then read as the lines a reader could see: a notebook's (or any JSON file's)
strings, an HTML page's raw lines and its text with the tags removed, every other file's lines.
No secret line may occur among them.

Lines cannot catch what a search index keeps, single words, so the secret *words* are checked
too: snake_case identifiers of at least :data:`MIN_WORD_LENGTH` characters that occur in a secret
line or in the hidden tests' shared code (``autograder/battery/``) and nowhere in the published
sources (``check_fgsm``, the battery's helper names) must not occur in the built pages, their
``_sources`` or the search index.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.paths import BATTERY_DIR, all_labs, released_notebook, source_notebook

MIN_LINE_LENGTH = 16
MIN_WORD_LENGTH = 8
REGIONS = (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"))
# Lines of solutions that the chapters also show, in the same words. Each is one step of a
# routine the chapter teaches (the lab asks for its own function with its own contract), or an
# idiom; none gives a graded answer away.
TAUGHT_IN_THE_BOOK = {
    "h = x.new_zeros(x.shape[0], self.hidden_size)": "h_0 = 0 in chapter 1's gated recurrence",
    "pre_activations.append(a)": "chapter 1 keeps a_t to show BPTT's terms (autograd computes them there)",
    "word.append(colour)": "one step of chapter 1's bracket-word generator",
    "variances.append(x.var().item())": "chapter 2 records activation variances layer by layer",
    "direction = -1.0 if targeted else 1.0": "chapter 6's one routine for FGSM, PGD and MIM",
    "if random_start:": "chapter 6's one routine for FGSM, PGD and MIM",
    "velocity = torch.zeros_like(x)": "chapter 6's one routine for FGSM, PGD and MIM",
    "x_adv = x.clone()": "chapter 6's one routine for FGSM, PGD and MIM",
    "optimizer.step(closure)": "the L-BFGS idiom; chapter 7 fits its temperature with it",
    "was_training = model.training": "saving a model's mode, as dlcourse.train.evaluate does",
    "model.train(was_training)": "restoring a model's mode, as dlcourse.train.evaluate does",
}
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".woff", ".woff2", ".ttf", ".eot", ".otf", ".pdf"}
WORD = re.compile(r"[a-z_][a-z0-9_]+")
TAG = re.compile(r"<[^>]*>")


def region_lines(source: str) -> Iterator[str]:
    """The lines of ``source`` inside solution and hidden-test regions, markers included."""
    inside = None
    for line in source.splitlines():
        stripped = line.strip()
        if inside is None:
            inside = next((end for begin, end in REGIONS if stripped.startswith(begin)), None)
        if inside is not None:
            yield stripped
            if stripped.startswith(inside):
                inside = None


def is_identifier_like(word: str) -> bool:
    """A snake_case name of at least MIN_WORD_LENGTH characters (English words of comments are not)."""
    return len(word) >= MIN_WORD_LENGTH and "_" in word.strip("_")


def notebook_strings(value) -> Iterator[str]:
    """Every string inside a parsed JSON value (a notebook's sources, outputs, metadata)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from notebook_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from notebook_strings(item)


def stripped_lines(texts: Iterable[str]) -> set[str]:
    return {line.strip() for text in texts for line in text.splitlines()}


@dataclass
class Secrets:
    lines: set[str]
    words: set[str] = field(default_factory=set)

    @classmethod
    def of_course(cls, labs: list[str] | None = None) -> Secrets:
        """The secret lines of the course's source labs and battery, less what the releases show."""
        labs = labs or all_labs()
        secret: set[str] = set()
        released: set[str] = set()
        for lab in labs:
            for cell in nbformat.read(source_notebook(lab), as_version=4).cells:
                secret.update(region_lines(cell.source))
            release = nbformat.read(released_notebook(lab), as_version=4)
            released |= stripped_lines(cell.source for cell in release.cells)
        lines = {line for line in secret - released - set(TAUGHT_IN_THE_BOOK) if len(line) >= MIN_LINE_LENGTH}
        battery = [path.read_text() for path in sorted(BATTERY_DIR.rglob("*.py"))]
        return cls(lines, {word for text in [*lines, *battery] for word in WORD.findall(text.lower())})

    def words_absent_from(self, published_sources: Iterable[str]) -> Secrets:
        """Keep as secret words only the long identifiers that no published source uses."""
        public = {word for text in published_sources for word in WORD.findall(text.lower())}
        return Secrets(self.lines, {word for word in self.words - public if is_identifier_like(word)})


def readable_texts(path: Path) -> list[str]:
    """What a reader of ``path`` could see, as texts: see the module docstring."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return []
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return []
    text = data.decode("utf-8", errors="replace")
    texts = [text]
    if path.suffix in {".ipynb", ".json"}:
        try:
            texts += list(notebook_strings(json.loads(text)))
        except ValueError:
            pass
    if path.suffix in {".html", ".htm", ".xml", ".svg"}:
        texts.append(html.unescape(TAG.sub("", text)))
    return texts


@dataclass
class LeakReport:
    secret_lines: int
    secret_words: int
    files_scanned: int = 0
    lines_compared: int = 0
    leaks: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.secret_lines} secret lines and {self.secret_words} secret words compared with "
            f"{self.lines_compared} distinct lines of {self.files_scanned} files: {len(self.leaks)} leaks"
        )


def scan(root: Path, secrets: Secrets, word_paths: Iterable[Path] = ()) -> LeakReport:
    """Look for every secret line in every file under ``root`` and for every secret word in ``word_paths``."""
    report = LeakReport(len(secrets.lines), len(secrets.words))
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts):
        texts = readable_texts(path)
        if not texts:
            continue
        lines = stripped_lines(texts)
        report.files_scanned += 1
        report.lines_compared += len(lines)
        for line in sorted(lines & secrets.lines):
            report.leaks.append(f"{path.relative_to(root)}: line {line[:100]!r}")
    for path in sorted(word_paths):
        found = {word for text in readable_texts(path) for word in WORD.findall(text.lower())} & secrets.words
        for word in sorted(found):
            report.leaks.append(f"{path.relative_to(root)}: word {word!r}")
    return report
