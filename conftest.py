"""Test-suite settings shared by unit tests and the notebooks nbval executes."""

import os

# Notebooks (solutions, chapters) run in quick mode under test; kernels inherit this.
os.environ["DLCOURSE_QUICK"] = "1"
# One thread per kernel, as when grading: small models gain nothing from more, and spinning
# threads slow everything down badly when another process shares the two cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
