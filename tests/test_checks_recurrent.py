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
    with pytest.raises(AssertionError, match="next state: your output matches a cell that applies tanh where"):
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


class MistakenGRU(nn.GRUCell):
    """nn.GRUCell's parameters with a GRU formula written by hand, optionally with one common mistake."""

    def __init__(self, mistake: str = ""):
        super().__init__(3, 4)
        self.mistake = mistake

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        order = (1, 0, 2) if self.mistake == "order" else (0, 1, 2)
        (x_r, x_z, x_n), (h_r, h_z, h_n) = ([part.chunk(3, dim=1)[k] for k in order] for part in self.parts(x, h))
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        if self.mistake == "reset before product":
            h_n = (r * h) @ self.weight_hh.chunk(3)[2].T + self.bias_hh.chunk(3)[2]
            n = torch.tanh(x_n + h_n)
        elif self.mistake == "bias outside reset":
            n = torch.tanh(x_n + r * (h @ self.weight_hh.chunk(3)[2].T) + self.bias_hh.chunk(3)[2])
        else:
            n = torch.tanh(x_n + r * h_n)
        return z * n + (1 - z) * h if self.mistake == "flipped" else (1 - z) * n + z * h

    def parts(self, x, h):
        return x @ self.weight_ih.T + self.bias_ih, h @ self.weight_hh.T + self.bias_hh


class MistakenLSTM(nn.LSTMCell):
    """nn.LSTMCell's parameters with the LSTM formula written by hand, reading the gates in ``order``."""

    def __init__(self, order: str = "ifgo", swap_outputs: bool = False):
        super().__init__(3, 4)
        self.order, self.swap_outputs = order, swap_outputs

    def forward(self, x, state=None):
        h, c = state if state is not None else (x.new_zeros(x.shape[0], 4), x.new_zeros(x.shape[0], 4))
        blocks = (x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh).chunk(4, dim=1)
        i, f, g, o = (blocks[self.order.index(gate)] for gate in "ifgo")
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return (c_next, h_next) if self.swap_outputs else (h_next, c_next)


def test_check_recurrent_cell_names_the_gru_gate_order_mistake():
    from dlcourse.checks import check_recurrent_cell

    torch.manual_seed(3)
    check_recurrent_cell("right GRU", MistakenGRU().double(), nn.GRUCell(3, 4).double())
    with pytest.raises(AssertionError, match="reads the stacked weights in the gate order z, r, n"):
        check_recurrent_cell("GRUCell(3, 4)", MistakenGRU("order").double(), nn.GRUCell(3, 4).double())


@pytest.mark.parametrize("mistake", ["reset before product", "bias outside reset", "flipped"])
def test_check_recurrent_cell_leaves_formula_mistakes_to_the_hidden_tests(mistake):
    """Naming these takes a GRU written out, which the published package must not hold (the battery names them)."""
    from dlcourse.checks import check_recurrent_cell

    torch.manual_seed(3)
    with pytest.raises(AssertionError, match="differs from the expected value"):
        check_recurrent_cell("GRUCell(3, 4)", MistakenGRU(mistake).double(), nn.GRUCell(3, 4).double())


@pytest.mark.parametrize(
    "order, swap_outputs, message",
    [
        ("ifog", False, "gate order i, f, o, g"),
        ("figo", False, "gate order f, i, g, o"),
        ("igfo", False, "gate order i, g, f, o"),
        ("gifo", False, "gate order g, i, f, o"),
        ("ifgo", True, r"returns \(c', h'\) instead of \(h', c'\)"),
    ],
)
def test_check_recurrent_cell_names_the_lstm_mistake(order, swap_outputs, message):
    from dlcourse.checks import check_recurrent_cell

    torch.manual_seed(4)
    check_recurrent_cell("right LSTM", MistakenLSTM().double(), nn.LSTMCell(3, 4).double(), pair_state=True)
    wrong = MistakenLSTM(order, swap_outputs).double()
    with pytest.raises(AssertionError, match=message):
        check_recurrent_cell("LSTMCell(3, 4)", wrong, nn.LSTMCell(3, 4).double(), pair_state=True)


def test_check_recurrent_cell_names_no_mistake_it_does_not_recognise():
    from dlcourse.checks import check_recurrent_cell

    class ScaledGRU(MistakenGRU):
        def forward(self, x, h=None):
            return 0.9 * super().forward(x, h)

    torch.manual_seed(5)
    with pytest.raises(AssertionError, match="differs from the expected value") as error:
        check_recurrent_cell("GRUCell(3, 4)", ScaledGRU().double(), nn.GRUCell(3, 4).double())
    assert "matches" not in str(error.value)
