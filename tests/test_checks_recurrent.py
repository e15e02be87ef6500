"""Visible checks of lab 1 (dlcourse.checks.recurrent)."""

import time

import pytest
import torch
from torch import nn


def test_check_recurrent_cell_accepts_torch_and_catches_a_wrong_nonlinearity():
    from dlcourse.checks import check_recurrent_cell

    torch.manual_seed(0)
    for cell_type, pair in [(nn.GRUCell, False), (nn.LSTMCell, True)]:
        check_recurrent_cell(cell_type.__name__, cell_type(3, 4).double(), cell_type(3, 4).double(), pair_state=pair)
    with pytest.raises(AssertionError, match="next state"):
        check_recurrent_cell("tanh", nn.RNNCell(3, 4).double(), nn.RNNCell(3, 4, nonlinearity="relu").double())
    with pytest.raises(AssertionError, match="state_dict must hold"):
        check_recurrent_cell("GRU as RNN", nn.GRUCell(3, 4), nn.RNNCell(3, 4))


def fresh_cells(count: int, hidden: int = 64, change=None) -> list[nn.GRUCell]:
    cells = [nn.GRUCell(5, hidden) for _ in range(count)]
    if change:
        with torch.no_grad():
            for cell in cells:
                change(cell)
    return cells


def test_check_uniform_init_accepts_torch_and_counts_its_checks():
    from dlcourse.checks import check_uniform_init

    torch.manual_seed(0)
    assert check_uniform_init("torch's GRUCell", fresh_cells(6), 64) == 4 * 5
    assert check_uniform_init("one large cell", nn.GRUCell(5, 400), 400) == 4 * 4


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda cell: cell.weight_hh.normal_(0, 0.01), "weight_hh: standard deviation"),
        (lambda cell: cell.bias_ih.zero_(), "bias_ih: standard deviation"),  # small biases are tested too
        (lambda cell: cell.bias_hh.uniform_(0, 64**-0.5), "bias_hh: mean"),
        (lambda cell: cell.bias_hh.mul_(2), r"bias_hh: entries outside"),
        # the right spread (+-b/sqrt(3) has variance b^2/3) without ever coming near the bounds +-b
        (lambda cell: cell.weight_ih.copy_(cell.weight_ih.sign() * (3 * 64) ** -0.5), "weight_ih: the entries do not"),
    ],
)
def test_check_uniform_init_catches_wrong_distributions_of_small_parameters(change, message):
    from dlcourse.checks import check_uniform_init

    torch.manual_seed(1)
    with pytest.raises(AssertionError, match=message):
        check_uniform_init("wrong", fresh_cells(6, change=change), 64)


def test_check_uniform_init_wants_new_draws_for_each_cell_and_enough_entries():
    from dlcourse.checks import check_uniform_init

    torch.manual_seed(2)
    first = nn.GRUCell(5, 64)
    second = nn.GRUCell(5, 64)
    second.load_state_dict(first.state_dict())
    with pytest.raises(AssertionError, match="two new cells hold the same values"):
        check_uniform_init("seeded inside", [first, second] * 3, 64)
    with pytest.raises(ValueError, match="pool at least"):
        check_uniform_init("too few", nn.GRUCell(5, 64), 64)


def test_checks_outcome_reports_failures_errors_and_endless_loops():
    from dlcourse.checks import checks_outcome

    def endless():
        while True:
            pass

    def wrong():
        raise AssertionError("half balanced: n // 2 words must be balanced")

    assert checks_outcome(1, lambda: None) is None
    assert checks_outcome(1, wrong) == "AssertionError: half balanced: n // 2 words must be balanced"
    assert checks_outcome(1, lambda: [][0]).startswith("IndexError")
    started = time.monotonic()
    assert checks_outcome(0.2, endless) == "did not finish within 0.2 s"
    assert time.monotonic() - started < 2
