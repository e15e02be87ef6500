"""The box student kernels run in: what a program inside it can and cannot reach."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autograder.paths import REPO_ROOT, source_notebook
from autograder.sandbox import Sandbox, check_available, kernel_environment, package_folder


@pytest.fixture
def box(tmp_path) -> Sandbox:
    work, home = tmp_path / "work", tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    return Sandbox(
        writable=[work, home], readable=[package_folder("dlcourse")], environment=kernel_environment(home, {})
    )


def run_python(box: Sandbox, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return box.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)


def test_bubblewrap_is_available():
    check_available()


def test_python_and_the_course_package_work_inside(box):
    result = run_python(box, "import torch, dlcourse; print(torch.ones(2).sum().item())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"


COURSE_FILES = {
    "solution": source_notebook("lab00_setup"),
    "git": REPO_ROOT / ".git" / "HEAD",
    "grader": REPO_ROOT / "autograder" / "grade.py",
    "tests": Path(__file__),
}


@pytest.mark.parametrize("path", COURSE_FILES.values(), ids=COURSE_FILES.keys())
def test_the_course_repository_is_not_there(box, path):
    result = run_python(box, f"open({str(path)!r}).read()")
    assert result.returncode != 0
    assert "FileNotFoundError" in result.stderr or "PermissionError" in result.stderr


def test_writes_land_only_in_the_writable_folders(box, tmp_path):
    outside = tmp_path / "outside.txt"
    code = f"""
    import pathlib
    pathlib.Path({str(box.writable[0] / "inside.txt")!r}).write_text("ok")
    for path in ({str(outside)!r}, "/usr/evil.txt", {str(REPO_ROOT / "evil.txt")!r}):
        try:
            pathlib.Path(path).write_text("escaped")
            print("WROTE", path)
        except OSError:
            pass
    """
    result = run_python(box, code)
    assert result.returncode == 0, result.stderr
    assert "WROTE /usr/evil.txt" not in result.stdout  # read-only; the others land in the box's own tmpfs
    assert (box.writable[0] / "inside.txt").read_text() == "ok"
    assert not outside.exists() and not (REPO_ROOT / "evil.txt").exists()


def test_no_network(box):
    code = """
    import socket
    try:
        socket.create_connection(("1.1.1.1", 53), timeout=3)
        print("CONNECTED")
    except OSError as error:
        print("refused", error)
    """
    result = run_python(box, code)
    assert "refused" in result.stdout and "CONNECTED" not in result.stdout


def test_only_the_given_environment(box, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "hunter2")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    result = run_python(box, "import os; print(sorted(os.environ))")
    names = set(eval(result.stdout))
    assert "GRADER_SECRET" not in names and "NBGRADER_EXECUTION" not in names
    assert names <= set(box.environment) | {"PWD"}


def test_processes_left_behind_die_with_the_box(box, tmp_path):
    marker = box.writable[0] / "late.txt"
    code = f"""
    import subprocess
    subprocess.Popen(["sh", "-c", "sleep 2; echo late > {marker}"], start_new_session=True)
    """
    result = run_python(box, code)
    assert result.returncode == 0, result.stderr
    time.sleep(3)
    assert not marker.exists()


def test_other_processes_are_invisible(box):
    result = run_python(box, "import os; print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))")
    assert max(eval(result.stdout)) < 10  # only the box's own few processes


def test_the_process_cap_counts_this_users_threads():
    from autograder.worker import PROCESS_ALLOWANCE, threads_of_this_user

    assert threads_of_this_user() >= 1 and PROCESS_ALLOWANCE >= 256


def test_a_fork_bomb_stops_at_the_process_cap():
    """The worker's cap (RLIMIT_NPROC, or for a root grader a pids cgroup of its own) stops a fork bomb."""
    code = textwrap.dedent(
        """
        import os, subprocess, sys
        from autograder.worker import limit_processes, release_process_group

        group = limit_processes(allowance=20)
        if group is None and os.getuid() == 0:
            print("no cap")
            sys.exit(0)
        started = []
        try:
            for _ in range(200):
                started.append(subprocess.Popen(["sleep", "5"]))
        except OSError:
            pass
        for process in started:
            process.kill()
            process.wait()
        release_process_group(group)
        print(len(started))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "no cap":
        pytest.skip("a root grader without a writable pids cgroup (the PID namespace and memory limit still hold)")
    assert int(result.stdout) < 25
