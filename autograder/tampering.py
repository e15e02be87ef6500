"""Checks on the notebook itself, before and after it runs (the kernel side is kernel_guard).

Before: student code that reaches for the grader's internals (frames, history, the
gradebook, nbgrader's variables) is flagged for the instructor to read; nothing is
penalised on a pattern alone. After: any output that shows a line of hidden test code
is removed before the feedback is written, and flagged.
"""

from __future__ import annotations

import re

from nbformat.notebooknode import NotebookNode

from autograder.paths import BATTERY_DIR
from autograder.restore import HIDDEN_BEGIN, HIDDEN_END, is_test

BATTERY_IMPORT = re.compile(r"from autograder\.battery\.(\w+) import")

SUSPICIOUS = {
    "reads the caller's frame or source": re.compile(
        r"sys\._getframe|\binspect\.(stack|currentframe|getouterframes|getsource|getframeinfo)|\blinecache\b|\.f_back\b"
        r"|\.f_globals\b|\.f_locals\b"
    ),
    "reads IPython's history": re.compile(r"history_manager|\b_ih\b|\bIn\s*\[|\b_i\d+\b|%history"),
    "looks for nbgrader": re.compile(r"NBGRADER|nbgrader|gradebook"),
    "reaches for the grader's code (the hidden tests' battery or agent)": re.compile(r"\bautograder\b|_dlcourse_"),
    "changes how later cells run (IPython transformers, events, display hook)": re.compile(
        r"input_transformers|ast_transformers|\bevents\.register|register_magic|displayhook|excepthook"
    ),
    "replaces an imported module": re.compile(r"sys\.modules\[[^\]]+\]\s*=[^=]|sys\.modules\.update"),
    "installs an audit hook or trace function": re.compile(r"addaudithook|settrace|setprofile"),
    "loads native code or raw system calls": re.compile(r"\bctypes\b|\bcffi\b|\bos\.(open|write|dup2?|fork)\("),
    "starts other programs or opens network connections": re.compile(
        r"\bsubprocess\b|\bos\.(system|popen|exec\w*|spawn\w*|posix_spawn)\b|\bsocket\b|\burllib\b|\brequests\."
    ),
    "replaces a comparison or assertion helper": re.compile(
        r"\b(torch|np|numpy|math|checks|dlcourse\.checks|builtins)\.(allclose|isclose|equal|array_equal|testing|"
        r"check_close|check_true|is_close|isinstance|abs|all|any)\s*=[^=]"
        r"|\btorch\.Tensor\.__(eq|ne|bool)__\s*=[^=]|\bsetattr\(\s*(torch|np|numpy|math|builtins|checks)\b"
    ),
}
REMOVED = "[output removed by the grader: it showed hidden test code]\n"


def suspicious_code(nb: NotebookNode) -> list[str]:
    """One sentence per kind of grader-reaching code found in the student's own cells."""
    found = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_test(cell):
            continue
        for what, pattern in SUSPICIOUS.items():
            if what not in found and (match := pattern.search(cell.source)):
                found[what] = f"code {what} (cell {index}: {match.group(0).strip()!r}); check by hand"
    return list(found.values())


def hidden_test_lines(source_nb: NotebookNode, release_nb: NotebookNode, shortest: int = 20) -> set[str]:
    """Lines only the hidden tests have (their regions and the battery modules they import): long
    enough to be telling, not in the release, not in an answer, not a comment or a bare message."""
    public = "\n".join(cell.source for cell in release_nb.cells)
    public += "\n".join(cell.source for cell in source_nb.cells if cell.metadata.get("nbgrader", {}).get("solution"))
    regions = [region for cell in source_nb.cells for region in hidden_regions(cell.source)]
    modules = sorted({name for region in regions for name in BATTERY_IMPORT.findall(region)})
    texts = regions + [(BATTERY_DIR / f"{module}.py").read_text() for module in modules]
    return {
        stripped
        for text in texts
        for stripped in (line.strip() for line in text.splitlines())
        if len(stripped) >= shortest and not stripped.startswith(("#", '"', "'", 'f"')) and stripped not in public
    }


def hidden_regions(source: str) -> list[str]:
    regions, lines = [], None
    for line in source.splitlines():
        if line.strip() == HIDDEN_BEGIN:
            lines = []
        elif line.strip() == HIDDEN_END and lines is not None:
            regions.append("\n".join(lines))
            lines = None
        elif lines is not None:
            lines.append(line)
    return regions


def output_text(output: NotebookNode) -> str:
    if output.output_type == "stream":
        return output.get("text", "")
    if output.output_type == "error":
        return output.get("evalue", "")  # tracebacks of test cells are cut to this message in the feedback
    return "\n".join(str(value) for value in output.get("data", {}).values())


def remove_hidden_test_leaks(nb: NotebookNode, secret_lines: set[str]) -> list[str]:
    """Replace outputs quoting hidden test lines; return a note when something was removed."""
    leaked_cells = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for position, output in enumerate(cell.outputs):
            # a quoted line of code stands on a line of its own; a message that merely ends like
            # one ("... return x_adv.detach()") is not a leak
            if any(line.strip() in secret_lines for line in output_text(output).splitlines()):
                cell.outputs[position] = NotebookNode(output_type="stream", name="stdout", text=REMOVED)
                leaked_cells.append(index)
    if not leaked_cells:
        return []
    cells = ", ".join(str(index) for index in sorted(set(leaked_cells)))
    return [f"output showed hidden test code (cells {cells}; removed from the feedback); check by hand"]
