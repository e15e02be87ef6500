"""Visible checks of recurrent cells (dlcourse.checks.recurrent)."""

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


def test_check_uniform_init_catches_gaussian_weights():
    from dlcourse.checks import check_uniform_init

    check_uniform_init("torch's GRUCell", nn.GRUCell(5, 64), 64)
    cell = nn.GRUCell(5, 64)
    with torch.no_grad():
        cell.weight_hh.normal_(0, 0.01)
    with pytest.raises(AssertionError, match="weight_hh"):
        check_uniform_init("narrow", cell, 64)
