"""The fork server that grading workers come from, started as early as a command allows.

The server imports :mod:`autograder.preload` (PyTorch, the battery, nbgrader: about 3.5 s on
2 cores) in a process of its own. Started before the ``grade`` command imports the grader, it
does that while the parent imports its own modules and makes the course template, instead of
after them. PyTorch fixes its thread count when it is imported, so the server starts with one
thread per process; each worker takes the rest of the grading environment from its request.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FORK_SERVER = multiprocessing.get_context("forkserver")
FORK_SERVER.set_forkserver_preload(["autograder.preload"])


def can_fork() -> bool:
    """Whether workers can come from the fork server (not from a daemonic process, a Dask worker)."""
    return not multiprocessing.current_process().daemon


def start_fork_server() -> None:
    """Start the server, with ONE_THREAD in its environment (and this process's); once started, nothing."""
    if can_fork():
        os.environ.update(ONE_THREAD)
        multiprocessing.forkserver.ensure_running()
