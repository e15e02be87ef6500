"""The feedback page's exporter: nbconvert's HTML without its second parse, templates compiled once."""

import re

import nbformat
import pytest

from autograder.feedback import COMPILED_TEMPLATES, NO_ALT_TEXT, FeedbackExporter, PageMarkup, warm_up

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<img src="a.png">', f'<img alt="{NO_ALT_TEXT}" src="a.png">'),
        ("<IMG\nsrc=a.png/>", f'<img alt="{NO_ALT_TEXT}"\nsrc=a.png/>'),
        ("<img/>", f'<img alt="{NO_ALT_TEXT}"/>'),
        ('<img src="a.png" alt="a plot">', '<img src="a.png" alt="a plot">'),
        ('<img alt = "" src="a.png">', '<img alt = "" src="a.png">'),
        ("<imgs src=a> <p>img</p>", "<imgs src=a> <p>img</p>"),
    ],
    ids=["plain", "upper case, no quotes", "bare", "has alt", "empty alt, spaces", "not an image"],
)
def test_images_without_alt_text_get_nbconverts_placeholder(markup, expected):
    page = PageMarkup(markup, features="html.parser")
    assert page.select("img:not([alt])") == [] and str(page) == expected


def feedback_page(notebook) -> str:
    from nbgrader.converters import GenerateFeedback

    resources = {"nbgrader": {"notebook": "lab", "score": 2.0, "max_score": 3.0, "late_penalty": 0}}
    return FeedbackExporter(config=GenerateFeedback().config).from_notebook_node(notebook, resources)[0]


def test_a_page_shows_code_outputs_and_images_with_alt_text():
    warm_up()
    assert COMPILED_TEMPLATES.compiled, "the templates are compiled once and kept"
    code = nbformat.v4.new_code_cell("x = 1 + 1\nprint(x)")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="2\n"),
        nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"}),
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("## Part 1"), code])
    page = feedback_page(notebook)
    assert "Part 1" in page and "(Score: 2.0 / 3.0)" in page and '<span class="mi">1</span>' in page
    images = re.findall(r"<img[^>]*>", page)
    assert len(images) == 1 and f'alt="{NO_ALT_TEXT}"' in images[0]
