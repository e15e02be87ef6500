"""Test-suite settings shared by unit tests and the notebooks nbval executes."""

import os

# Notebooks (solutions, chapters) run in quick mode under test; kernels inherit this.
os.environ["DLCOURSE_QUICK"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
