"""Hidden tests of lab 1: recurrent cells, unrolling, balanced coloured parentheses and their data set.

The contracts, as the lab's text states them:

- **cells** ``ElmanCell``, ``GatedCell``, ``GRUCell``, ``LSTMCell`` ``(input_size, hidden_size)``: an
  ``nn.Module`` whose ``state_dict`` holds exactly PyTorch's parameters (``GatedCell``: four
  ``nn.Linear`` submodules), all ``nn.Parameter``s; ``forward(x, h=None)`` returns a new (N, H)
  tensor of x's dtype and device (``LSTMCell``: ``forward(x, state=None)`` returns the tuple
  ``(h', c')``); ``None`` means zeros of x's dtype and device; x, h and c are never modified, nothing
  is kept from one call to the next, gradients reach x, h, c and every parameter; PyTorch's
  recurrent cells, layers and functions are not used; Elman, GRU and LSTM parameters start from
  U(-1/sqrt(H), 1/sqrt(H)). Oracles, in float64: ``nn.RNNCell(relu)``, ``nn.GRUCell``,
  ``nn.LSTMCell``, and for the gated cell its equations written with explicit matrix products.
- ``unroll(cell, xs, state=None)``: the tuple ``(outputs, final_state)``, outputs a (T, N, H) tensor
  of xs's dtype and device, the final state as the cell returns it; gradients through every step.
  Graded with PyTorch's cells and cells written here (never the student's, so that a mistake in a
  cell costs its points once). Oracle: ``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` with the cell's weights.
- ``is_balanced(seq, n_pairs=5)``: a Python bool for a list or tuple of ints. Oracle: deleting
  adjacent matching pairs until none is left.
- ``make_parentheses_data(n, max_len, n_pairs=5, seed=0)``: properties of the data set, checked
  with a correct ``is_balanced`` lent for each call (one mistake, one loss), within a bounded
  number of checks and a time limit (a generator that never finishes fails instead of hanging).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import numbers
import random
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from autograder.battery.compare import (
    assert_close,
    check_form,
    counted,
    fail,
    group,
    require,
    require_gpu_safe,
    within,
)
from autograder.battery.devices import run_on_simulated_gpu
from autograder.battery.forbidden import forbidding
from autograder.battery.inputs import (
    holding_grad,
    non_contiguous,
    normal,
    requiring_grad,
    transposed_layout,
    uniform,
)
from autograder.battery.properties import for_all, st
from autograder.battery.snapshot import Snapshot
from autograder.battery.student import Student, call, call_each, case, describe
from dlcourse.checks.core import OutOfTime, time_limit
from dlcourse.checks.recurrent import check_uniform_init

FLOAT64, FLOAT32 = torch.float64, torch.float32


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    """float64: 1e-10, far below any mistake; float32: 1e-5 + 1e-4 |expected|, which every summation order meets."""
    return {"atol": 1e-10, "rtol": 1e-10} if dtype == FLOAT64 else {"atol": 1e-5, "rtol": 1e-4}


def draw(shape: Sequence[int], seed: int, dtype: torch.dtype) -> torch.Tensor:
    """N(0, 1) values rounded to ``dtype`` and returned in float64, so the oracle sees what the answer sees."""
    return normal(tuple(shape), seed=seed).to(dtype).double()


def on(tensor: torch.Tensor, device: torch.device, dtype: torch.dtype, layout: str = "contiguous") -> torch.Tensor:
    """A leaf copy of ``tensor`` on ``device`` in ``dtype``, contiguous or in a non-contiguous layout."""
    moved = tensor.detach().to(device, dtype)
    if layout == "transposed storage":
        return transposed_layout(moved)
    if layout == "strided view":
        return non_contiguous(moved)
    return moved.clone()


def as_oracle_input(tensor: torch.Tensor) -> torch.Tensor:
    """The float64 leaf the oracle computes from: a copy of the answer's input, with its requires_grad."""
    return tensor.detach().to(FLOAT64, copy=True).requires_grad_(tensor.requires_grad)


def gradients(outputs: Sequence[torch.Tensor], weights: Sequence[torch.Tensor], leaves: Sequence[torch.Tensor]):
    """d/d leaves of sum_k <weights_k, outputs_k>; zeros for a leaf the outputs do not depend on."""
    loss = sum((w.to(out.dtype) * out).sum() for w, out in zip(weights, outputs, strict=True))
    grads = torch.autograd.grad(loss, list(leaves), allow_unused=True)
    return [torch.zeros_like(leaf) if grad is None else grad for grad, leaf in zip(grads, leaves, strict=True)]


def close(label: str, actual: Any, expected: torch.Tensor, dtype: torch.dtype, mistakes=None) -> None:
    """``actual`` is a tensor of expected's shape in ``dtype`` on expected's device, and close to the float64 oracle.

    ``mistakes`` (a dict, or a function that makes one, called only when the values differ) names the
    known mistakes, as in :func:`assert_close`, which reports a failure.
    """
    check_form(label, actual, shape=tuple(expected.shape), dtype=dtype, device=expected.device)
    if within(actual.detach().double(), expected.detach().double(), **tolerance(dtype)):
        counted()
        return
    mistakes = mistakes() if callable(mistakes) else mistakes
    assert_close(label, actual, expected, mistakes=mistakes, exact_form=False, **tolerance(dtype))


def require_on_simulated_gpu(label: str, function: Callable, *args: Any) -> None:
    _, violations = run_on_simulated_gpu(function, *args)
    require(not violations, f"{label}, inputs on a GPU", violations[0] if violations else "")


# ------------------------------------------------------------------ recurrent cells


def recurrent_functions() -> dict[Callable, str]:
    """PyTorch's recurrent cells and layers (their forward and their parents' constructors) and functions."""
    functions: dict[Callable, str] = {}
    for name in ("rnn_relu_cell", "rnn_tanh_cell", "gru_cell", "lstm_cell", "rnn_relu", "rnn_tanh", "gru", "lstm"):
        functions[getattr(torch, name)] = f"torch.{name} (also reached as torch._VF.{name})"
    for module in (nn.RNNCell, nn.GRUCell, nn.LSTMCell, nn.RNN, nn.GRU, nn.LSTM):
        functions[module.forward] = f"nn.{module.__name__}"
    functions[nn.RNNCellBase.__init__] = "nn.RNNCellBase, the parent class of PyTorch's cells"
    functions[nn.RNNBase.__init__] = "nn.RNNBase, the parent class of PyTorch's recurrent layers"
    return functions


RECURRENT_FUNCTIONS = recurrent_functions()
GRADIENT_CONTRACT = (
    "the result depends only on this call's inputs and the parameters, through an intact autograd graph "
    "(nothing kept from an earlier call)"
)
CELL_CONTRACT = (
    "forward(x, h=None) returns the next state, an (N, hidden_size) tensor of x's dtype and device; h=None "
    "means zeros of x's dtype and device (LSTMCell: forward(x, state=None) returns the tuple (h', c'))"
)


def student_cell_call(label: str, function: Callable, *args: Any) -> Any:
    """Call the student's cell (or its class): errors name the case, PyTorch's recurrent code is forbidden."""
    with forbidding(label, RECURRENT_FUNCTIONS, "the recurrent cell, from tensor operations"):
        return call(label, function, *args, contract=CELL_CONTRACT)


def require_own_class(name: str, cls: type[nn.Module]) -> None:
    """The student's class is not PyTorch's recurrent cell or layer, nor derived from one.

    Checked by class as well as by forbidden_calls, to say plainly what is wrong.
    """
    for base in (nn.RNNCellBase, nn.RNNBase):
        pytorch = next((c for c in cls.__mro__ if c.__module__.startswith("torch.") and issubclass(c, base)), None)
        require(
            pytorch is None,
            name,
            f"{name} is PyTorch's nn.{getattr(pytorch, '__name__', '')} or derives from it: write the cell yourself, "
            "from tensor operations",
        )


