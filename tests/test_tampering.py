"""The notebook-side tampering checks, without grading anything."""

import nbformat

from autograder.tampering import REMOVED, hidden_test_lines, remove_hidden_test_leaks, suspicious_code

SOURCE = """# Test f (1 point)
check(f(1) == 2)
### BEGIN HIDDEN TESTS
expected = secret_reference_value(3, 4)
return x_adv.detach()
### END HIDDEN TESTS
"""


def notebook_with_output(text: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("f(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nbformat.v4.new_notebook(cells=[cell])


def secrets() -> set[str]:
    source = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SOURCE)])
    release = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# Test f (1 point)\ncheck(f(1) == 2)")])
    return hidden_test_lines(source, release)


def test_hidden_lines_exclude_what_the_release_shows():
    assert secrets() == {"expected = secret_reference_value(3, 4)", "return x_adv.detach()"}


def test_a_quoted_hidden_line_is_removed_and_flagged():
    nb = notebook_with_output("caller source:\n    expected = secret_reference_value(3, 4)\n")
    notes = remove_hidden_test_leaks(nb, secrets())
    assert notes and "hidden test code" in notes[0]
    assert nb.cells[0].outputs[0].text == REMOVED


def test_a_message_ending_like_a_hidden_line_is_not_a_leak():
    nb = notebook_with_output("fgsm: the result still requires grad; return x_adv.detach()\n")
    assert remove_hidden_test_leaks(nb, secrets()) == []
    assert "requires grad" in nb.cells[0].outputs[0].text


def test_reaching_for_the_grader_is_flagged_but_ordinary_code_is_not():
    cells = [nbformat.v4.new_code_cell("import sys\nframe = sys._getframe(1)"), nbformat.v4.new_code_cell("x = 1")]
    flagged = suspicious_code(nbformat.v4.new_notebook(cells=cells))
    assert len(flagged) == 1 and "caller's frame" in flagged[0]
    ordinary = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y = torch.allclose(a, b)")])
    assert suspicious_code(ordinary) == []
