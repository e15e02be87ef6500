"""What the grader runs inside a student's kernel, between the notebook's cells.

Student code runs in the same kernel as the tests, so the cheap ways to fool a test
are closed here: :func:`install` runs before the first cell, :func:`checkpoint` before
every code cell and after the last. Together they

- put back comparison helpers a student replaced (``torch.allclose``, ``numpy.isclose``,
  ``math.isclose``, the course's ``dlcourse.checks`` helpers, ``torch.Tensor.__eq__``, a
  few builtins) and names in the notebook that were bound to them;
- look for objects that compare equal to anything, and classes that override ``__eq__``;
- empty IPython's input history and keep test cells out of it and out of ``linecache``,
  so a function cannot read the test that calls it;
- remove nbgrader's environment variables and note any lookup of them;
- refuse (and note) writes outside the working folder and reads of the course's
  gradebook, sources and other students' files, with an audit hook that student code
  cannot remove.

:mod:`autograder.execute` sends this file's source to the kernel (the kernel need not
import the autograder); every finding is a sentence for ``problems.csv``, printed by
:func:`checkpoint` as one JSON line.
"""

from __future__ import annotations

import builtins
import importlib
import json
import linecache
import os
import sys

PROTECTED: dict[str, tuple[str, ...]] = {
    "builtins": (
        "print",
        "abs",
        "all",
        "any",
        "bool",
        "float",
        "int",
        "isinstance",
        "len",
        "max",
        "min",
        "round",
        "sum",
    ),
    "math": ("isclose", "isfinite", "isnan"),
    "numpy": ("allclose", "isclose", "array_equal", "all", "any", "abs", "asarray", "isfinite"),
    "numpy.testing": ("assert_allclose", "assert_array_equal", "assert_equal"),
    "torch": ("allclose", "isclose", "equal", "all", "any", "abs", "as_tensor", "is_tensor", "isfinite"),
    "torch.testing": ("assert_close",),
    "torch.Tensor": ("__eq__", "__ne__", "allclose", "equal", "all", "any", "item", "tolist", "__bool__", "abs"),
    "dlcourse.checks": ("as_cpu_float64", "is_close", "check_close", "check_true", "check_attack_contract", "quiet"),
    "dlcourse.checks.core": (
        "as_cpu_float64",
        "is_close",
        "check_close",
        "check_true",
        "quiet",
        "run_test",
        "time_limit",
    ),
    "dlcourse.checks.attacks": ("check_attack_contract", "ModeRecorder"),
    "dlcourse.checks.recurrent": ("check_uniform_init", "check_recurrent_cell"),
    "dlcourse.checks.init": ("check_init", "check_init_statistics"),
    "dlcourse.checks.batchnorm": ("check_batch_norm", "check_batch_norm_module", "BatchNormCase"),
    # the hidden tests' shared battery, which hidden test cells import inside the kernel
    "autograder.battery.compare": ("assert_close", "assert_equal", "check_form", "require", "within", "as_float64"),
    "autograder.battery.snapshot": ("Snapshot", "same_values"),
    "autograder.battery.student": ("Student", "call", "expect_raises"),
    "autograder.battery.devices": ("run_on_simulated_gpu",),
    "autograder.battery.forbidden": ("forbidden_calls", "require_not_called"),
}
MISSING = object()
_state: dict = {}


def resolve(owner_path: str):
    """The module, or class inside a module, that ``owner_path`` names; None when not installed."""
    try:
        return importlib.import_module(owner_path)
    except ImportError:
        module_path, _, attribute = owner_path.rpartition(".")
        try:
            return getattr(importlib.import_module(module_path), attribute, None)
        except ImportError:
            return None


def current(owner, name: str):
    if isinstance(owner, type):
        return owner.__dict__.get(name, MISSING)
    return getattr(owner, name, MISSING)


def snapshot() -> dict:
    originals = {}
    for owner_path, names in PROTECTED.items():
        owner = resolve(owner_path)
        if owner is not None:
            originals[owner_path] = (owner, {name: current(owner, name) for name in names})
    return originals


def note(message: str) -> None:
    if message not in _state["seen"]:
        _state["seen"].add(message)
        _state["new"].append(message)


class WatchedEnviron(type(os.environ)):
    """``os.environ`` that notes lookups of the grader's variables."""

    def __getitem__(self, key):
        if isinstance(key, str) and key.startswith("NBGRADER"):
            note(f"looked up the environment variable {key} (grader detection; check by hand)")
        return super().__getitem__(key)


