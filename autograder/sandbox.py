"""The box a student's kernel runs in: bubblewrap, with only what the notebook needs.

Inside the box the kernel sees the system's programs and libraries, the Python
installation and virtual environment (read-only), the course's public helper package
``dlcourse`` (read-only) and the few folders a :class:`Sandbox` names: its own working
folder and home (writable), and the hidden tests' shared code where it must still run in
the kernel. It does not see the course repository, the solutions, the tests, git
objects, gradebooks, the output folder or other students' folders, because they are
not there. It has no network (a namespace with only loopback), no environment beyond
what :func:`kernel_environment` gives it, and a PID namespace of its own, so every
process the notebook started dies with the kernel.

The kernel talks to the grader through Unix sockets (ZeroMQ's IPC transport) in a
folder shared with the box, since the box has no network.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import List, Unicode

INSTALL_HINT = "sudo apt-get install bubblewrap"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = (  # what programs read from /etc; nothing secret
    "/etc/alternatives",
    "/etc/fonts",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/matplotlibrc",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot make namespaces here."""


def python_folders() -> list[Path]:
    """The interpreter's installation and the virtual environment (read-only in the box)."""
    folders = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(sys.executable).resolve().parent}
    return sorted(folders)


def package_folder(name: str) -> Path:
    """Where an importable package's files are (for editable installs: the source tree)."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SandboxUnavailable(f"package {name} not found")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def kernel_environment(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """All the environment a student's kernel gets: no secrets, no grader variables."""
    environment = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "MPLCONFIGDIR": str(home / ".config" / "matplotlib"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TORCHINDUCTOR_CACHE_DIR": str(home / ".cache" / "torchinductor"),
        "TRITON_CACHE_DIR": str(home / ".cache" / "triton"),
        "PYTHONNOUSERSITE": "1",
    }
    environment.update(extra)
    return environment


@dataclass
class Sandbox:
    """A bubblewrap command line that runs a program with only the listed folders visible."""

    writable: list[Path]  # bound read-write at the same path
    readable: list[Path] = field(default_factory=list)  # bound read-only at the same path
    environment: dict[str, str] = field(default_factory=dict)  # the program's whole environment
    executable: str = "bwrap"

    def prefix(self) -> list[str]:
        """The arguments that go before the program's own command."""
        args = [
            self.executable,
            "--unshare-all",  # no network, own PID, IPC, UTS and user namespaces
            "--die-with-parent",
            "--hostname",
            "grader",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
        ]
        for path in SYSTEM:
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in SYSTEM_FILES:
            args += ["--ro-bind-try", path, path]
        for device in sorted(glob.glob("/dev/nvidia*")):  # a CUDA grader's GPU
            args += ["--dev-bind", device, device]
        if glob.glob("/dev/nvidia*"):
            args += ["--ro-bind", "/sys", "/sys"]
        for path in [*python_folders(), *self.readable]:
            args += ["--ro-bind", str(path), str(path)]
        for path in self.writable:
            args += ["--bind", str(path), str(path)]
        args += ["--clearenv"]
        for name, value in sorted(self.environment.items()):
            args += ["--setenv", name, value]
        return args

    def run(self, command: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run ``command`` in the box (for checks and tests)."""
        return subprocess.run([*self.prefix(), *command], **kwargs)


def check_available(executable: str = "bwrap") -> None:
    """Raise SandboxUnavailable with the one command to run when bubblewrap cannot box a process here."""
    found = shutil.which(executable)
    if found is None:
        raise SandboxUnavailable(
            f"bubblewrap ({executable}) is not installed: run `{INSTALL_HINT}` "
            "(or grade with --no-sandbox on a machine you trust, reported in report.html)"
        )
    probe = Sandbox(writable=[], executable=found).run(["/bin/true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot create namespaces here ({probe.stderr.strip()[:200]}); enable unprivileged "
            "user namespaces (sysctl kernel.unprivileged_userns_clone=1) or grade with --no-sandbox"
        )


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside :class:`Sandbox` (an empty ``sandbox``: unboxed)."""

    sandbox = List(Unicode(), help="the bubblewrap prefix of the kernel's command").tag(config=True)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return [*self.sandbox, *super().format_kernel_cmd(extra_arguments)]

    @property
    def kernel_spec(self):
        """The kernel's spec, interrupted by a message when boxed.

        A signal goes to the kernel's whole process group, bubblewrap's own processes
        included, and SIGINT ends bubblewrap and with it the kernel; a message reaches
        only the kernel, which then interrupts itself.
        """
        spec = super().kernel_spec
        if spec is not None and self.sandbox:
            spec.interrupt_mode = "message"
        return spec
