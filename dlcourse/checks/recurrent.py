"""Visible checks of lab 1: recurrent cells against PyTorch's cells, and the initialisation of their parameters."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from dlcourse.checks.core import check_close, check_true


def parameter_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


# Fewest entries per parameter for the statistics below to tell a wrong spread from a right one.
MIN_ENTRIES = 1000


def check_uniform_init(name: str, cells: nn.Module | Sequence[nn.Module], hidden_size: int) -> int:
    """Every parameter drawn from U(-b, b), b = 1/sqrt(H): PyTorch's initialisation of recurrent cells.

    Each parameter's entries are pooled over ``cells`` (fresh cells of the same sizes), so that small
    parameters such as biases are tested on a large sample too: at least 1000 entries each. With
    u = entry / b, n independent draws of U(-1, 1) have

    - every |u| <= 1 (up to rounding);
    - mean 0, with standard error sqrt(1 / (3 n));
    - mean of u^2 equal to 1/3 (the spread), with standard error sqrt(4 / (45 n));
    - largest u above 1 - d and smallest below -(1 - d) for d = 2 (1 - 1e-9^(1/n)): a correct sample fails
      this with probability 1e-9.

    Means are allowed 6 standard errors (a correct initialisation fails with probability about 2e-9).
    With two cells or more, the second must hold other values than the first (new draws for each cell).
    Prints one line per parameter and returns the number of checks made.
    """
    cells = [cells] if isinstance(cells, nn.Module) else list(cells)
    bound = 1 / hidden_size**0.5
    checks = 0
    for key in cells[0].state_dict():
        samples = [cell.state_dict()[key].detach().to("cpu", torch.float64).flatten() for cell in cells]
        u = torch.cat(samples) / bound
        n = u.numel()
        if n < MIN_ENTRIES:
            raise ValueError(f"{name}: {key} has {n} entries over {len(cells)} cells; pool at least {MIN_ENTRIES}")
        mean, square = u.mean().item(), (u**2).mean().item()
        mean_tol, square_tol = 6 * (1 / (3 * n)) ** 0.5, 6 * (4 / (45 * n)) ** 0.5
        reach = 2 * (1 - 1e-9 ** (1 / n))
        failures = [
            (
                not bool(torch.isfinite(u).all()) or u.abs().max().item() > 1 + 1e-6,
                f"entries outside [-1/sqrt(H), 1/sqrt(H)] = [-{bound:.4g}, {bound:.4g}] (or NaN): largest |entry| "
                f"{u.abs().max().item() * bound:.4g}; draw it with torch.empty(...).uniform_(-bound, bound)",
            ),
            (
                abs(mean) > mean_tol,
                f"mean {mean * bound:+.3g}, farther from 0 than {mean_tol * bound:.2g} (6 standard errors for "
                f"n = {n}); draw from the interval centred on 0",
            ),
            (
                abs(square - 1 / 3) > square_tol,
                f"standard deviation {square**0.5 * 3**0.5:.3f} times that of U(-1/sqrt(H), 1/sqrt(H)) (tolerance "
                "6 standard errors); draw uniformly over the whole interval",
            ),
            (
                u.max().item() < 1 - reach or u.min().item() > -(1 - reach),
                f"the entries do not reach the bounds: they lie in [{u.min().item() * bound:.4g}, "
                f"{u.max().item() * bound:.4g}], expected to come within {reach * bound:.2g} of +-{bound:.4g}",
            ),
        ]
        if len(samples) > 1:
            failures.append(
                (
                    torch.equal(samples[0], samples[1]),
                    "two new cells hold the same values: draw new random values for every cell (do not seed inside it)",
                )
            )
        checks += len(failures)
        wrong = [message for failed, message in failures if failed]
        print(
            f"{name}: {key}, {n} entries over {len(cells)} cells: mean {mean * bound:+.1e} (tolerance "
            f"{mean_tol * bound:.1e}), std {square**0.5 * bound:.4f} (expected {bound / 3**0.5:.4f}), range "
            f"[{u.min().item() * bound:.4f}, {u.max().item() * bound:.4f}]  {'FAILED' if wrong else 'OK'}"
        )
        if wrong:
            raise AssertionError(f"{name}: {key}: {wrong[0]}")
    return checks


# The gate order of PyTorch's stacked weights, and orders that students read them in by mistake.
GATE_ORDERS = {
    nn.GRUCell: ("r, z, n", ("z, r, n",)),
    nn.LSTMCell: ("i, f, g, o", ("i, f, o, g", "f, i, g, o", "i, g, f, o", "g, i, f, o")),
}


def gates_read_in(reference: nn.Module, order: str, pytorch_order: str) -> nn.Module:
    """A copy of PyTorch's cell ``reference`` that computes what a cell reading its stacked gates in ``order`` does.

    Such a cell uses, for the gate PyTorch stacks at position k, the block at the position of that gate in
    ``order``: the copy holds the blocks rearranged so.
    """
    gates, wrong = pytorch_order.split(", "), order.split(", ")
    mistaken = copy.deepcopy(reference)
    with torch.no_grad():
        for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            blocks = getattr(reference, key).chunk(len(gates))
            getattr(mistaken, key).copy_(torch.cat([blocks[wrong.index(gate)] for gate in gates]))
    return mistaken


def other_nonlinearity(reference: nn.RNNCell) -> nn.RNNCell:
    """A copy of PyTorch's ``nn.RNNCell`` with tanh where ``reference`` has ReLU, or ReLU where it has tanh."""
    other = "tanh" if reference.nonlinearity == "relu" else "relu"
    cell = nn.RNNCell(reference.input_size, reference.hidden_size, nonlinearity=other)
    parameter = next(reference.parameters())
    cell.to(parameter.device, parameter.dtype).load_state_dict(reference.state_dict())
    return cell