class GatedReference(nn.Module):
    """The gated cell's equations written with explicit matrix products:
    z = sigmoid(x W_xz^T + b_z + h W_hz^T), h_bar = max(x W_xh^T + b_h + h W_hh^T, 0), h' = h_bar + z (h - h_bar).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h, self.x2z = (nn.Linear(input_size, hidden_size) for _ in range(2))
        self.h2h, self.h2z = (nn.Linear(hidden_size, hidden_size, bias=False) for _ in range(2))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device) if h is None else h
        z = 1 / (1 + torch.exp(-(x @ self.x2z.weight.T + self.x2z.bias + h @ self.h2z.weight.T)))
        h_bar = (x @ self.x2h.weight.T + self.x2h.bias + h @ self.h2h.weight.T).clamp(min=0)
        return h_bar + z * (h - h_bar)


def stacked_shapes(blocks: int) -> Callable[[int, int], dict[str, tuple[int, ...]]]:
    """PyTorch's layout: ``blocks`` gates stacked along the rows of weight_ih (blocks H, I), weight_hh (blocks H, H)."""

    def shapes(input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
        rows = blocks * hidden_size
        return {
            "weight_ih": (rows, input_size),
            "weight_hh": (rows, hidden_size),
            "bias_ih": (rows,),
            "bias_hh": (rows,),
        }

    return shapes


def gated_shapes(input_size: int, hidden_size: int) -> dict[str, tuple[int, ...]]:
    into, state = (hidden_size, input_size), (hidden_size, hidden_size)
    return {
        "x2h.weight": into,
        "x2h.bias": (hidden_size,),
        "h2h.weight": state,
        "x2z.weight": into,
        "x2z.bias": (hidden_size,),
        "h2z.weight": state,
    }


def pre_activations(p: dict[str, torch.Tensor], x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x @ p["weight_ih"].T + p["bias_ih"], h @ p["weight_hh"].T + p["bias_hh"]


def elman_mistakes(p, x, h, c=None) -> dict[str, torch.Tensor]:
    gi, gh = pre_activations(p, x, h)
    return {
        "ElmanCell applies ReLU (as nn.RNNCell(..., nonlinearity='relu')), not tanh": torch.tanh(gi + gh),
        "apply the ReLU: h' = relu(W_ih x + b_ih + W_hh h + b_hh)": gi + gh,
        "h' = relu(W_ih x + b_ih + W_hh h + b_hh), not a sigmoid": torch.sigmoid(gi + gh),
    }


def gated_mistakes(p, x, h, c=None) -> dict[str, torch.Tensor]:
    def linear(name: str, v: torch.Tensor) -> torch.Tensor:
        return v @ p[f"{name}.weight"].T + p.get(f"{name}.bias", 0)

    z_pre, h_pre = linear("x2z", x) + linear("h2z", h), linear("x2h", x) + linear("h2h", h)
    z, h_bar = torch.sigmoid(z_pre), torch.relu(h_pre)
    return {
        "z is the share of the OLD state that is kept: h' = z * h + (1 - z) * h_bar": (1 - z) * h + z * h_bar,
        "the candidate uses ReLU: h_bar = relu(x2h(x) + h2h(h)), not tanh": z * h + (1 - z) * torch.tanh(h_pre),
        "the gate goes through a sigmoid: z = sigmoid(x2z(x) + h2z(h))": z_pre * h + (1 - z_pre) * h_bar,
        "the gate reads the state too: z = sigmoid(x2z(x) + h2z(h))": (
            torch.sigmoid(linear("x2z", x)) * h + (1 - torch.sigmoid(linear("x2z", x))) * h_bar
        ),
        "the candidate reads the state too: h_bar = relu(x2h(x) + h2h(h))": (
            z * h + (1 - z) * torch.relu(linear("x2h", x))
        ),
    }


def gru_mistakes(p, x, h, c=None) -> dict[str, torch.Tensor]:
    (w_r, w_z, w_n), (u_r, u_z, u_n) = p["weight_ih"].chunk(3), p["weight_hh"].chunk(3)
    (b_r, b_z, b_n), (c_r, c_z, c_n) = p["bias_ih"].chunk(3), p["bias_hh"].chunk(3)
    r = torch.sigmoid(x @ w_r.T + b_r + h @ u_r.T + c_r)
    z = torch.sigmoid(x @ w_z.T + b_z + h @ u_z.T + c_z)
    n = torch.tanh(x @ w_n.T + b_n + r * (h @ u_n.T + c_n))
    n_swapped = torch.tanh(x @ w_n.T + b_n + z * (h @ u_n.T + c_n))  # r and z read from each other's rows
    return {
        "the update gate is the wrong way round: h' = (1 - z) * n + z * h keeps the share z of the OLD state": (
            z * n + (1 - z) * h
        ),
        "the gates are in the wrong order: PyTorch stacks them r, z, n (reset first)": (1 - r) * n_swapped + r * h,
        "the reset gate multiplies h before W_hn; PyTorch applies it to (W_hn h + b_hn)": (
            (1 - z) * torch.tanh(x @ w_n.T + b_n + (r * h) @ u_n.T + c_n) + z * h
        ),
        "b_hn must be inside the reset gate: n = tanh(W_in x + b_in + r * (W_hn h + b_hn))": (
            (1 - z) * torch.tanh(x @ w_n.T + b_n + r * (h @ u_n.T) + c_n) + z * h
        ),
        "the candidate n uses tanh": (1 - z) * torch.relu(x @ w_n.T + b_n + r * (h @ u_n.T + c_n)) + z * h,
    }


def lstm_mistakes(p, x, h, c) -> dict[str, torch.Tensor]:
    gi, gh = pre_activations(p, x, h)
    i, f, g, o = (gi + gh).chunk(4, dim=1)
    new_cell = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    c_ifog = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(o)
    return {
        "the gates are in the wrong order: PyTorch stacks them i, f, g, o": torch.sigmoid(g) * torch.tanh(c_ifog),
        "h' = o * tanh(c'): the new cell state goes through tanh before the output gate": torch.sigmoid(o) * new_cell,
        "the candidate g uses tanh, not sigmoid": torch.sigmoid(o)
        * torch.tanh(torch.sigmoid(f) * c + torch.sigmoid(i) * torch.sigmoid(g)),
        "the forget gate f multiplies the old cell state c, the input gate i the candidate g": torch.sigmoid(o)
        * torch.tanh(torch.sigmoid(i) * c + torch.sigmoid(f) * torch.tanh(g)),
        "forward must return the tuple (h, c) in this order; this is c": new_cell,
    }


@dataclass(frozen=True)
class CellContract:
    name: str  # the class the student writes
    pytorch: str  # the oracle, for messages
    shapes: Callable[[int, int], dict[str, tuple[int, ...]]]  # the exact state_dict
    reference: Callable[[int, int], nn.Module]  # computes the same from the same state_dict
    mistakes: Callable[..., dict[str, torch.Tensor]]
    pair_state: bool = False
    blocks: int = 1  # rows of H stacked per parameter, for the sample size of the initialisation check
    uniform_init: bool = True


def relu_rnn_cell(input_size: int, hidden_size: int) -> nn.RNNCell:
    return nn.RNNCell(input_size, hidden_size, nonlinearity="relu")


def relu_rnn(input_size: int, hidden_size: int) -> nn.RNN:
    return nn.RNN(input_size, hidden_size, nonlinearity="relu")


CELLS = {
    "ElmanCell": CellContract(
        name="ElmanCell",
        pytorch="nn.RNNCell(nonlinearity='relu')",
        shapes=stacked_shapes(1),
        reference=relu_rnn_cell,
        mistakes=elman_mistakes,
    ),
    "GatedCell": CellContract(
        name="GatedCell",
        pytorch="the gated cell's equations",
        shapes=gated_shapes,
        reference=GatedReference,
        mistakes=gated_mistakes,
        uniform_init=False,
    ),
    "GRUCell": CellContract(
        name="GRUCell",
        pytorch="nn.GRUCell",
        shapes=stacked_shapes(3),
        reference=nn.GRUCell,
        mistakes=gru_mistakes,
        blocks=3,
    ),
    "LSTMCell": CellContract(
        name="LSTMCell",
        pytorch="nn.LSTMCell",
        shapes=stacked_shapes(4),
        reference=nn.LSTMCell,
        mistakes=lstm_mistakes,
        pair_state=True,
        blocks=4,
    ),
}

# input_size, hidden_size, batch, dtype: the smallest sizes (1), batch 1 (where squeeze() drops the batch
# axis), input and hidden sizes that differ and are odd, and a float32 cell of the lab's experiment size.
CELL_SIZES = [
    (3, 4, 5, FLOAT64),
    (1, 1, 1, FLOAT64),
    (1, 6, 1, FLOAT64),
    (5, 1, 3, FLOAT64),
    (7, 11, 2, FLOAT64),
    (16, 48, 6, FLOAT32),
    (5, 3, 1, FLOAT32),
]
# how a case passes its inputs: (state given, x and state require grad, memory layout, state omitted)
CELL_VARIANTS = [
    (True, True, "contiguous", False),
    (False, False, "contiguous", False),
    (True, False, "transposed storage", False),
    (False, True, "strided view", True),
]


def reference_state(contract: CellContract, input_size: int, hidden_size: int, seed: int, dtype) -> dict:
    """Parameters U(-2/sqrt(H), 2/sqrt(H)) (pre-activations of both signs), float64 values rounded to ``dtype``."""
    bound = 2 / math.sqrt(hidden_size)
    shapes = contract.shapes(input_size, hidden_size)
    return {
        name: uniform(shape, seed=seed + k, low=-bound, high=bound).to(dtype).double()
        for k, (name, shape) in enumerate(sorted(shapes.items()))
    }


def build_cell(cls: type[nn.Module], name: str, input_size: int, hidden_size: int) -> nn.Module:
    label = f"{name}({input_size}, {hidden_size})"
    cell = student_cell_call(label, cls, input_size, hidden_size)
    require(isinstance(cell, nn.Module), label, f"expected an nn.Module, got {type(cell).__name__}")
    return cell


def check_parameters(label: str, cell: nn.Module, expected: dict[str, tuple[int, ...]], pytorch: str) -> None:
    """The state_dict holds exactly ``expected`` (names and shapes), all of them trainable nn.Parameters."""
    shapes = {key: tuple(value.shape) for key, value in cell.state_dict().items()}
    require(
        shapes == expected,
        label,
        f"the state_dict must hold exactly {expected} (the layout of {pytorch}), got {shapes}",
    )
    parameters = dict(cell.named_parameters())
    for key in expected:
        require(
            key in parameters,
            label,
            f"{key} is in the state_dict but is not an nn.Parameter (a buffer?): wrap it in nn.Parameter to train it",
        )
        require(parameters[key].requires_grad, label, f"{key}.requires_grad is False: parameters must be trainable")


@dataclass
class CellUnderTest:
    """The student's cell and its float64 oracle with the same parameters, and what the cell last returned."""

    contract: CellContract
    cell: nn.Module
    oracle: nn.Module
    parameters: dict[str, torch.Tensor]  # float64, what both compute with
    hidden_size: int
    dtype: torch.dtype
    device: torch.device
    previous: tuple[torch.Tensor, ...] | None = None  # the last next state(s), float64, for a diagnosis


def loaded_cells(
    cls, contract: CellContract, input_size: int, hidden_size: int, dtype, device, seed: int
) -> CellUnderTest:
    """The student's cell and the oracle, both holding the same parameters (the student's rounded to dtype)."""
    label = f"{contract.name}({input_size}, {hidden_size})"
    cell = build_cell(cls, contract.name, input_size, hidden_size)
    check_parameters(label, cell, contract.shapes(input_size, hidden_size), contract.pytorch)
    parameters = reference_state(contract, input_size, hidden_size, seed, dtype)
    cell = call(f"{label}.to({device.type}, {dtype})", cell.to, device, dtype)
    with torch.no_grad():
        cell.load_state_dict({key: value.to(device, dtype) for key, value in parameters.items()})
    oracle = contract.reference(input_size, hidden_size).to(device, FLOAT64)
    oracle.load_state_dict({key: value.to(device) for key, value in parameters.items()})
    return CellUnderTest(contract, cell, oracle, parameters, hidden_size, dtype, device)


def next_states(label: str, result: Any, pair_state: bool, batch: int, hidden: int, dtype, device) -> tuple:
    """The answer's next state(s), each checked for form: (h',) or (h', c')."""
    if pair_state:
        require(
            isinstance(result, tuple) and len(result) == 2,
            label,
            f"must return the tuple (h', c'), got {describe(result)}",
        )
        parts = dict(zip(("h'", "c'"), result, strict=True))
    else:
        require(
            isinstance(result, torch.Tensor),
            label,
            f"must return the next state, a tensor, got {describe(result)}"
            + (" (did you forget to return it?)" if result is None else ""),
        )
        parts = {"h'": result}
    for part, value in parts.items():
        if batch == 1 and isinstance(value, torch.Tensor) and value.dim() < 2:
            shape = tuple(value.shape)
            fail(f"{label}: {part}", f"shape {shape}, expected (1, {hidden}): keep the batch axis (no squeeze())")
        check_form(f"{label}: {part}", value, shape=(batch, hidden), dtype=dtype, device=device)
        require(
            value.requires_grad,
            f"{label}: {part}",
            "does not require grad: keep the autograd graph (no .detach(), .data or torch.no_grad())",
        )
    return tuple(parts.values())


def compare_cell(tested: CellUnderTest, x: torch.Tensor, state: Any, omit_state: bool, seed: int) -> None:
    """Call the cell once and compare the next state and every gradient with the float64 oracle."""
    contract, cell, dtype = tested.contract, tested.cell, tested.dtype
    states = list(state) if isinstance(state, tuple) else ([] if state is None else [state])
    args = (x,) if omit_state else (x, state)
    label = case(contract.name, *args)
    snapshot = Snapshot(x=x, h=states[0] if states else None, c=states[1] if len(states) > 1 else None, cell=cell)
    x64, states64 = as_oracle_input(x), [as_oracle_input(s) for s in states]
    result = student_cell_call(label, cell, *args)
    batch, hidden = x.shape[0], tested.hidden_size
    outputs = next_states(label, result, contract.pair_state, batch, hidden, dtype, x.device)

    state64 = (tuple(states64) if contract.pair_state else states64[0]) if states else None
    expected = tested.oracle(x64, state64)
    expected = tuple(expected) if contract.pair_state else (expected,)
    zeros = x64.new_zeros(batch, hidden)

    previous = tested.previous
    tested.previous = tuple(out.detach().to(FLOAT64, copy=True) for out in outputs)

    @torch.no_grad()
    def mistakes() -> dict[str, torch.Tensor]:
        known = contract.mistakes(
            {k: v.to(x.device) for k, v in tested.parameters.items()},
            x64,
            states64[0] if states else zeros,
            states64[1] if len(states) > 1 else zeros,
        )
        if not states and previous is not None and previous[0].shape == (batch, hidden):
            kept = tested.oracle(x64, previous if contract.pair_state else previous[0])
            stateful = "h=None must mean zeros: this continues from the state of the previous call; keep nothing"
            known[stateful + " between calls"] = kept[0] if contract.pair_state else kept
        return known

    close(f"{label}: h'", outputs[0], expected[0].detach(), dtype, mistakes=mistakes)
    if contract.pair_state:
        close(f"{label}: c'", outputs[1], expected[1].detach(), dtype)

    weights = [draw((batch, hidden), seed + 50 + k, dtype).to(x.device) for k in range(len(outputs))]
    leaves = [t for t in (x, *states) if t.requires_grad]
    leaves64 = [t for t in (x64, *states64) if t.requires_grad]
    names = [n for n, t in zip(("x", "h", "c"), (x, *states), strict=False) if t.requires_grad]
    parameters = dict(cell.named_parameters())
    oracle_parameters = dict(tested.oracle.named_parameters())
    keys = sorted(oracle_parameters)
    grads = call(
        f"{label}: gradients of the next state",
        gradients,
        outputs,
        weights,
        leaves + [parameters[key] for key in keys],
        contract=GRADIENT_CONTRACT,
    )
    expected_grads = gradients(expected, weights, leaves64 + [oracle_parameters[key] for key in keys])
    for name, grad, grad64 in zip(names + keys, grads, expected_grads, strict=True):
        close(f"{label}: gradient with respect to {name}", grad, grad64, dtype)
    snapshot.assert_unchanged(label)


def cell_inputs(
    tested: CellUnderTest, batch: int, input_size: int, seed: int, given: bool, requires_grad: bool, layout
):
    """x (and the state, a tensor or the pair (h, c)) in the case's dtype, device and layout."""
    device, dtype, hidden = tested.device, tested.dtype, tested.hidden_size
    x = on(draw((batch, input_size), seed, dtype), device, dtype, layout).requires_grad_(requires_grad)
    if not given:
        return x, None
    h, c = (on(draw((batch, hidden), seed + k, dtype), device, dtype, layout) for k in (1, 2))
    h, c = h.requires_grad_(requires_grad), c.requires_grad_(requires_grad)
    return x, ((h, c) if tested.contract.pair_state else h)


def check_cell(namespace: MutableMapping[str, Any], contract: CellContract) -> None:
    student = Student(namespace)
    cls = student.module_class(contract.name)
    device, name = student.device, contract.name
    with torch.random.fork_rng(devices=[]):  # the notebook's generator is left as it was
        torch.manual_seed(0)

        with group(
            f"{name}: own class; state_dict names and shapes as in {contract.pytorch}; nn.Parameters; sizes 1 to 48"
        ):
            require_own_class(name, cls)
            for input_size, hidden_size in [(3, 4), (1, 1), (6, 2), (16, 48)]:
                cell = build_cell(cls, name, input_size, hidden_size)
                label = f"{name}({input_size}, {hidden_size})"
                check_parameters(label, cell, contract.shapes(input_size, hidden_size), contract.pytorch)
            if name == "GatedCell":
                for part in ("x2h", "h2h", "x2z", "h2z"):
                    message = "GatedCell needs nn.Linear submodules named x2h, h2h, x2z and h2z"
                    require(isinstance(getattr(cell, part, None), nn.Linear), f"{label}.{part}", message)

        with group(
            f"{name} against {contract.pytorch} in float64: values and gradients (x, state, parameters); "
            "batch 1, sizes 1, odd sizes, float32, state given and None, non-contiguous inputs"
        ):
            for seed, (input_size, hidden_size, batch, dtype) in enumerate(CELL_SIZES):
                tested = loaded_cells(cls, contract, input_size, hidden_size, dtype, device, seed=100 * seed)
                for k, (given, requires_grad, layout, omit) in enumerate(CELL_VARIANTS):
                    x, state = cell_inputs(tested, batch, input_size, 100 * seed + 10 * k, given, requires_grad, layout)
                    compare_cell(tested, x, state, omit, seed=100 * seed + 10 * k)

        with group(f"{name}: nothing kept between calls (state=None after other inputs and other batch sizes)"):
            tested = loaded_cells(cls, contract, 4, 3, FLOAT64, device, seed=900)
            x, state = cell_inputs(tested, 2, 4, 901, True, False, "contiguous")
            other, _ = cell_inputs(tested, 5, 4, 902, False, False, "contiguous")
            for x_now, state_now in [(x, state), (other, None), (x, None), (other, None), (x, state), (x, None)]:
                compare_cell(tested, x_now, state_now, omit_state=False, seed=903)

        if device.type == "cpu":
            with group(f"{name}: on a simulated GPU, nothing made on the CPU (the zero state on x's device)"):
                tested = loaded_cells(cls, contract, 3, 4, FLOAT32, device, seed=950)
                for given in (False, True):
                    x, state = cell_inputs(tested, 2, 3, 951, given, False, "contiguous")
                    require_on_simulated_gpu(case(name, x, state), tested.cell, x, state)

        if contract.uniform_init:
            check_initialisation(cls, contract)


def check_initialisation(cls: type[nn.Module], contract: CellContract) -> None:
    """Pool fresh cells until every parameter, biases included, has at least 2000 entries."""
    input_size, hidden_size = 7, 50  # 1/sqrt(H) differs from 1/sqrt(I), 1/H, 1/sqrt(3H), 1/sqrt(4H)
    count = math.ceil(2000 / (contract.blocks * hidden_size))
    title = (
        f"{contract.name}: initialisation U(-1/sqrt(H), 1/sqrt(H)) over {count} fresh cells "
        f"({contract.name}({input_size}, {hidden_size})): bounds, mean, spread, extremes, new draws per cell"
    )
    with group(title):
        cells = [build_cell(cls, contract.name, input_size, hidden_size) for _ in range(count)]
        with contextlib.redirect_stdout(io.StringIO()):
            checks = check_uniform_init(f"{contract.name}({input_size}, {hidden_size})", cells, hidden_size)
        for _ in range(checks):
            counted()


def check_elman(namespace: MutableMapping[str, Any]) -> None:
    """ElmanCell: h' = relu(W_ih x + b_ih + W_hh h + b_hh), against nn.RNNCell(nonlinearity='relu')."""
    check_cell(namespace, CELLS["ElmanCell"])


def check_gated(namespace: MutableMapping[str, Any]) -> None:
    """GatedCell: z = sigmoid(x2z(x) + h2z(h)), h_bar = relu(x2h(x) + h2h(h)), h' = z h + (1 - z) h_bar."""
    check_cell(namespace, CELLS["GatedCell"])


def check_gru(namespace: MutableMapping[str, Any]) -> None:
    """GRUCell against nn.GRUCell (gates r, z, n; the reset gate multiplies W_hn h + b_hn)."""
    check_cell(namespace, CELLS["GRUCell"])


def check_lstm(namespace: MutableMapping[str, Any]) -> None:
    """LSTMCell against nn.LSTMCell (gates i, f, g, o; returns (h', c'))."""
    check_cell(namespace, CELLS["LSTMCell"])


# ------------------------------------------------------------------ unroll


class TensorElmanCell(nn.Module):
    """A correct Elman cell written from tensor operations, as a student writes one (state: a tensor)."""

    blocks = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        for name, shape in stacked_shapes(self.blocks)(input_size, hidden_size).items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape)))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        return (x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias_ih + self.bias_hh).clamp_min(0)


