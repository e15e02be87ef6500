"""Visible checks for labs: each prints its measurement next to the tolerance.

A passing check prints one line such as
``standardize: max |error| = 2.4e-07 (tolerance 1.0e-05)  OK``; a failing one
raises ``AssertionError`` with a message that says what to fix.
"""

from __future__ import annotations

import contextlib
import sys
import warnings

import torch


def as_cpu_float64(value, name: str) -> torch.Tensor:
    if value is None:
        raise AssertionError(f"{name}: got None; did the function forget to `return` its result?")
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise AssertionError(f"{name}: expected a tensor, got {type(value).__name__}") from error
    return value.detach().to("cpu", torch.float64)


def check_close(name: str, actual, expected, atol: float = 1e-6, rtol: float = 1e-5) -> float:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Works for tensors on any device and for numbers; prints and returns the
    largest absolute error.
    """
    actual_t = as_cpu_float64(actual, name)
    expected_t = as_cpu_float64(expected, name)
    if actual_t.shape != expected_t.shape:
        raise AssertionError(f"{name}: shape {tuple(actual_t.shape)} but expected {tuple(expected_t.shape)}")
    if not torch.isfinite(actual_t).all():
        raise AssertionError(f"{name}: result contains NaN or infinity")
    error = (actual_t - expected_t).abs()
    max_error = error.max().item() if error.numel() else 0.0
    tolerance = atol + rtol * expected_t.abs()
    ok = bool((error <= tolerance).all())
    print(
        f"{name}: max |error| = {max_error:.1e} (tolerance {atol:.1e} + {rtol:.0e}*|expected|)  "
        f"{'OK' if ok else 'FAILED'}"
    )
    if not ok:
        raise AssertionError(
            f"{name}: result differs from the expected value by up to {max_error:.3g}, "
            f"more than the tolerance {atol:.1e} + {rtol:.0e}*|expected|"
        )
    return max_error


def check_true(name: str, condition: bool, message: str) -> None:
    """Assert a condition; print ``name: OK`` or raise with ``message``."""
    if not condition:
        print(f"{name}: FAILED")
        raise AssertionError(f"{name}: {message}")
    print(f"{name}: OK")


@contextlib.contextmanager
def quiet():
    """Run test code with warnings silenced and stderr sent to stdout.

    nbgrader scores a test cell zero when it writes to stderr, so a harmless
    warning raised inside a student's function must not cost points.
    """
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        yield
