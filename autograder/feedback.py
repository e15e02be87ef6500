"""Feedback that students may see: outcomes and messages, never hidden test source."""

from __future__ import annotations

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
