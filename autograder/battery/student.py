"""The student's side of a hidden test: their namespace, and calls into it that name the case.

Hidden tests read the notebook's namespace through :class:`Student` and never bind, rebind or
delete a name in it. Where a graded function relies on another graded one (a training step on
``pgd``, a module on ``batch_norm``), :meth:`Student.lending` puts a correct version in place for
the duration of one call and then restores exactly what was there, so one mistake costs points
once.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import torch
from torch import nn

from autograder.battery.forbidden import lent_helpers

MISSING = object()


class Student:
    """Read access to a notebook's namespace (``globals()`` of the test cell)."""

    def __init__(self, namespace: MutableMapping[str, Any]):
        self.namespace = namespace

    def __getitem__(self, name: str) -> Any:
        if name not in self.namespace:
            raise AssertionError(f"`{name}` is not defined: run the cell that defines it, and keep its name")
        return self.namespace[name]

    def function(self, name: str) -> Callable:
        value = self[name]
        if not callable(value) or isinstance(value, type):
            raise AssertionError(f"`{name}` must be a function, got {type(value).__name__}")
        return value

    def module_class(self, name: str) -> type[nn.Module]:
        value = self[name]
        if getattr(value, "is_module_class", False):  # a class in the notebook's kernel (autograder.remote)
            return value
        if not (isinstance(value, type) and issubclass(value, nn.Module)):
            raise AssertionError(f"`{name}` must be a class derived from nn.Module, got {value!r}")
        return value

    @property
    def device(self) -> torch.device:
        """The notebook's ``device`` (the GPU when there is one), else the CPU."""
        device = self.namespace.get("device", "cpu")
        return torch.device(device) if isinstance(device, str | torch.device) else torch.device("cpu")

    @contextlib.contextmanager
    def lending(self, **replacements: Any) -> Iterator[None]:
        """Bind correct versions of other graded names while the block runs; restore the student's."""
        if hasattr(type(self.namespace), "lending"):  # the notebook's namespace in its kernel: lent per call there
            with self.namespace.lending(replacements), lent_helpers(*replacements.values()):
                yield
            return
        saved = {name: self.namespace.get(name, MISSING) for name in replacements}
        self.namespace.update(replacements)
        try:
            with lent_helpers(*replacements.values()):
                yield
        finally:
            for name, value in saved.items():
                if value is MISSING:
                    self.namespace.pop(name, None)
                else:
                    self.namespace[name] = value


def describe(value: Any) -> str:
    """A short description of an argument for a failure message: dtype, shape, device, layout."""
    if isinstance(value, torch.Tensor):
        notes = [str(value.dtype).removeprefix("torch."), str(tuple(value.shape)), f"on {value.device.type}"]
        if value.dim() > 1 and not value.is_contiguous():
            notes.append("non-contiguous")
        if value.requires_grad:
            notes.append("requires_grad")
        return "tensor " + " ".join(notes)
    if isinstance(value, nn.Module):
        return type(value).__name__ + (" (train mode)" if value.training else " (eval mode)")
    if isinstance(value, list | tuple) and len(value) > 4:
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, list | tuple):
        inner = ", ".join(describe(item) for item in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if inspect.isgenerator(value):
        return "a generator"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    return repr(value)


def case(name: str, *args: Any, **kwargs: Any) -> str:
    """``name(arg, ..., key=value)`` with every argument described."""
    parts = [describe(arg) for arg in args] + [f"{key}={describe(value)}" for key, value in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def call(label: str, function: Callable, *args: Any, contract: str = "", **kwargs: Any) -> Any:
    """Call the student's ``function``; an exception becomes an AssertionError that names the case."""
    try:
        return function(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - any error of the answer is reported, not raised
        line = f" The contract: {contract}" if contract else ""
        raise AssertionError(f"{label} raised {type(error).__name__}: {error}.{line}") from None


def call_each(function: Callable, argument_sets: list[tuple[tuple, dict]]) -> list[tuple[Any, Exception | None]]:
    """Call ``function`` once per ``(args, kwargs)``: ``(result, None)`` or ``(None, error)`` for each, in order.

    An answer in the student's kernel gets all the calls in one request (thousands of small calls,
    such as every short word for ``is_balanced``, would otherwise cost a round trip each).
    """
    if hasattr(type(function), "call_each"):
        return function.call_each(argument_sets)
    outcomes: list[tuple[Any, Exception | None]] = []
    for args, kwargs in argument_sets:
        try:
            outcomes.append((function(*args, **kwargs), None))
        except Exception as error:  # noqa: BLE001 - each call's own error, reported by the caller
            outcomes.append((None, error))
    return outcomes


def expect_raises(label: str, error: type[BaseException], function: Callable, *args: Any, **kwargs: Any) -> None:
    """The contract says this call raises ``error``."""
    try:
        function(*args, **kwargs)
    except error:
        return
    except Exception as other:  # noqa: BLE001
        raise AssertionError(
            f"{label} must raise {error.__name__}, but raised {type(other).__name__}: {other}"
        ) from None
    raise AssertionError(f"{label} must raise {error.__name__}")