class TensorLSTMCell(TensorElmanCell):
    """A correct LSTM cell written from tensor operations (state: the tuple (h, c))."""

    blocks = 4

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        if state is None:
            state = (x.new_zeros(x.shape[0], self.hidden_size), x.new_zeros(x.shape[0], self.hidden_size))
        h, c = state
        blocks = (x @ self.weight_ih.T + h @ self.weight_hh.T + self.bias_ih + self.bias_hh).chunk(4, dim=1)
        input_gate, forget_gate, candidate, output_gate = blocks
        cell = forget_gate.sigmoid() * c + input_gate.sigmoid() * candidate.tanh()
        return output_gate.sigmoid() * cell.tanh(), cell


@dataclass(frozen=True)
class UnrollCell:
    description: str
    cell: Callable[[int, int], nn.Module]
    layer: Callable[[int, int], nn.Module]  # the whole-sequence layer computing the same
    pair_state: bool = False


UNROLL_CELLS = [
    UnrollCell("nn.RNNCell(relu)", relu_rnn_cell, relu_rnn),
    UnrollCell("nn.RNNCell(tanh)", nn.RNNCell, nn.RNN),
    UnrollCell("nn.GRUCell", nn.GRUCell, nn.GRU),
    UnrollCell("nn.LSTMCell", nn.LSTMCell, nn.LSTM, pair_state=True),
    UnrollCell("an Elman cell written from tensor operations", TensorElmanCell, relu_rnn),
    UnrollCell("an LSTM cell written from tensor operations", TensorLSTMCell, nn.LSTM, pair_state=True),
]
# steps T, batch N, input size, hidden size, dtype, state given (it requires grad), xs's layout, xs requires grad
UNROLL_CASES = [
    (1, 3, 4, 5, FLOAT64, True, "contiguous", True),  # the smallest T
    (7, 1, 3, 4, FLOAT64, False, "contiguous", True),  # odd T, batch 1, state None
    (5, 2, 3, 3, FLOAT32, True, "batch-first transposed", False),  # (N, T, I).transpose(0, 1)
    (4, 3, 2, 5, FLOAT64, True, "strided view", False),
]
UNROLL_CONTRACT = (
    "unroll(cell, xs, state=None) returns the tuple (outputs, final_state): outputs the (T, N, H) tensor of the "
    "hidden states after each step, with xs's dtype and device, and the final state as the cell returned it"
)


