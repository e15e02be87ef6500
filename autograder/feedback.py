"""Feedback that students may see: outcomes and messages, never hidden test source."""

from __future__ import annotations

import re

import nbformat
from jinja2 import BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters import html as nbconvert_html
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden test regions from test cells and cut their tracebacks to the message.

    A traceback quotes the source lines around the failing assertion, which would
    reveal the hidden tests; the exception's type and message are kept, and the
    course writes those messages for the student to act on.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type == "code" and utils.is_grade(cell):
            for output in cell.outputs:
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


NO_ALT_TEXT = "No description has been provided for this image"  # nbconvert's words
IMAGE_WITHOUT_ALT = re.compile(r"<img(?![^>]*\balt\s*=)(?=[\s/>])", re.IGNORECASE)


class PageMarkup:
    """Stands in for BeautifulSoup in nbconvert's HTML exporter, which parses every page it writes to give
    images without alt text a placeholder (done here on the text) and to make JupyterLab cells focusable (the
    feedback template is the classic one: it has none). Parsing took half of a feedback page's time."""

    def __init__(self, markup: str, features: str | None = None):
        self.markup = markup

    def select(self, selector: str) -> list:
        return []

    def __str__(self) -> str:
        return IMAGE_WITHOUT_ALT.sub(f'<img alt="{NO_ALT_TEXT}"', self.markup)


class CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates kept in memory by the process (a worker inherits the fork server's), keyed by
    their source's checksum, so a new exporter does not compile its templates again."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter, writing the page without parsing it again (see :class:`PageMarkup`), with its
    templates compiled once per process (:class:`CompiledTemplates`)."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = COMPILED_TEMPLATES
        return environment

    def from_notebook_node(self, nb, resources=None, **kw):
        parser, nbconvert_html.BeautifulSoup = nbconvert_html.BeautifulSoup, PageMarkup
        try:
            return super().from_notebook_node(nb, resources, **kw)
        finally:
            nbconvert_html.BeautifulSoup = parser


def warm_up() -> None:
    """Write one small feedback page, so that a process forked after this starts with the feedback templates
    compiled and the Python lexer's expressions built (about 0.2 s of each notebook's feedback otherwise)."""
    from nbgrader.converters import GenerateFeedback

    converter = GenerateFeedback()  # its configuration: the feedback template and where it lives
    exporter = FeedbackExporter(config=converter.config)
    code = nbformat.v4.new_code_cell("def f(x: int) -> float:\n    return 1.5 * x  # a comment\nprint(f(2))")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="3.0\n")]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A $x^2$ title"), code])
    notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    grades = {"notebook": "warm-up", "score": 1.0, "max_score": 1.0, "late_penalty": 0}
    exporter.from_notebook_node(notebook, {"nbgrader": grades})
