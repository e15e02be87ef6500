"""Visible checks of recurrent cells against PyTorch's (lab 1)."""

from __future__ import annotations

import torch
from torch import nn

from dlcourse.checks.core import check_close, check_true


def parameter_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


def check_uniform_init(name: str, cell: nn.Module, hidden_size: int) -> None:
    """Every parameter drawn from U(-1/sqrt(H), 1/sqrt(H)), PyTorch's initialisation of recurrent cells.

    Bounds are exact; the standard deviation bound/sqrt(3) is checked within 20 % on tensors of
    at least 400 entries (the sample standard deviation of n uniforms is off by ~1/sqrt(n) relative).
    """
    bound = 1 / hidden_size**0.5
    for key, value in cell.state_dict().items():
        value = value.detach().double()
        check_true(
            f"{name}: {key} initialised",
            bool(torch.isfinite(value).all()) and value.abs().max().item() <= bound * (1 + 1e-6),
            f"{key} has entries outside [-1/sqrt(H), 1/sqrt(H)] = [-{bound:.3g}, {bound:.3g}] (or NaN); "
            "draw it with torch.empty(...).uniform_(-bound, bound)",
        )
        if value.numel() >= 400:
            ratio = value.std().item() / (bound / 3**0.5)
            check_true(
                f"{name}: {key} spread",
                0.8 < ratio < 1.2,
                f"{key} has standard deviation {ratio:.2f} times that of U(-1/sqrt(H), 1/sqrt(H)); "
                "initialise it uniformly over the whole interval",
            )


def check_recurrent_cell(
    name: str,
    cell: nn.Module,
    reference: nn.Module,
    batch: int = 5,
    pair_state: bool = False,
    atol: float | None = None,
    seed: int = 0,
) -> None:
    """Compare a recurrent cell with a reference cell (e.g. PyTorch's) that has the same state_dict layout.

    Loads the reference's parameters into ``cell``, then compares the next state for a random
    input and state and for ``state=None`` (zeros), and the gradients of a random linear function
    of the output with respect to the input, the state and every parameter. Both cells must live
    on the same device and dtype; ``pair_state`` for LSTM-style ``(h, c)`` states. The default
    tolerance is 1e-5 in float32 and 1e-10 in float64.
    """
    expected_shapes, shapes = parameter_shapes(reference), parameter_shapes(cell)
    check_true(
        f"{name}: parameters",
        shapes == expected_shapes,
        f"the state_dict must hold exactly {expected_shapes}, got {shapes}",
    )
    cell.load_state_dict(reference.state_dict())
    parameter = next(reference.parameters())
    dtype, device = parameter.dtype, parameter.device
    atol = atol if atol is not None else (1e-10 if dtype == torch.float64 else 1e-5)
    hidden = reference.hidden_size
    gen = torch.Generator().manual_seed(seed)

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).to(device, dtype)

    x = random(batch, reference.input_size)
    state = (random(batch, hidden), random(batch, hidden)) if pair_state else random(batch, hidden)
    weights = [random(batch, hidden) for _ in range(2 if pair_state else 1)]

    def run(module: nn.Module, with_state: bool):
        inputs = [x.clone().requires_grad_(True)]
        states = [s.clone().requires_grad_(True) for s in (state if pair_state else (state,))]
        given = (tuple(states) if pair_state else states[0]) if with_state else None
        output = module(inputs[0], given)
        outputs = tuple(output) if pair_state else (output,)
        for position, out in enumerate(outputs):
            if not isinstance(out, torch.Tensor) or out.shape != (batch, hidden):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise AssertionError(f"{name}: output {position} should have shape {(batch, hidden)}, got {got}")
        module.zero_grad()
        sum((w * out).sum() for w, out in zip(weights, outputs, strict=True)).backward()
        leaves = inputs + (states if with_state else [])
        grads = [leaf.grad if leaf.grad is not None else torch.zeros_like(leaf) for leaf in leaves]
        params = {
            key: p.grad.clone() if p.grad is not None else torch.zeros_like(p) for key, p in module.named_parameters()
        }
        return [out.detach() for out in outputs], grads, params

    for with_state in (True, False):
        label = "given state" if with_state else "state=None (zeros)"
        outputs, grads, params = run(cell, with_state)
        ref_outputs, ref_grads, ref_params = run(reference, with_state)
        for position, (out, ref) in enumerate(zip(outputs, ref_outputs, strict=True)):
            part = ("h", "c")[position] if pair_state else "next state"
            check_close(f"{name}, {label}: {part}", out, ref, atol=atol, rtol=0)
        for leaf, grad, ref in zip(["x", "h", "c"], grads, ref_grads, strict=False):
            check_close(f"{name}, {label}: gradient with respect to {leaf}", grad, ref, atol=atol, rtol=0)
        for key, ref in ref_params.items():
            check_close(f"{name}, {label}: gradient of {key}", params[key], ref, atol=atol, rtol=0)