def within(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def called_from_notebook() -> bool:
    """Whether the code two frames up (the caller of a watched method) is the notebook's own."""
    return sys._getframe(2).f_globals.get("__name__") == "__main__"


class WatchedHistory(list):
    """IPython's input history, emptied; the notebook's code reading it is noted."""

    def __getitem__(self, index):
        if called_from_notebook():
            note("read IPython's input history (In/_ih), where test code could be found; check by hand")
        return super().__getitem__(index)

    def __iter__(self):
        if called_from_notebook():
            note("read IPython's input history (In/_ih), where test code could be found; check by hand")
        return super().__iter__()


WRITE_EVENTS = {
    "os.remove",
    "os.rename",
    "os.replace",
    "os.mkdir",
    "os.rmdir",
    "os.truncate",
    "os.link",
    "os.symlink",
    "os.chmod",
    "os.utime",
    "shutil.rmtree",
    "shutil.move",
    "shutil.copyfile",
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def real_path(value) -> str | None:
    if not isinstance(value, str | bytes | os.PathLike):
        return None  # a file descriptor, or nothing
    try:
        return os.path.realpath(os.fsdecode(value))
    except (TypeError, ValueError):
        return None


def audit(event: str, args: tuple) -> None:
    """Refuse writes outside the allowed folders and reads of the grader's files."""
    if event == "open" and len(args) == 3:
        path, mode, flags = real_path(args[0]), args[1], args[2]
        writing = bool(flags & WRITE_FLAGS) if isinstance(flags, int) else any(c in str(mode) for c in "wax+")
        paths = [path] if path else []
    elif event in WRITE_EVENTS:
        paths, writing = [p for p in map(real_path, args[:2]) if p], True
    else:
        return
    for path in paths:
        if writing and not within(path, _state["writable"]):
            note(f"tried to write {path}, outside its working folder (refused)")
            raise PermissionError(f"the grader does not allow writing {path}")
        if within(path, _state["unreadable"]) and not within(path, _state["writable"] + _state["readable"]):
            note(f"tried to read {path}, a file of the grader or of another student (refused)")
            raise PermissionError(f"the grader does not allow reading {path}")


def hide_history() -> None:
    """Empty the input history and keep later cells out of it."""
    shell = get_shell()
    if shell is None:
        return
    manager = shell.history_manager
    for name in ("input_hist_parsed", "input_hist_raw"):
        setattr(manager, name, WatchedHistory())
    shell.user_ns["In"] = shell.user_ns["_ih"] = manager.input_hist_parsed
    for name in [name for name in shell.user_ns if is_history_name(name)]:
        shell.user_ns.pop(name, None)
    manager.store_inputs = lambda *args, **kwargs: None


def cache_blank_source(shell, blank: bool) -> None:
    """While ``blank``, ``linecache`` gets empty lines for new cells: a traceback still works,
    but a function cannot read the source of the test cell that calls it."""
    compiler = shell.compile
    if "cache" not in _state:
        _state["cache"] = compiler.cache
    if not blank:
        compiler.cache = _state["cache"]
        return

    def cache(transformed_code, number=0, raw_code=None):
        name = compiler.get_code_name(raw_code, transformed_code, number)
        getattr(compiler, "_filename_map", {})[name] = number
        lines = ["\n"] * len(transformed_code.splitlines())
        linecache.cache[name] = (len(lines), None, lines, name)
        return name

    compiler.cache = cache


def is_history_name(name: str) -> bool:
    """``_i``, ``_ii``, ``_iii`` and ``_i<n>``: the sources of earlier cells."""
    return name in ("_i", "_ii", "_iii") or (name.startswith("_i") and name[2:].isdigit())


def get_shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def install(writable: list[str], unreadable: list[str], readable: list[str] = ()) -> None:
    """Start guarding: called once, before the notebook's first cell.

    ``readable`` lists exceptions inside the unreadable folders: the code the hidden tests import.
    """
    _state.update(seen=set(), new=[], bound={}, writable=[os.path.realpath(p) for p in writable])
    _state["unreadable"] = [os.path.realpath(p) for p in unreadable]
    _state["readable"] = [os.path.realpath(p) for p in readable]
    _state["originals"] = snapshot()
    sys.dont_write_bytecode = True
    for key in [key for key in os.environ if key.startswith("NBGRADER")]:
        del os.environ[key]
    os.environ.__class__ = WatchedEnviron
    hide_history()
    sys.addaudithook(audit)


def restore_protected() -> None:
    for owner_path, (owner, originals) in _state["originals"].items():
        for name, original in originals.items():
            if current(owner, name) is original:
                continue
            if original is MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
            note(f"replaced {owner_path}.{name} (put back before the tests)")


def restore_names(namespace: dict) -> None:
    """Put back notebook names once bound to a protected helper or module, and remember new ones."""
    protected = {id(value) for _, originals in _state["originals"].values() for value in originals.values()}
    protected |= {id(owner) for owner, _ in _state["originals"].values()}
    bound = _state["bound"]
    for name, original in list(bound.items()):
        if namespace.get(name, MISSING) is not original:
            namespace[name] = original
            note(f"rebound the name {name} (put back before the tests)")
    for name, value in list(namespace.items()):
        if not name.startswith("_") and id(value) in protected:
            bound.setdefault(name, value)


class _Probe:
    """A fresh object nothing legitimate compares equal to."""


def look_for_always_equal(namespace: dict) -> None:
    for name, value in list(namespace.items()):
        if name.startswith("_") or isinstance(value, type(sys)):
            continue
        if isinstance(value, type):
            if (
                value.__module__ == "__main__"
                and "__eq__" in value.__dict__
                and "__dataclass_fields__" not in value.__dict__
            ):
                note(f"defines class {name} with its own __eq__; check by hand")
            continue
        try:
            equal = value == _Probe()
        except Exception:
            continue
        if equal is True:
            note(f"{name} compares equal to anything (check by hand)")


def checkpoint(test: bool) -> None:
    """Re-arm the guard before a cell (``test``: a test cell); print new findings as a JSON list."""
    shell = get_shell()
    namespace = shell.user_ns if shell is not None else {}
    restore_protected()
    restore_names(namespace)
    look_for_always_equal(namespace)
    if shell is not None:
        hide_history()
        cache_blank_source(shell, blank=test)
    new, _state["new"] = _state["new"], []
    builtins.print(json.dumps(new))
