"""Visible statistical checks of random initialisers (lab 2)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

import torch

from dlcourse.checks.core import as_cpu_float64, check_true

# Share of a normal sample beyond two standard deviations: 2 * (1 - Phi(2)).
NORMAL_BEYOND_TWO_SD = 0.0455002638963584


def check_init_statistics(
    name: str,
    tensor: torch.Tensor,
    std: float,
    distribution: str,
    mistakes: Mapping[str, float] | None = None,
) -> None:
    """Check that ``tensor`` looks like n independent draws from N(0, std^2) or U(-b, b), b = sqrt(3) std.

    Tolerances come from the sample size n (every check is six standard errors wide, so a correct
    initialiser fails with probability below 1e-8):

    - standard deviation: its relative standard error is sqrt((kurtosis - 1) / (4n)), i.e.
      sqrt(1 / (2n)) for a normal sample and sqrt(1 / (5n)) for a uniform one; we allow 6 sqrt(1 / (2n));
    - mean: standard error std / sqrt(n); we allow 6 std / sqrt(n);
    - normal: the share p of entries beyond 2 std is 4.55 %, with standard error sqrt(p (1 - p) / n);
    - uniform: no entry beyond b (up to rounding), and the largest |entry| within b (1 - 20 / n) of b,
      which fails with probability exp(-20).

    ``mistakes`` maps a diagnosis to the standard deviation a known mistake produces; a standard
    deviation that matches one gets that diagnosis.
    """
    if distribution not in ("normal", "uniform"):
        raise ValueError(f"distribution must be 'normal' or 'uniform', got {distribution!r}")
    values = as_cpu_float64(tensor, name).flatten()
    n = values.numel()
    check_true(
        f"{name}: filled",
        n > 0 and bool(torch.isfinite(values).all()),
        "the tensor still holds NaN or infinity: fill every entry of the tensor you were given, in place",
    )
    rel_tol, measured = 6 / (2 * n) ** 0.5, values.std().item()
    ok = abs(measured / std - 1) <= rel_tol
    print(
        f"{name}: std {measured:.5g}, expected {std:.5g} (tolerance ±{100 * rel_tol:.2g} % for n = {n:,})  "
        f"{'OK' if ok else 'FAILED'}"
    )
    if not ok:
        for diagnosis, mistaken_std in (mistakes or {}).items():
            if abs(measured / mistaken_std - 1) <= rel_tol:
                raise AssertionError(f"{name}: {diagnosis}")
        raise AssertionError(f"{name}: standard deviation {measured:.5g} but expected {std:.5g}")
    mean_tol = 6 * std / n**0.5
    check_true(
        f"{name}: mean {values.mean().item():+.2e} within ±{mean_tol:.1e}",
        abs(values.mean().item()) <= mean_tol,
        "the entries must have mean zero",
    )
    if distribution == "normal":
        share = (values.abs() > 2 * std).double().mean().item()
        share_tol = 6 * (NORMAL_BEYOND_TWO_SD * (1 - NORMAL_BEYOND_TWO_SD) / n) ** 0.5
        check_true(
            f"{name}: {100 * share:.2f} % of entries beyond 2 std (normal: 4.55 ± {100 * share_tol:.2f} %)",
            abs(share - NORMAL_BEYOND_TWO_SD) <= share_tol,
            "the entries do not follow a normal distribution; draw them with normal_ (or torch.randn)",
        )
    else:
        bound, largest = 3**0.5 * std, values.abs().max().item()
        check_true(
            f"{name}: largest |entry| {largest:.5g}, bound {bound:.5g}",
            bound * (1 - 20 / n) <= largest <= bound * (1 + 1e-5) + 1e-12,
            f"the entries must fill U(-b, b) with b = sqrt(3) * std = {bound:.5g}; draw them with uniform_",
        )


def common_kaiming_mistakes(
    fan_in: int, fan_out: int, nonlinearity: str, mode: str, distribution: str
) -> dict[str, float]:
    """The standard deviations four common Kaiming mistakes give, by diagnosis (for :func:`check_init`).

    The right one is std = gain / sqrt(fan); the mistakes use the other fan, the gain of another
    nonlinearity (tanh's, or ReLU's for tanh), the variance gain^2 / fan as the standard deviation, and,
    for the uniform distribution, the standard deviation itself as the bound (b = std instead of sqrt(3) std).
    """
    gain = torch.nn.init.calculate_gain(nonlinearity)
    fan, other_fan = (fan_in, fan_out) if mode == "fan_in" else (fan_out, fan_in)
    other = "relu" if nonlinearity == "tanh" else "tanh"
    mistakes = {
        f"this matches the other fan: mode={mode!r} divides by the {mode.replace('_', '-')}": gain / other_fan**0.5,
        f"this matches the gain of {other}: use the gain of nonlinearity={nonlinearity!r}": (
            torch.nn.init.calculate_gain(other) / fan**0.5
        ),
        "this matches the variance gain^2 / fan: the standard deviation is its square root": gain**2 / fan,
    }
    if distribution == "uniform":
        mistakes["this matches a bound b equal to the standard deviation: U(-b, b) has std b / sqrt(3)"] = (
            gain / fan**0.5 / 3**0.5
        )
    return mistakes


def check_init(
    name: str,
    init: Callable[..., torch.Tensor],
    shape: tuple[int, ...],
    std: float,
    distribution: str,
    mistakes: Mapping[str, float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    seed: int = 0,
    **kwargs,
) -> None:
    """Call ``init(tensor, **kwargs)`` on a NaN-filled tensor of ``shape``; check it returns that
    tensor, filled in place (in its own memory, dtype kept), with the statistics of
    :func:`check_init_statistics`."""
    tensor = torch.full(shape, float("nan"), dtype=dtype, device=device)
    memory, pointer = tensor.detach(), tensor.data_ptr()  # ``memory`` shares the tensor's storage
    torch.manual_seed(seed)
    result = init(tensor, **kwargs)
    check_true(
        f"{name}: returns its argument",
        result is tensor,
        "fill the tensor you were given in place (e.g. tensor.normal_(...)) and return that same tensor",
    )
    check_true(
        f"{name}: filled in its own memory, {tensor.dtype} kept",
        tensor.data_ptr() == pointer and tensor.dtype == dtype,
        "write the values into the tensor's own memory (tensor.normal_(...), tensor.uniform_(...) or "
        "tensor.copy_(...)); `tensor.data = ...` replaces its memory",
    )
    check_init_statistics(name, memory, std, distribution, mistakes)


@contextlib.contextmanager
def torch_gain_and_fans(namespace: MutableMapping[str, Any]) -> Iterator[None]:
    """Lend PyTorch's ``calculate_gain`` and fan computation to the notebook while the block runs.

    An initialiser's test grades the initialiser alone: with PyTorch's versions in place of the notebook's
    ``calculate_gain`` and ``fan_in_and_fan_out``, a mistake in those costs points only once.
    The notebook's own functions are put back afterwards.
    """
    lent = {
        "calculate_gain": torch.nn.init.calculate_gain,
        "fan_in_and_fan_out": torch.nn.init._calculate_fan_in_and_fan_out,
    }
    missing = object()
    saved = {name: namespace.get(name, missing) for name in lent}
    namespace.update(lent)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value