def cell_and_layer(kind: UnrollCell, input_size: int, hidden_size: int, dtype, device, seed: int):
    """A cell in ``dtype`` and the float64 layer that computes the same, both with the same (rounded) weights."""
    layer = kind.layer(input_size, hidden_size).to(device, FLOAT64)
    bound = 2 / math.sqrt(hidden_size)
    with torch.no_grad():
        for k, (_, parameter) in enumerate(sorted(layer.named_parameters())):
            parameter.copy_(uniform(parameter.shape, seed=seed + k, low=-bound, high=bound).to(dtype).double())
    cell = kind.cell(input_size, hidden_size).to(device, dtype)
    cell.load_state_dict({key.removesuffix("_l0"): value.to(dtype) for key, value in layer.state_dict().items()})
    return cell, layer


def unroll_inputs(kind: UnrollCell, steps, batch, input_size, hidden, dtype, device, given, layout, grad, seed):
    if layout == "batch-first transposed":
        xs = on(draw((batch, steps, input_size), seed, dtype), device, dtype).transpose(0, 1)
    else:
        xs = on(draw((steps, batch, input_size), seed, dtype), device, dtype, layout)
    xs.requires_grad_(grad)
    if not given:
        return xs, None
    h0, c0 = (on(draw((batch, hidden), seed + k, dtype), device, dtype).requires_grad_(True) for k in (1, 2))
    return xs, ((h0, c0) if kind.pair_state else h0)


def stepwise(cell64: nn.Module, xs: torch.Tensor, state: Any, detach: bool):
    """The loop with the oracle's cell, cutting the graph between steps when ``detach`` (truncated BPTT)."""
    trace = []
    for step in range(xs.shape[0]):
        if detach and state is not None:
            state = state.detach() if torch.is_tensor(state) else tuple(part.detach() for part in state)
        state = cell64(xs[step], state)
        trace.append(state if torch.is_tensor(state) else state[0])
    return torch.stack(trace), state


def compare_unroll(unroll: Callable, kind: UnrollCell, cell, layer, xs, state, seed: int) -> None:
    label = case("unroll", kind.description, xs, state)
    dtype, device = xs.dtype, xs.device
    batch, hidden = xs.shape[1], layer.hidden_size
    states = list(state) if isinstance(state, tuple) else ([] if state is None else [state])
    snapshot = Snapshot(xs=xs, h0=states[0] if states else None, c0=states[1] if len(states) > 1 else None, cell=cell)
    xs64, states64 = as_oracle_input(xs), [as_oracle_input(s) for s in states]
    result = call(label, unroll, cell, xs, state, contract=UNROLL_CONTRACT)
    require(
        isinstance(result, tuple) and len(result) == 2,
        label,
        f"must return the tuple (outputs, final_state), got {describe(result)}",
    )
    outputs, final = result
    finals = final if kind.pair_state else (final,)
    if kind.pair_state:
        require(
            isinstance(final, tuple) and len(final) == 2,
            f"{label}: final state",
            f"for a cell whose state is the tuple (h, c), return that tuple as the final state, got {describe(final)}",
        )

    layer_state = None if not states else tuple(s[None] for s in states64) if kind.pair_state else states64[0][None]
    expected_outputs, expected_final = layer(xs64, layer_state)
    expected_finals = tuple(s[0] for s in expected_final) if kind.pair_state else (expected_final[0],)
    shifted = "outputs[t] is the state AFTER step t (the state before the first step is not an output)"
    mistakes = {shifted: torch.cat([states64[0][None], expected_outputs[:-1]])} if states else {}
    close(f"{label}: outputs", outputs, expected_outputs.detach(), dtype, mistakes=mistakes)
    final_mistakes = {"the final state is the state after the LAST step": expected_outputs[0]}
    if states:
        final_mistakes["the final state is the state after the last step, not the initial state"] = states64[0]
    for part, value, expected in zip(("h", "c"), finals, expected_finals, strict=False):
        mistakes = {why: wrong.detach() for why, wrong in final_mistakes.items()} if part == "h" else None
        close(f"{label}: final {part}", value, expected.detach(), dtype, mistakes=mistakes)

    weights = [draw(expected_outputs.shape, seed + 60, dtype).to(device)]
    weights += [draw((batch, hidden), seed + 61 + k, dtype).to(device) for k in range(len(finals))]
    leaves = [t for t in (xs, *states) if t.requires_grad]
    leaves64 = [t for t in (xs64, *states64) if t.requires_grad]
    given = ("xs", "the initial h", "the initial c")[: 1 + len(states)]
    names = [n for n, t in zip(given, (xs, *states), strict=True) if t.requires_grad]
    cell_parameters = dict(cell.named_parameters())
    layer_parameters = {key.removesuffix("_l0"): value for key, value in layer.named_parameters()}
    keys = sorted(layer_parameters)
    for value in (outputs, *finals):
        require(value.requires_grad, label, "the result does not require grad: keep the graph (no .detach(), .data)")
    grads = call(
        f"{label}: gradients of the outputs and final state",
        gradients,
        (outputs, *finals),
        weights,
        leaves + [cell_parameters[key] for key in keys],
        contract=GRADIENT_CONTRACT,
    )
    expected_grads = gradients(
        (expected_outputs, *expected_finals), weights, leaves64 + [layer_parameters[key] for key in keys]
    )
    for index, (name, grad, grad64) in enumerate(zip(names + keys, grads, expected_grads, strict=True)):

        def mistakes(index=index) -> dict[str, torch.Tensor]:
            truncated = truncated_gradients(kind, layer, xs64, states64, weights)
            detached = "gradients must flow through every step: do not detach the state between steps"
            return {detached: truncated[index]} if index < len(truncated) else {}

        close(f"{label}: gradient with respect to {name}", grad, grad64, dtype, mistakes=mistakes)
    snapshot.assert_unchanged(label)


