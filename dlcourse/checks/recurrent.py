"""Visible checks of lab 1: recurrent cells against PyTorch's, and a time limit for code that may loop forever."""

from __future__ import annotations

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


def stacked(module: nn.Module, blocks: int) -> tuple[tuple[torch.Tensor, ...], ...]:
    """The blocks of weight_ih, weight_hh, bias_ih and bias_hh, in PyTorch's stacking order."""
    return tuple(
        getattr(module, key).detach().chunk(blocks) for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    )


def gru_variants(reference: nn.Module, x: torch.Tensor, h: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
    """The next state of GRU cells that make a common mistake, each named by what it does."""
    (w_r, w_z, w_n), (u_r, u_z, u_n), (b_r, b_z, b_n), (c_r, c_z, c_n) = stacked(reference, 3)

    def gate(w, b, u, c, state):
        return torch.sigmoid(x @ w.T + b + state @ u.T + c)

    r, z = gate(w_r, b_r, u_r, c_r, h), gate(w_z, b_z, u_z, c_z, h)
    n = torch.tanh(x @ w_n.T + b_n + r * (h @ u_n.T + c_n))
    r_swapped, z_swapped = z, r  # the first two blocks read in the order z, r
    n_swapped = torch.tanh(x @ w_n.T + b_n + r_swapped * (h @ u_n.T + c_n))
    return {
        "multiplies h by the reset gate before the product with W_hn": (
            (1 - z) * torch.tanh(x @ w_n.T + b_n + (r * h) @ u_n.T + c_n) + z * h,
        ),
        "applies the reset gate to W_hn h but not to the bias b_hn": (
            (1 - z) * torch.tanh(x @ w_n.T + b_n + r * (h @ u_n.T) + c_n) + z * h,
        ),
        "has the update gate flipped (z and 1 - z exchanged)": (z * n + (1 - z) * h,),
        "reads the stacked weights in the gate order z, r, n instead of PyTorch's": (
            (1 - z_swapped) * n_swapped + z_swapped * h,
        ),
    }


def lstm_variants(reference: nn.Module, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> dict:
    """The next (h, c) of LSTM cells that make a common mistake, each named by what it does."""
    weights_ih, weights_hh, biases_ih, biases_hh = stacked(reference, 4)
    blocks = [
        x @ w.T + b + h @ u.T + d for w, u, b, d in zip(weights_ih, weights_hh, biases_ih, biases_hh, strict=True)
    ]

    def cell(i, f, g, o, candidate=torch.tanh, squash_cell=True, swap_gates=False):
        i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        if swap_gates:
            i, f = f, i
        c_next = f * c + i * candidate(g)
        return (o * torch.tanh(c_next) if squash_cell else o * c_next), c_next

    variants = {
        f"reads the stacked weights in the gate order {order} instead of PyTorch's": cell(
            *(blocks[order.replace(", ", "").index(gate)] for gate in "ifgo")  # the student's gate = its block
        )
        for order in ("i, f, o, g", "f, i, g, o", "i, g, f, o", "g, i, f, o")
    }
    variants["exchanges the roles of the input and forget gates in the new cell state"] = cell(*blocks, swap_gates=True)
    variants["does not squash the new cell state with tanh before the output gate"] = cell(*blocks, squash_cell=False)
    variants["puts the candidate g through a sigmoid instead of tanh"] = cell(*blocks, candidate=torch.sigmoid)
    h_next, c_next = cell(*blocks)
    variants["returns (c', h') instead of (h', c')"] = (c_next, h_next)
    return variants


def elman_variants(reference: nn.Module, x: torch.Tensor, h: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
    pre = x @ reference.weight_ih.detach().T + reference.bias_ih.detach() + h @ reference.weight_hh.detach().T
    pre = pre + reference.bias_hh.detach()
    relu = getattr(reference, "nonlinearity", "tanh") == "relu"
    return {
        "applies tanh where the reference applies ReLU" if relu else "applies ReLU where the reference applies tanh": (
            torch.tanh(pre) if relu else torch.relu(pre),
        ),
        "applies no non-linearity": (pre,),
        "applies a sigmoid instead of the reference's non-linearity": (torch.sigmoid(pre),),
    }


def known_mistakes(reference: nn.Module, x: torch.Tensor, state) -> dict[str, tuple[torch.Tensor, ...]]:
    """Outputs of cells that make a common mistake, with the reference's parameters; {} for other cells."""
    with torch.no_grad():
        if isinstance(reference, nn.GRUCell):
            return gru_variants(reference, x, state)
        if isinstance(reference, nn.LSTMCell):
            return lstm_variants(reference, x, *state)
        if isinstance(reference, nn.RNNCell):
            return elman_variants(reference, x, state)
    return {}


def mistake_messages(variants: dict, position: int, expected: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{message: value}`` for the variants whose output ``position`` differs from the reference's."""
    found = {}
    for what, outputs in variants.items():
        value = outputs[position]
        if not torch.allclose(value, expected, atol=1e-6, rtol=1e-5):
            found[f"your output matches a cell that {what}"] = value
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
    error names the common mistake (a gate misplaced or flipped, the stacked gates read in
    another order, ...) whose output the cell's matches, if any. Both cells must live
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
        zeros = torch.zeros_like(x[:, :1]).expand(batch, hidden)
        given = state if with_state else ((zeros, zeros) if pair_state else zeros)
        variants = known_mistakes(reference, x, given)
        for position, (out, ref) in enumerate(zip(outputs, ref_outputs, strict=True)):
            part = ("h", "c")[position] if pair_state else "next state"
            mistakes = mistake_messages(variants, position, ref)
            check_close(f"{name}, {label}: {part}", out, ref, atol=atol, rtol=0, mistakes=mistakes)
        for leaf, grad, ref in zip(["x", "h", "c"], grads, ref_grads, strict=False):
            check_close(f"{name}, {label}: gradient with respect to {leaf}", grad, ref, atol=atol, rtol=0)
        for key, ref in ref_params.items():
            check_close(f"{name}, {label}: gradient of {key}", params[key], ref, atol=atol, rtol=0)
