"""Visible statistical checks of random initialisers (lab 2)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

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
    tensor, filled in place, with the statistics of :func:`check_init_statistics`."""
    tensor = torch.full(shape, float("nan"), dtype=dtype, device=device)
    torch.manual_seed(seed)
    result = init(tensor, **kwargs)
    check_true(
        f"{name}: returns its argument",
        result is tensor,
        "fill the tensor you were given in place (e.g. tensor.normal_(...)) and return that same tensor",
    )
    check_init_statistics(name, tensor, std, distribution, mistakes)


def fans_of(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of this shape, as PyTorch computes them."""
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape, device="meta"))


def different_from(std: float, candidates: dict[str, float]) -> dict[str, float]:
    # A diagnosis only makes sense where the mistake changes the result (e.g. not for gain 1).
    return {diagnosis: value for diagnosis, value in candidates.items() if abs(value / std - 1) > 0.05}


def kaiming_mistakes(shape: tuple[int, ...], gain: float, mode: str, distribution: str) -> dict[str, float]:
    """Standard deviations that known mistakes in kaiming_normal_/kaiming_uniform_ produce, by diagnosis."""
    fan_in, fan_out = fans_of(shape)
    fan, other = (fan_in, fan_out) if mode == "fan_in" else (fan_out, fan_in)
    receptive_field = fan_in // shape[1]
    std, relu_std = gain / fan**0.5, (2 / fan) ** 0.5
    candidates = {
        "a variance used as the standard deviation: std = gain / sqrt(fan), not gain^2 / fan": gain**2 / fan,
        f"mode={mode!r} asks for {mode}, but the other fan was used": gain / other**0.5,
        "the fan of a convolution includes its receptive field: fan_in = in_channels * kernel_h * kernel_w "
        "(fan_out = out_channels * kernel_h * kernel_w)": gain / (fan / receptive_field) ** 0.5,
        "the gain is missing: std = gain / sqrt(fan)": 1 / fan**0.5,
        "the gain must not be squared: std = gain / sqrt(fan)": gain**2 / fan**0.5,
        "the gain belongs outside the square root: std = gain / sqrt(fan)": (gain / fan) ** 0.5,
        "the gain of ReLU was used whatever the nonlinearity and slope: use calculate_gain(nonlinearity, a)": relu_std,
    }
    if distribution == "uniform":
        candidates["the bound of U(-b, b) is sqrt(3) times the standard deviation: b = sqrt(3) * gain / sqrt(fan)"] = (
            std / 3**0.5
        )
    return different_from(std, candidates)


def xavier_mistakes(shape: tuple[int, ...], gain: float, distribution: str) -> dict[str, float]:
    """Standard deviations that known mistakes in xavier_normal_/xavier_uniform_ produce, by diagnosis."""
    fan_in, fan_out = fans_of(shape)
    receptive_field = fan_in // shape[1]
    fans = fan_in + fan_out
    std = gain * (2 / fans) ** 0.5
    candidates = {
        "a variance used as the standard deviation: std = gain * sqrt(2 / (fan_in + fan_out))": gain**2 * 2 / fans,
        "the factor 2 is missing: std = gain * sqrt(2 / (fan_in + fan_out))": gain / fans**0.5,
        "Xavier averages the two fans, std = gain * sqrt(2 / (fan_in + fan_out)); this is gain / sqrt(fan_in)": (
            gain / fan_in**0.5
        ),
        "Xavier averages the two fans, std = gain * sqrt(2 / (fan_in + fan_out)); this is gain / sqrt(fan_out)": (
            gain / fan_out**0.5
        ),
        "the fans of a convolution include its receptive field (kernel_h * kernel_w)": (
            gain * (2 * receptive_field / fans) ** 0.5
        ),
        "the gain is missing: std = gain * sqrt(2 / (fan_in + fan_out))": (2 / fans) ** 0.5,
        "the gain belongs outside the square root: std = gain * sqrt(2 / (fan_in + fan_out))": (
            (2 * gain / fans) ** 0.5
        ),
    }
    if distribution == "uniform":
        bound_is_std = (
            "the bound of U(-b, b) is sqrt(3) times the standard deviation: b = gain * sqrt(6 / (fan_in + fan_out))"
        )
        candidates[bound_is_std] = std / 3**0.5
    return different_from(std, candidates)