def truncated_gradients(kind, layer, xs64, states64, weights) -> list[torch.Tensor]:
    """What the leaves' gradients would be if the state were detached between steps."""
    cell64 = kind.cell(layer.input_size, layer.hidden_size).to(xs64.device, FLOAT64)
    cell64.load_state_dict({key.removesuffix("_l0"): value for key, value in layer.state_dict().items()})
    xs, states = xs64.detach().requires_grad_(xs64.requires_grad), [s.detach().requires_grad_(True) for s in states64]
    state = None if not states else tuple(states) if kind.pair_state else states[0]
    outputs, final = stepwise(cell64, xs, state, detach=True)
    finals = final if kind.pair_state else (final,)
    leaves = [t for t, original in zip((xs, *states), (xs64, *states64), strict=True) if original.requires_grad]
    return gradients((outputs, *finals), weights, leaves)


def check_unroll(namespace: MutableMapping[str, Any]) -> None:
    """unroll(cell, xs, state=None) against nn.RNN, nn.GRU and nn.LSTM holding the cell's weights."""
    student = Student(namespace)
    unroll = student.function("unroll")
    device = student.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        with group(
            "unroll against nn.RNN/GRU/LSTM: PyTorch's cells and cells written from tensors; T = 1 and odd, "
            "batch 1, float32, state given and None, non-contiguous xs; outputs, final state, gradients"
        ):
            for k, kind in enumerate(UNROLL_CELLS):
                for j, (steps, batch, input_size, hidden, dtype, given, layout, grad) in enumerate(UNROLL_CASES):
                    seed = 1000 + 100 * k + 10 * j
                    cell, layer = cell_and_layer(kind, input_size, hidden, dtype, device, seed)
                    sizes = (steps, batch, input_size, hidden)
                    xs, state = unroll_inputs(kind, *sizes, dtype, device, given, layout, grad, seed + 5)
                    compare_unroll(unroll, kind, cell, layer, xs, state, seed)

        with group("unroll: nothing kept between calls (the same call twice, other lengths in between)"):
            kind = UNROLL_CELLS[3]
            cell, layer = cell_and_layer(kind, 3, 4, FLOAT64, device, 2000)
            for steps in (3, 5, 3):
                xs, state = unroll_inputs(kind, steps, 2, 3, 4, FLOAT64, device, False, "contiguous", True, 2001)
                compare_unroll(unroll, kind, cell, layer, xs, state, 2002)

        if device.type == "cpu":
            with group("unroll on a simulated GPU: outputs and states on xs's device"):
                for kind in (UNROLL_CELLS[2], UNROLL_CELLS[5]):
                    cell, _ = cell_and_layer(kind, 3, 4, FLOAT32, device, 2100)
                    for given in (False, True):
                        xs, state = unroll_inputs(kind, 5, 2, 3, 4, FLOAT32, device, given, "contiguous", False, 2101)
                        label = case("unroll", kind.description, xs, state)
                        require_on_simulated_gpu(label, unroll, cell, xs, state)


# ------------------------------------------------------------------ balanced coloured parentheses


def reference_is_balanced(seq, n_pairs: int = 5) -> bool:
    """Delete adjacent pairs (i, 2P - 1 - i) until none is left: a word is balanced when nothing remains.

    Symbols outside 0 .. 2P - 1 make a word unbalanced.
    """
    word = [int(symbol) for symbol in seq]
    if any(not 0 <= symbol < 2 * n_pairs for symbol in word):
        return False
    deleted = True
    while deleted:
        deleted = False
        for k in range(len(word) - 1):
            if word[k] < n_pairs and word[k + 1] == 2 * n_pairs - 1 - word[k]:
                del word[k : k + 2]
                deleted = True
                break
    return not word


def explain(word: Sequence[int], n_pairs: int) -> str:
    """Why ``word`` is (or is not) balanced, in the words of the lab's definition."""
    closes = 2 * n_pairs - 1
    for symbol in word:
        if not 0 <= symbol <= closes:
            return f"{symbol} is not a symbol when n_pairs = {n_pairs} (symbols are 0 to {closes}): not balanced"
    still_open: list[int] = []
    for position, symbol in enumerate(word):
        opening = symbol < n_pairs
        if opening:
            still_open.append(symbol)
        elif not still_open:
            return f"symbol {symbol} at position {position} closes a bracket while none is open"
        elif still_open.pop() != closes - symbol:
            return (
                f"symbol {symbol} at position {position} closes colour {closes - symbol} while the most recent open "
                "bracket has another colour"
            )
    if still_open:
        return f"{len(still_open)} bracket(s) are still open at the end"
    return "every closing symbol closes the most recent open bracket, of the same colour, and none is left open"


IS_BALANCED_CONTRACT = "is_balanced(seq, n_pairs=5) takes a list or tuple of ints and returns a Python bool"


def word_call(word: Sequence[int], n_pairs: int | None, keyword: bool = False) -> tuple[str, tuple, dict]:
    """(label, args, kwargs) of one call of is_balanced on a copy of ``word``."""
    given = list(word) if isinstance(word, list) else tuple(word)
    if n_pairs is None:
        return f"is_balanced({given!r})", (given,), {}
    if keyword:
        return f"is_balanced({given!r}, n_pairs={n_pairs})", (given,), {"n_pairs": n_pairs}
    return f"is_balanced({given!r}, {n_pairs})", (given, n_pairs), {}


def check_words(is_balanced: Callable, cases: list[tuple[Sequence[int], int | None, bool]]) -> None:
    """Calls of the student's is_balanced, ``(word, n_pairs, keyword)`` each: a Python bool, the oracle's value,
    the word left unchanged. The calls go in one batch; messages are made only on failure."""
    calls = [word_call(word, n_pairs, keyword) for word, n_pairs, keyword in cases]
    befores = [list(args[0]) for _, args, _ in calls]
    outcomes = call_each(is_balanced, [(args, kwargs) for _, args, kwargs in calls])
    for (label, args, _), before, (_, n_pairs, _), (result, error) in zip(calls, befores, cases, outcomes, strict=True):
        if error is not None:
            fail(label, f"raised {type(error).__name__}: {error}. The contract: {IS_BALANCED_CONTRACT}")
        if type(result) is not bool:
            kind = type(result).__name__
            fail(
                label,
                f"returned {result!r} of type {kind}; return a Python bool, True or False (not 0/1, no NumPy bool)",
            )
        if list(args[0]) != before:
            fail(label, "modified seq; read the word without changing it (work on a copy)")
        n_pairs = 5 if n_pairs is None else n_pairs
        expected = reference_is_balanced(before, n_pairs)
        if result != expected:
            fail(label, f"returned {result}, expected {expected}: {explain(before, n_pairs)}")
        counted()


def check_word(is_balanced: Callable, word: Sequence[int], n_pairs: int | None, keyword: bool = False) -> None:
    """One call of the student's is_balanced (see check_words)."""
    check_words(is_balanced, [(word, n_pairs, keyword)])


