"""Systematic input variations: sizes, layouts, dtypes, offsets and seeds.

Every generator takes a seed and draws in float64 on the CPU before moving to the requested dtype
and device, so the same case gives the same values on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

SEEDS = (0, 1, 2)
DTYPES = (torch.float32, torch.float64)


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def normal(shape, *, seed: int, mean: float = 0.0, std: float = 1.0, dtype=torch.float64, device=None) -> torch.Tensor:
    """mean + std * N(0, 1) of ``shape``."""
    values = torch.randn(tuple(shape), generator=seeded(seed), dtype=torch.float64) * std + mean
    return values.to(device=device, dtype=dtype)


def uniform(shape, *, seed: int, low: float = 0.0, high: float = 1.0, dtype=torch.float64, device=None) -> torch.Tensor:
    values = low + (high - low) * torch.rand(tuple(shape), generator=seeded(seed), dtype=torch.float64)
    return values.to(device=device, dtype=dtype)


def images(shape, *, seed: int, edge_share: float = 0.25, dtype=torch.float64, device=None) -> torch.Tensor:
    """Pixels uniform in [0, 1], with ``edge_share`` of them exactly 0 or 1 so that clamping matters."""
    gen = seeded(seed)
    x = torch.rand(tuple(shape), generator=gen, dtype=torch.float64)
    edge = torch.rand(tuple(shape), generator=gen) < edge_share
    x[edge] = (torch.rand(tuple(shape), generator=gen, dtype=torch.float64)[edge] < 0.5).double()
    return x.to(device=device, dtype=dtype)


def non_contiguous(tensor: torch.Tensor) -> torch.Tensor:
    """The same values in a non-contiguous layout (a strided view into a larger tensor)."""
    if tensor.dim() == 0:
        return tensor.clone()
    wider = torch.zeros(*tensor.shape[:-1], 2 * tensor.shape[-1], dtype=tensor.dtype, device=tensor.device)
    wider[..., ::2] = tensor.detach()
    view = wider[..., ::2]
    assert view.numel() <= 1 or not view.is_contiguous()
    return view.requires_grad_(tensor.requires_grad) if tensor.is_leaf else view


def transposed_layout(tensor: torch.Tensor) -> torch.Tensor:
    """The same values stored transposed (non-contiguous, every element reachable by strides)."""
    if tensor.dim() < 2:
        return non_contiguous(tensor)
    return tensor.detach().transpose(0, 1).contiguous().transpose(0, 1)


def layouts(tensor: torch.Tensor) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for the contiguous tensor and the same values in other memory layouts."""
    yield "contiguous", tensor
    yield "non-contiguous (strided view)", non_contiguous(tensor)
    if tensor.dim() >= 2:
        yield "non-contiguous (transposed storage)", transposed_layout(tensor)
    if tensor.dim() == 4:
        yield "channels_last", tensor.detach().contiguous(memory_format=torch.channels_last)


def requiring_grad(tensor: torch.Tensor) -> torch.Tensor:
    """The same values as a non-leaf tensor that requires grad, as a model's output is."""
    return tensor.detach().clone().requires_grad_(True) * 1


def holding_grad(tensor: torch.Tensor) -> torch.Tensor:
    """A leaf that requires grad and already holds a ``.grad``, which the answer must leave alone."""
    leaf = tensor.detach().clone().requires_grad_(True)
    leaf.grad = torch.full_like(leaf, 0.25)
    return leaf


def tolerance(dtype: torch.dtype, float64: float = 1e-10, float32: float = 1e-5) -> float:
    return float64 if dtype == torch.float64 else float32