def mistaken_cells(reference: nn.Module) -> dict[str, nn.Module]:
    """PyTorch cells that compute what a cell with a common mistake computes, each named by the mistake;
    {} when ``reference`` is not PyTorch's ``nn.RNNCell``, ``nn.GRUCell`` or ``nn.LSTMCell``."""
    if type(reference) in GATE_ORDERS:
        pytorch_order, orders = GATE_ORDERS[type(reference)]
        return {
            f"reads the stacked weights in the gate order {order} instead of PyTorch's {pytorch_order}": gates_read_in(
                reference, order, pytorch_order
            )
            for order in orders
        }
    if type(reference) is nn.RNNCell:
        wrong, right = ("tanh", "ReLU") if reference.nonlinearity == "relu" else ("ReLU", "tanh")
        return {f"applies {wrong} where the reference applies {right}": other_nonlinearity(reference)}
    return {}


def known_mistakes(
    reference: nn.Module, x: torch.Tensor, state, outputs: tuple[torch.Tensor, ...]
) -> list[dict[str, torch.Tensor]]:
    """For each of the reference's ``outputs`` (its next state, or h' and c'), ``{diagnosis: what a cell with that
    mistake returns in its place}``, where that differs from the reference's output."""
    found: list[dict[str, torch.Tensor]] = [{} for _ in outputs]
    with torch.no_grad():
        for what, cell in mistaken_cells(reference).items():
            wrong = cell(x, state)
            for position, value in enumerate(wrong if isinstance(wrong, tuple) else (wrong,)):
                if not torch.allclose(value, outputs[position], atol=1e-6, rtol=1e-5):
                    found[position][f"your output matches a cell that {what}"] = value
    if len(outputs) == 2:
        swapped = "your output matches a cell that returns (c', h') instead of (h', c')"
        found[0][swapped], found[1][swapped] = outputs[1], outputs[0]
    return found


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
    of the output with respect to the input, the state and every parameter. When the reference is
    PyTorch's ``nn.RNNCell``, ``nn.GRUCell`` or ``nn.LSTMCell`` and a next state differs, the
    error names the common mistake whose output the cell's matches, if any: the stacked gates read
    in another order, tanh and ReLU exchanged, (c', h') returned for (h', c'). PyTorch's cells with
    rearranged weights compute them (the course's hidden tests name more mistakes). Both cells must
    live on the same device and dtype; ``pair_state`` for LSTM-style ``(h, c)`` states. The default
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
        mistakes = known_mistakes(reference, x, state if with_state else None, tuple(ref_outputs))
        for position, (out, ref) in enumerate(zip(outputs, ref_outputs, strict=True)):
            part = ("h", "c")[position] if pair_state else "next state"
            check_close(f"{name}, {label}: {part}", out, ref, atol=atol, rtol=0, mistakes=mistakes[position])
        for leaf, grad, ref in zip(["x", "h", "c"], grads, ref_grads, strict=False):
            check_close(f"{name}, {label}: gradient with respect to {leaf}", grad, ref, atol=atol, rtol=0)
        for key, ref in ref_params.items():
            check_close(f"{name}, {label}: gradient of {key}", params[key], ref, atol=atol, rtol=0)