HAND_WORDS = [
    # the lab's table, with the default n_pairs
    ([2, 7, 0, 9], None), ([1, 3, 6, 8], None), ([0, 8], None), ([9, 0], None), ([0, 1, 9, 8], None),
    # the empty word; one pair of each colour; nesting and side by side
    ([], 5), ((), 1), ([], None), ([3, 6], 5), (list(range(10)), 5), ([4, 5, 3, 6, 0, 9], 5), ((2, 1, 8, 7), 5),
    # left open, closing nothing, wrong colours, right counts in the wrong order
    ([0, 9, 3], 5), ([0, 9, 9], 5), ([0, 1, 7, 9], 5), ([1, 0, 9, 9], 5), ([9, 8, 1, 0], 5), ([0, 1, 9, 8], 5),
    # other numbers of colours: 1, 3 and 7
    ([0, 1], 1), ([1, 0], 1), ((0, 0, 1, 1), 1), ([0, 1, 0, 1], 1), ([0, 0, 1], 1),
    ([0, 2, 3, 5], 3), ([0, 5, 1, 4, 2, 3], 3), ([0, 9], 3), ([2, 4], 3),
    ([0, 13], 7), ([6, 7], 7), (list(range(14)), 7), ([6, 8], 7), ((3, 10, 5, 8), 7),
    # symbols out of range: too large, negative, and pairs that "match" when the range is not checked
    ([0, 10, 9], 5), ([-1, 9], 5), ([-1, 10], 5), ([10, -1], 5), ([-2, 7], 3), ([-1, 2], 1), ([2, -1], 1),
    ([0, 2, 9], 1), ([5], 3), ([-3], 5),
]  # fmt: skip


@st.composite
def corrupted_words(draw) -> tuple[list[int], int]:
    """A balanced word built by construction for n_pairs in 1, 3, 5, 7, then possibly one edit of it."""
    n_pairs = draw(st.sampled_from([1, 3, 5, 7]))
    pairs = draw(st.integers(0, 8))
    word: list[int] = []
    still_open: list[int] = []
    opens_left = pairs
    while opens_left or still_open:
        if opens_left and (not still_open or draw(st.booleans())):
            still_open.append(draw(st.integers(0, n_pairs - 1)))
            word.append(still_open[-1])
            opens_left -= 1
        else:
            word.append(2 * n_pairs - 1 - still_open.pop())
    edit = draw(st.sampled_from(["none", "none", "substitute", "delete", "insert", "swap"]))
    symbol = draw(st.integers(-2, 2 * n_pairs + 1))
    if edit == "substitute" and word:
        word[draw(st.integers(0, len(word) - 1))] = symbol
    elif edit == "delete" and word:
        del word[draw(st.integers(0, len(word) - 1))]
    elif edit == "insert":
        word.insert(draw(st.integers(0, len(word))), symbol)
    elif edit == "swap" and len(word) >= 2:
        k = draw(st.integers(0, len(word) - 2))
        word[k], word[k + 1] = word[k + 1], word[k]
    return word, n_pairs


def check_is_balanced(namespace: MutableMapping[str, Any]) -> None:
    """is_balanced(seq, n_pairs=5) against pair deletion: hand-picked, generated, corrupted and exhaustive words."""
    student = Student(namespace)
    is_balanced = student.function("is_balanced")

    with group("is_balanced: the lab's table, the empty word, n_pairs 1, 3, 5, 7, symbols out of range, tuples"):
        hand = [(word, n_pairs, False) for word, n_pairs in HAND_WORDS]
        check_words(is_balanced, [*hand, ([0, 5, 1, 4], 3, True), ((0, 4, 5, 9), 5, True)])

    with group("is_balanced on generated words: balanced by construction and after one edit (n_pairs 1, 3, 5, 7)"):
        for_all(corrupted_words(), lambda drawn: check_word(is_balanced, drawn[0], drawn[1]), examples=40)

    with group("is_balanced on every word up to length 6 (n_pairs = 1, symbols -1 to 2) and 4 (n_pairs = 2)"):
        for n_pairs, symbols, longest in [(1, range(-1, 3), 6), (2, range(4), 4)]:
            words = [list(word) for length in range(longest + 1) for word in itertools.product(symbols, repeat=length)]
            check_words(is_balanced, [(word, n_pairs, False) for word in words])


# ------------------------------------------------------------------ the data set


class TooManyChecks(BaseException):
    """Raised by the lent is_balanced when a generator keeps drawing rejected candidates."""


class LentChecker:
    """A correct is_balanced, lent to the student's generator, that counts its calls and stops a runaway loop."""

    def __init__(self):
        self.calls, self.budget = 0, 0

    def __call__(self, seq, n_pairs: int = 5) -> bool:
        self.calls += 1
        if self.calls > self.budget:
            raise TooManyChecks
        return reference_is_balanced(seq, n_pairs)


SECONDS_PER_CALL = 5
CHECKS_PER_WORD = 100
DATA_CONTRACT = (
    "make_parentheses_data(n, max_len, n_pairs=5, seed=0) returns the tuple (sequences, labels) for n >= 1, "
    "max_len >= 2, n_pairs >= 2"
)


