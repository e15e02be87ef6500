"""Comparisons for hidden tests: values against an oracle in float64, and the exact form of a result.

Every comparison checks the form the contract promises (a tensor rather than a number, its shape,
dtype and device) before the values, and compares values in float64 on the CPU: a Python number
is converted to float64 exactly, never through float32, so a tolerance of 1e-12 means 1e-12.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from autograder.battery.devices import run_on_simulated_gpu

_open_groups: list[list[int]] = []


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    """Count the checks made inside the block; print ``title: N checks OK`` when none failed."""
    counter = [0]
    _open_groups.append(counter)
    try:
        yield
    finally:
        _open_groups.remove(counter)
    print(f"{title}: {counter[0]} checks OK")


def counted() -> None:
    for counter in _open_groups:
        counter[0] += 1


def fail(label: str, message: str) -> None:
    raise AssertionError(f"{label}: {message}")


def require(condition: bool, label: str, message: str) -> None:
    """A promise of the contract: raise ``label: message`` when it does not hold."""
    counted()
    if not condition:
        fail(label, message)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def as_float64(value: Any, label: str) -> torch.Tensor:
    """A float64 CPU tensor of ``value`` (tensor, number, numpy array or nested list of numbers)."""
    if value is None:
        fail(label, "got None; did the function forget to `return` its result?")
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    if isinstance(value, np.ndarray | np.generic) or is_number(value):
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    try:
        return torch.tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        fail(label, f"expected numbers, got {type(value).__name__}")
    raise AssertionError  # unreachable


def check_form(
    label: str,
    actual: Any,
    *,
    shape: tuple[int, ...] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> None:
    """``actual`` is a tensor of this shape, dtype and device (each checked when given)."""
    require(
        isinstance(actual, torch.Tensor),
        label,
        f"expected a tensor, got {type(actual).__name__}"
        + (" (did you forget to return it?)" if actual is None else ""),
    )
    if shape is not None:
        require(tuple(actual.shape) == tuple(shape), label, f"shape {tuple(actual.shape)}, expected {tuple(shape)}")
    if dtype is not None:
        require(
            actual.dtype == dtype,
            label,
            f"dtype {actual.dtype}, expected {dtype}: keep the inputs' dtype (no float32 constants or .float(), "
            "no silent upcast with .double())",
        )
    if device is not None:
        require(
            actual.device.type == torch.device(device).type,
            label,
            f"on {actual.device}, expected on {device}: create tensors on the input's device",
        )


def max_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return (actual - expected).abs().max().item() if actual.numel() else 0.0


def within(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    if actual.shape != expected.shape:
        return False
    same_nan = actual.isnan() & expected.isnan()
    return bool((same_nan | ((actual - expected).abs() <= atol + rtol * expected.abs())).all())


def assert_close(
    label: str,
    actual: Any,
    expected: Any,
    *,
    atol: float = 0.0,
    rtol: float = 0.0,
    mistakes: Mapping[str, Any] | None = None,
    exact_form: bool = True,
) -> float:
    """``|actual - expected| <= atol + rtol * |expected|`` elementwise, compared in float64.

    With ``exact_form`` and a tensor ``expected``, ``actual`` must be a tensor of the same shape,
    dtype and device (a number where a tensor is promised fails); with a number ``expected`` it
    must be a real number. ``mistakes`` maps a diagnosis to the value a known mistake produces:
    a failing ``actual`` that matches one gets that diagnosis. Returns the largest error.
    """
    if exact_form and isinstance(expected, torch.Tensor):
        check_form(label, actual, shape=tuple(expected.shape), dtype=expected.dtype, device=expected.device)
    elif exact_form and is_number(expected):
        require(
            is_number(actual),
            label,
            f"expected a Python number, got {type(actual).__name__}"
            + (" (use .item())" if isinstance(actual, torch.Tensor) else ""),
        )
    actual64, expected64 = as_float64(actual, label), as_float64(expected, label)
    require(
        actual64.shape == expected64.shape,
        label,
        f"shape {tuple(actual64.shape)}, expected {tuple(expected64.shape)}",
    )
    require(
        not (actual64.isnan() & ~expected64.isnan()).any() and not (actual64.isinf() & ~expected64.isinf()).any(),
        label,
        "the result contains NaN or infinity",
    )
    counted()
    if within(actual64, expected64, atol, rtol):
        return max_error(actual64, expected64)
    for diagnosis, value in (mistakes or {}).items():
        if within(actual64, as_float64(value, label), atol, rtol):
            fail(label, diagnosis)
    fail(
        label,
        f"differs from the expected value by up to {max_error(actual64, expected64):.3g}, more than the tolerance "
        f"{atol:.0e} + {rtol:.0e}*|expected|",
    )
    raise AssertionError  # unreachable


def assert_equal(label: str, actual: Any, expected: Any, message: str = "") -> None:
    """Exact equality of plain Python values (and their types: True is not 1, 1.0 is not 1)."""
    same = type(actual) is type(expected) and actual == expected
    require(same, label, message or f"expected {expected!r}, got {actual!r}")


def require_gpu_safe(label: str, function, *args: Any, **kwargs: Any) -> None:
    """``function(*args, **kwargs)`` on a simulated GPU makes nothing on the CPU that meets its inputs there, and
    returns its tensors on the GPU."""
    _, violations = run_on_simulated_gpu(function, *args, **kwargs)
    require(not violations, f"{label}, on a (simulated) GPU", violations[0] if violations else "")
