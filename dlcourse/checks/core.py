"""The visible checks every lab uses: each prints its measurement next to the tolerance.

A passing check prints one line such as
``standardize: max |error| = 2.4e-07 (tolerance 1.0e-05)  OK``; a failing one
raises ``AssertionError`` with a message that says what to fix.
"""

from __future__ import annotations

import contextlib
import io
import numbers
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch


def as_cpu_float64(value, name: str) -> torch.Tensor:
    """``value`` (tensor, number, array or nested list) as a float64 CPU tensor.

    Python numbers become float64 directly, never through float32, so tolerances below
    float32's resolution mean what they say.
    """
    if value is None:
        raise AssertionError(f"{name}: got None; did the function forget to `return` its result?")
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64)
    try:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError, RuntimeError) as error:
        raise AssertionError(f"{name}: expected a tensor or numbers, got {type(value).__name__}") from error


def is_close(actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> bool:
    """Same shape and ``|actual - expected| <= atol + rtol * |expected|`` everywhere."""
    if actual.shape != expected.shape:
        return False
    return bool(((actual - expected).abs() <= atol + rtol * expected.abs()).all())


def check_close(
    name: str,
    actual,
    expected,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    mistakes: Mapping[str, Any] | None = None,
) -> float:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    Works for tensors on any device and for numbers; prints and returns the largest absolute
    error. When both are tensors, ``actual`` must also have ``expected``'s dtype. ``mistakes``
    maps a diagnosis to the value a known mistake produces: when ``actual`` fails but matches
    one, the error names it.
    """
    if isinstance(actual, torch.Tensor) and isinstance(expected, torch.Tensor) and actual.dtype != expected.dtype:
        raise AssertionError(f"{name}: dtype {actual.dtype} but expected {expected.dtype}; keep the inputs' dtype")
    actual_t = as_cpu_float64(actual, name)
    expected_t = as_cpu_float64(expected, name)
    if actual_t.shape != expected_t.shape:
        raise AssertionError(f"{name}: shape {tuple(actual_t.shape)} but expected {tuple(expected_t.shape)}")
    if not torch.isfinite(actual_t).all():
        raise AssertionError(f"{name}: result contains NaN or infinity")
    error = (actual_t - expected_t).abs()
    max_error = error.max().item() if error.numel() else 0.0
    ok = is_close(actual_t, expected_t, atol, rtol)
    print(
        f"{name}: max |error| = {max_error:.1e} (tolerance {atol:.1e} + {rtol:.0e}*|expected|)  "
        f"{'OK' if ok else 'FAILED'}"
    )
    if not ok:
        for diagnosis, value in (mistakes or {}).items():
            if is_close(actual_t, as_cpu_float64(value, name), atol, rtol):
                raise AssertionError(f"{name}: {diagnosis}")
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


def is_real_number(value) -> bool:
    """An int or float (numpy's included), not a bool and not a tensor."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


@contextlib.contextmanager
def quiet():
    """Run test code with warnings silenced and stderr sent to stdout.

    nbgrader scores a test cell zero when it writes to stderr, so a harmless
    warning raised inside a student's function must not cost points.
    """
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        yield


def run_test(test: Callable[[], None]) -> None:
    """Run a test cell's function quietly (see :func:`quiet`), then remove its name again.

    Test cells put their code in a function and hand it to ``run_test``, so that no test
    binds, rebinds or deletes a name of the student's: the notebook's namespace is left
    exactly as the test found it.
    """
    namespace = test.__globals__
    try:
        with quiet():
            test()
    finally:
        if namespace.get(test.__name__) is test:
            del namespace[test.__name__]


@contextlib.contextmanager
def one_line(title: str):
    """Run several checks and print one line for all of them when they pass (a failure still raises)."""
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        yield
    print(f"{title}: {log.getvalue().count(chr(10))} checks OK")


class OutOfTime(BaseException):
    """Raised into code that runs past its time limit; not an Exception, so `except Exception` cannot hide it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`OutOfTime` into the block after ``seconds``.

    Uses SIGALRM, so it works in the main thread on Unix (Linux, macOS, Colab); elsewhere the block
    runs without a limit. The previous handler is restored afterwards.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise OutOfTime

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def checks_outcome(seconds: float, checks: Callable[[], None]) -> str | None:
    """Run ``checks()`` for at most ``seconds``: None when they pass, else what stopped them.

    For visible checks of an answer that calls another answer (a data generator calling the student's
    ``is_balanced``): a mistake in the other answer (a wrong result, an error, an endless loop) may stop
    them, so the test cell prints the problem instead of failing; its hidden tests grade the answer with
    a correct version of the other one.
    """
    try:
        with time_limit(seconds):
            checks()
    except OutOfTime:
        return f"did not finish within {seconds} s"
    except Exception as error:  # noqa: BLE001 - reported, not raised: see above
        return f"{type(error).__name__}: {error}"
    return None