def generate(make: Callable, checker: LentChecker, n: int, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Call the student's generator with a bounded number of checks and a time limit; (label, result)."""
    label = case("make_parentheses_data", n, *args, **kwargs)
    checker.calls, checker.budget = 0, CHECKS_PER_WORD * n + 1000
    try:
        with time_limit(SECONDS_PER_CALL):
            result = call(label, make, n, *args, contract=DATA_CONTRACT, **kwargs)
    except TooManyChecks:
        fail(
            label,
            f"called is_balanced more than {checker.budget} times ({CHECKS_PER_WORD} per word): with a correct "
            "is_balanced your generator keeps drawing candidates it rejects (or loops forever); draw negatives "
            "that are usually unbalanced, and balanced words by construction",
        )
    except OutOfTime:
        fail(label, f"did not return within {SECONDS_PER_CALL} s (an endless loop?); build words directly")
    return label, result


def is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def depth_ok(word: Sequence[int], n_pairs: int) -> bool:
    """Well nested when colours are ignored: no prefix closes more than it opens, and all close at the end."""
    depth = 0
    for symbol in word:
        depth += 1 if symbol < n_pairs else -1
        if depth < 0:
            return False
    return depth == 0


def nesting_depth(word: Sequence[int], n_pairs: int) -> int:
    depths = itertools.accumulate(1 if symbol < n_pairs else -1 for symbol in word)
    return max(depths, default=0)


def check_data_form(label: str, result: Any, n: int, max_len: int, n_pairs: int):
    """The promises every call keeps: types, sizes, lengths, symbols, labels right, hard negatives."""
    require(
        isinstance(result, tuple) and len(result) == 2,
        label,
        f"must return the tuple (sequences, labels), got {describe(result)}",
    )
    sequences, labels = result
    require(isinstance(sequences, list), label, f"sequences must be a list, got {type(sequences).__name__}")
    require(isinstance(labels, list), label, f"labels must be a list, got {type(labels).__name__}")
    sizes = f"expected {n} words and {n} labels, got {len(sequences)} and {len(labels)}"
    require(len(sequences) == n and len(labels) == n, label, sizes)
    for word in sequences:
        require(isinstance(word, list), label, f"each word must be a list of ints, got {describe(word)}")
        require(all(is_integer(s) for s in word), label, f"symbols must be ints, got {word!r}")
        require(all(0 <= s < 2 * n_pairs for s in word), label, f"symbols lie in 0..{2 * n_pairs - 1}, got {word!r}")
        require(
            len(word) % 2 == 0 and 2 <= len(word) <= max_len,
            label,
            f"every word has an even length between 2 and max_len = {max_len}; got one of length {len(word)}",
        )
    require(
        all(is_integer(y) and y in (0, 1) for y in labels),
        label,
        f"labels are the ints 1 (balanced) and 0 (not; ints, not bools or floats), got {labels[:5]!r}...",
    )
    words, labels = [[int(s) for s in w] for w in sequences], [int(y) for y in labels]
    require(sum(labels) == n // 2, label, f"expected n // 2 = {n // 2} balanced words (label 1), got {sum(labels)}")
    for word, y in zip(words, labels, strict=True):
        balanced = reference_is_balanced(word, n_pairs)
        require(balanced == bool(y), label, f"the word {word} has label {y}, but {explain(word, n_pairs)}")
        require(
            y == 1 or 2 * sum(s < n_pairs for s in word) == len(word),
            label,
            f"the negative {word} does not have as many opening as closing symbols (counting would spot it)",
        )
    return words, labels


def check_data_statistics(label: str, words: list, labels: list, max_len: int, n_pairs: int) -> None:
    """What a large sample shows (n >= 200): every length, both kinds of negatives, varied positives, shuffled."""
    n = len(words)
    lengths = {len(w) for w in words}
    require(
        lengths == set(range(2, max_len + 1, 2)),
        label,
        f"every even length from 2 to {max_len} should occur (draw the number of pairs uniformly from 1 to "
        f"max_len // 2), got only {sorted(lengths)}",
    )
    negatives = [w for w, y in zip(words, labels, strict=True) if y == 0]
    positives = [w for w, y in zip(words, labels, strict=True) if y == 1]
    colour = sum(depth_ok(w, n_pairs) for w in negatives) / len(negatives)
    require(
        0.2 <= colour <= 0.8,
        label,
        f"{colour:.0%} of the negatives are well nested apart from a colour; make about half of them wrong in colour "
        "and half wrong in order",
    )
    depths = [nesting_depth(w, n_pairs) for w in positives]
    side_by_side = any(d == 1 and len(w) >= 4 for d, w in zip(depths, positives, strict=True))
    require(
        min(depths) == 1 and max(depths) >= min(3, max_len // 2) and side_by_side,
        label,
        "balanced words should be drawn at random: some nested deeply, some with pairs side by side",
    )
    colours = {s for w in positives for s in w if s < n_pairs}
    require(
        colours == set(range(n_pairs)),
        label,
        f"balanced words should use every colour 0..{n_pairs - 1}, got {sorted(colours)}",
    )
    # Positives among the first half of a random order: hypergeometric, standard deviation about sqrt(n) / 4;
    # 6 standard deviations.
    first_half = sum(labels[: n // 2])
    require(
        abs(first_half - (n // 2) ** 2 / n) <= 6 * math.sqrt(n) / 4 + 1,
        label,
        f"{first_half} of the first {n // 2} words are balanced: shuffle positives and negatives together",
    )


def check_kinds_of_negatives(label: str, words: list, labels: list, n_pairs: int) -> None:
    """Words of length 2 tell the kinds apart: [c, closer of d != c] is wrong in colour, [closer, opener] in order.

    Each negative is of either kind with probability 1/2 (or the kinds alternate), so the share of wrong
    colours among m negatives is 1/2 within 6 standard errors, 6 sqrt(1 / (4 m)).
    """
    negatives = [w for w, y in zip(words, labels, strict=True) if y == 0]
    share = sum(w[0] < n_pairs for w in negatives) / len(negatives)
    tolerance = 6 * math.sqrt(1 / (4 * len(negatives)))
    require(
        abs(share - 0.5) <= tolerance,
        label,
        f"{share:.0%} of the negatives are wrong in colour and {1 - share:.0%} wrong in order: make each kind with "
        "probability 1/2, and when a candidate is balanced draw another one of the same kind",
    )


def rng_states() -> tuple:
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def same_rng_states(a: tuple, b: tuple) -> list[str]:
    """The generators (of the three) whose state differs."""
    changed = []
    if a[0] != b[0]:
        changed.append("random")
    if not all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(a[1], b[1], strict=True)):
        changed.append("numpy.random")
    if not torch.equal(a[2], b[2]):
        changed.append("torch")
    return changed


def check_make_parentheses_data(namespace: MutableMapping[str, Any]) -> None:
    """make_parentheses_data(n, max_len, n_pairs=5, seed=0), graded with a correct is_balanced lent for each call."""
    student = Student(namespace)
    make = student.function("make_parentheses_data")
    checker = LentChecker()
    saved = rng_states()
    try:
        with student.lending(is_balanced=checker):
            check_data_sets(make, checker)
    finally:
        random.setstate(saved[0])  # the battery itself seeds the global generator below
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])


def check_data_sets(make: Callable, checker: LentChecker) -> None:
    with group(
        "make_parentheses_data(400, 12), (301, 9, n_pairs=3), (240, 8, 2, seed=7), (2000, 2): types, labels, "
        "lengths, hard negatives of both kinds in equal shares, varied positives, every colour and length, shuffled"
    ):
        for n, max_len, args, kwargs in [
            (400, 12, (), {"seed": 1}),
            (301, 9, (), {"n_pairs": 3, "seed": 2}),
            (240, 8, (2,), {"seed": 7}),
        ]:
            n_pairs = args[0] if args else kwargs.get("n_pairs", 5)
            label, result = generate(make, checker, n, max_len, *args, **kwargs)
            words, labels = check_data_form(label, result, n, max_len, n_pairs)
            check_data_statistics(label, words, labels, max_len - max_len % 2, n_pairs)
        label, result = generate(make, checker, 2000, 2, seed=11)
        words, labels = check_data_form(label, result, 2000, 2, 5)
        check_kinds_of_negatives(label, words, labels, n_pairs=5)

    with group(
        "make_parentheses_data: the global random, NumPy and PyTorch generators neither used nor changed; same "
        "seed same data, other seed other data, nothing kept between calls"
    ):
        random.seed(0)
        np.random.seed(0)
        before = rng_states()
        label, seeded_zero = generate(make, checker, 20, 10, seed=5)
        changed = same_rng_states(before, rng_states())
        generators = ", ".join(changed)
        require(not changed, label, f"changed the global generator of {generators}; use a local random.Random(seed)")
        random.seed(1)
        np.random.seed(1)
        _, seeded_one = generate(make, checker, 20, 10, seed=5)
        global_state = (
            "the same seed gave other data on a second call: the data depends on state outside the call (the global "
            "generator, or a generator made outside the function); make a local random.Random(seed) inside it"
        )
        require(seeded_zero == seeded_one, label, global_state)
        label, first = generate(make, checker, 50, 10, seed=3)
        _, other = generate(make, checker, 50, 10, seed=4)
        _, again = generate(make, checker, 50, 10, seed=3)
        same = "the same seed must give the same data, whatever was generated before; use a local random.Random(seed)"
        require(first == again, label, same + " created inside the function")
        require(first[0] != other[0], label, "a different seed must give different words")

    with group("make_parentheses_data: n = 1, 2, 3; max_len = 2, 3 and odd; default n_pairs and seed"):
        for n, max_len, n_pairs in [(1, 12, 5), (2, 12, 5), (3, 6, 2), (3, 2, 5), (60, 2, 3), (50, 3, 5), (7, 5, 4)]:
            label, result = generate(make, checker, n, max_len, n_pairs=n_pairs, seed=n)
            check_data_form(label, result, n, max_len, n_pairs)
        label, default = generate(make, checker, 30, 10)
        check_data_form(label, default, 30, 10, 5)
        _, explicit = generate(make, checker, 30, 10, 5, 0)
        defaults = "the defaults are n_pairs=5 and seed=0: the data must equal make_parentheses_data(30, 10, 5, 0)"
        require(default == explicit, label, defaults)


# ------------------------------------------------------------------ backpropagation through time by hand


def autograd_functions() -> dict[Callable, str]:
    """Autograd's entry points; torch.autograd.functional and torch.func reach torch.autograd.grad too."""
    return {
        torch.autograd.grad: "torch.autograd.grad",
        torch.autograd.backward: "torch.autograd.backward",
        torch.Tensor.backward: "tensor.backward()",
    }


AUTOGRAD_FUNCTIONS = autograd_functions()
BPTT_NAMES = ("grad_weight_ih", "grad_weight_hh", "grad_bias_ih", "grad_bias_hh", "grad_h0")
BPTT_CONTRACT = (
    "elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final) returns the tuple (grad_weight_ih, "
    "grad_weight_hh, grad_bias_ih, grad_bias_hh, grad_h0) for xs (T, N, I), h0 and grad_final (N, H), T >= 1"
)


def autograd_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final) -> tuple[torch.Tensor, ...]:
    """The oracle: autograd through nn.functional's Elman steps, in float64."""
    leaves = [
        t.detach().to(FLOAT64, copy=True).requires_grad_(True) for t in (weight_ih, weight_hh, bias_ih, bias_hh, h0)
    ]
    w_ih, w_hh, b_ih, b_hh, h = leaves
    for x in xs.detach().to(FLOAT64):
        h = torch.relu(nn.functional.linear(x, w_ih, b_ih) + nn.functional.linear(h, w_hh, b_hh))
    return torch.autograd.grad(h, leaves, grad_outputs=grad_final.detach().to(FLOAT64))


@torch.no_grad()
def mistaken_bptt(xs, h0, w_ih, w_hh, b_ih, b_hh, grad_final, mistake: str) -> tuple[torch.Tensor, ...]:
    """Backpropagation through time written out, in float64, with one named ``mistake``."""
    xs, h0, w_ih, w_hh, b_ih, b_hh, g = (t.detach().to(FLOAT64) for t in (xs, h0, w_ih, w_hh, b_ih, b_hh, grad_final))
    states, pre = [h0], []
    for x in xs:
        pre.append(x @ w_ih.T + b_ih + states[-1] @ w_hh.T + b_hh)
        states.append(pre[-1].clamp_min(0))
    grads = [torch.zeros_like(w_ih), torch.zeros_like(w_hh), torch.zeros_like(b_ih), torch.zeros_like(b_hh)]
    steps = range(len(xs) - 1, -1, -1)
    for t in steps:
        slope = {"no mask": torch.ones_like(pre[t]), "mask >= 0": (pre[t] >= 0).double()}.get(mistake, pre[t] > 0)
        delta = g * slope
        state = states[t + 1] if mistake == "current state" else states[t]
        bias = {"bias mean": delta.mean(dim=0), "bias dim 1": delta.sum(dim=1)}.get(mistake, delta.sum(dim=0))
        step = [delta.T @ xs[t], delta.T @ state, bias, bias]
        keep = mistake not in ("last step only", "first step only") or t == (len(xs) - 1 if "last" in mistake else 0)
        if keep:
            grads = [total + part for total, part in zip(grads, step, strict=True)]
        if mistake == "h0 before W_hh" and t == 0:
            g = delta
        elif mistake == "h0 at h_1" and t == 0:
            pass
        elif mistake != "not through time":
            g = delta @ (w_hh.T if mistake == "W_hh transposed" else w_hh)
    return (*grads, g)


BPTT_MISTAKES = {
    "no mask": "the gradient does not pass the ReLU as it is: multiply g_t by relu'(a_t), 1 where the "
    "pre-activation a_t is positive and 0 elsewhere, before using it",
    "mask >= 0": "relu'(0) = 0 (as in PyTorch): where a pre-activation is exactly 0 no gradient passes",
    "W_hh transposed": "the gradient sent back to h_{t-1} uses the transpose of W_hh: with the examples in rows, "
    "a_t contains h_{t-1} W_hh^T, so its gradient with respect to h_{t-1} is delta_t times W_hh as stored",
    "last step only": "the weights and biases are shared by all steps: their gradients add up the contributions "
    "of every step t = T, ..., 1, not only the last one",
    "first step only": "the weights and biases are shared by all steps: their gradients add up the contributions "
    "of every step t = T, ..., 1 (this keeps only step 1's, as if each step overwrote the sum)",
    "h0 at h_1": "grad_h0 is the gradient with respect to h_0, the state BEFORE the first step; this is dL/dh_1",
    "not through time": "the gradient must flow back through the states: each step sends g_{t-1} = delta_t W_hh to "
    "the step before; this uses dL/dh_T at every step",
    "current state": "W_hh multiplies the PREVIOUS state: the gradient of W_hh sums delta_t^T h_{t-1}, not h_t",
    "bias mean": "sum the bias gradients over the batch, do not average them (grad_final already holds any "
    "averaging of the loss)",
    "bias dim 1": "the bias gradient sums delta_t over the batch axis (dim 0), not over the units",
    "h0 before W_hh": "grad_h0 is dL/dh_0 = delta_1 W_hh: delta_1 is the gradient of the pre-activation a_1, "
    "one step further",
}


def bptt_mistakes(inputs: tuple[torch.Tensor, ...], expected: Sequence[torch.Tensor], index: int) -> dict:
    """The diagnosis of each known mistake whose result ``index`` differs from the oracle's."""
    known = {}
    batch, hidden = inputs[0].shape[1], inputs[1].shape[1]
    for mistake, diagnosis in BPTT_MISTAKES.items():
        if mistake == "bias dim 1" and batch != hidden:
            continue  # a shape error, reported as such
        wrong = mistaken_bptt(*inputs, mistake=mistake)[index].to(expected[index].device)
        if wrong.shape == expected[index].shape and not within(wrong, expected[index].detach(), 1e-9, 1e-9):
            known[diagnosis] = wrong
    return known


def bptt_tolerance(dtype: torch.dtype, expected: torch.Tensor) -> dict[str, float]:
    """The cells' tolerance, with the absolute part scaled by the largest gradient (sums over T and N steps)."""
    scale = max(1.0, expected.detach().abs().max().item()) if expected.numel() else 1.0
    chosen = tolerance(dtype)
    return {"atol": chosen["atol"] * scale, "rtol": chosen["rtol"]}


def bptt_inputs(steps, batch, input_size, hidden, dtype, device, seed, layout="contiguous", grad=False):
    """xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final: N(0, 1) values, weights U(-2/sqrt(H), 2/sqrt(H))."""
    bound = 2 / math.sqrt(hidden)
    values = [
        draw((steps, batch, input_size), seed, dtype),
        draw((batch, hidden), seed + 1, dtype),
        uniform((hidden, input_size), seed=seed + 2, low=-bound, high=bound).to(dtype).double(),
        uniform((hidden, hidden), seed=seed + 3, low=-bound, high=bound).to(dtype).double(),
        uniform((hidden,), seed=seed + 4, low=-bound, high=bound).to(dtype).double(),
        uniform((hidden,), seed=seed + 5, low=-bound, high=bound).to(dtype).double(),
        draw((batch, hidden), seed + 6, dtype),
    ]
    if layout == "batch-first transposed":  # xs as (N, T, I).transpose(0, 1), the weights stored transposed
        xs = on(values[0].transpose(0, 1), device, dtype).transpose(0, 1)
        rest = [on(v, device, dtype, "transposed storage" if v.dim() == 2 else "strided view") for v in values[1:]]
    else:
        xs, rest = on(values[0], device, dtype, layout), [on(v, device, dtype, layout) for v in values[1:]]
    inputs = (xs, *rest)
    return tuple(t.requires_grad_(grad) if t.is_leaf else t for t in inputs)


def bptt_result(label: str, result: Any, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The five gradients, each a tensor of its variable's shape, dtype and device, carrying no graph."""
    require(
        isinstance(result, tuple | list) and len(result) == 5,
        label,
        "must return the tuple (grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh, grad_h0), got "
        + describe(result),
    )
    xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, _ = inputs
    for name, value, variable in zip(BPTT_NAMES, result, (weight_ih, weight_hh, bias_ih, bias_hh, h0), strict=True):
        check_form(f"{label}: {name}", value, shape=tuple(variable.shape), dtype=xs.dtype, device=xs.device)
        require(
            not value.requires_grad,
            f"{label}: {name}",
            "requires grad: compute the gradients without autograd (under torch.no_grad(), or from detached "
            "inputs), so that the results carry no graph",
        )
    return tuple(result)


def compare_bptt(elman_bptt: Callable, inputs: tuple[torch.Tensor, ...]) -> None:
    """One call: no autograd, inputs unchanged, five results of the right form and values (float64 oracle)."""
    label = case("elman_bptt", *inputs)
    names = ("xs", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "grad_final")
    expected = autograd_bptt(*inputs)
    snapshot = Snapshot(**dict(zip(names, inputs, strict=True)))
    with forbidding(label, AUTOGRAD_FUNCTIONS, "backpropagation through time, written out"):
        result = call(label, elman_bptt, *inputs, contract=BPTT_CONTRACT)
    snapshot.assert_unchanged(label)
    result = bptt_result(label, result, inputs)
    dtype = inputs[0].dtype
    for index, (name, value) in enumerate(zip(BPTT_NAMES, result, strict=True)):
        expected_value = expected[index].to(value.device)
        limits = bptt_tolerance(dtype, expected_value)
        if within(value.detach().double(), expected_value, **limits):
            counted()
            continue
        mistakes = bptt_mistakes(inputs, expected, index)
        assert_close(f"{label}: {name}", value, expected_value, mistakes=mistakes, exact_form=False, **limits)


# steps T, batch N, input size I, hidden size H, dtype
BPTT_SIZES = [
    (1, 3, 4, 5, FLOAT64),  # a single step
    (2, 1, 3, 4, FLOAT64),  # two steps, batch 1
    (7, 2, 5, 3, FLOAT64),  # odd sizes, hidden smaller than input
    (5, 4, 1, 1, FLOAT64),  # sizes 1
    (4, 3, 3, 3, FLOAT64),  # N = H: summing the bias over the wrong axis keeps the shape
    (6, 3, 7, 11, FLOAT32),
    (3, 1, 2, 5, FLOAT32),
]


def zero_pre_activation_inputs(device: torch.device) -> tuple[torch.Tensor, ...]:
    """Inputs whose first pre-activation is exactly 0 in some units: x_1 = 0, h_0 = 0, bias_hh = -bias_ih there."""
    xs, h0, w_ih, w_hh, b_ih, b_hh, grad_final = bptt_inputs(3, 2, 3, 4, FLOAT64, device, seed=3300)
    xs, h0, b_hh = xs.clone(), torch.zeros_like(h0), b_hh.clone()
    xs[0] = 0
    b_hh[:2] = -b_ih[:2]
    return xs, h0, w_ih, w_hh, b_ih, b_hh, grad_final


def check_elman_bptt(namespace: MutableMapping[str, Any]) -> None:
    """elman_bptt against autograd in float64: values, form, no autograd, inputs unchanged, GPU-safe."""
    student = Student(namespace)
    elman_bptt = student.function("elman_bptt")
    device = student.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        with group(
            "elman_bptt against autograd in float64: T = 1, 2 and odd, batch 1, sizes 1 and odd, float32, "
            "three seeds; no autograd call, inputs unchanged, results carry no graph"
        ):
            for k, (steps, batch, input_size, hidden, dtype) in enumerate(BPTT_SIZES):
                seeds = (3000 + 100 * k, 3050 + 100 * k, 3075 + 100 * k) if k == 2 else (3000 + 100 * k,)
                for seed in seeds:
                    compare_bptt(elman_bptt, bptt_inputs(steps, batch, input_size, hidden, dtype, device, seed))

        with group("elman_bptt: pre-activations exactly 0 (relu'(0) = 0, as in PyTorch)"):
            compare_bptt(elman_bptt, zero_pre_activation_inputs(device))

        with group(
            "elman_bptt: non-contiguous inputs (batch-first xs transposed, weights stored transposed, strided "
            "views), inputs that require grad (leaves and results of other computations)"
        ):
            for layout in ("batch-first transposed", "strided view"):
                compare_bptt(elman_bptt, bptt_inputs(4, 3, 5, 6, FLOAT64, device, 3500, layout=layout))
            compare_bptt(elman_bptt, bptt_inputs(3, 2, 4, 5, FLOAT64, device, 3600, grad=True))
            compare_bptt(elman_bptt, bptt_inputs(5, 3, 2, 4, FLOAT32, device, 3700, grad=True))
            xs, h0, *rest = bptt_inputs(3, 2, 4, 5, FLOAT64, device, 3800)
            compare_bptt(elman_bptt, (holding_grad(xs), requiring_grad(h0), *map(requiring_grad, rest)))

        if device.type == "cpu":
            with group("elman_bptt on a simulated GPU: nothing made on the CPU, results on the inputs' device"):
                inputs = bptt_inputs(3, 2, 4, 5, FLOAT32, device, 3900)
                require_gpu_safe(case("elman_bptt", *inputs), elman_bptt, *inputs)
