"""The hidden tests' names for recurrent-cell mistakes (autograder.battery.recurrent), which the visible checks
leave to them: each diagnosis is the output of a cell written with that mistake."""

import pytest
import torch

from autograder.battery.recurrent import gru_mistakes, lstm_mistakes
from tests.test_checks_recurrent import MistakenGRU, MistakenLSTM


def inputs(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(5, size, generator=generator, dtype=torch.float64) for size in (3, 4, 4))


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("flipped", "the update gate is the wrong way round"),
        ("order", "the gates are in the wrong order: PyTorch stacks them r, z, n"),
        ("reset before product", "the reset gate multiplies h before W_hn"),
        ("bias outside reset", "b_hn must be inside the reset gate"),
    ],
)
def test_the_battery_names_gru_mistakes(mistake, diagnosis):
    torch.manual_seed(0)
    cell = MistakenGRU(mistake).double()
    x, h, _ = inputs(1)
    known = gru_mistakes({key: value.detach() for key, value in cell.state_dict().items()}, x, h)
    (value,) = [value for message, value in known.items() if message.startswith(diagnosis)]
    with torch.no_grad():
        torch.testing.assert_close(value, cell(x, h), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(
    "order, swap_outputs, diagnosis",
    [("ifog", False, "the gates are in the wrong order"), ("ifgo", True, "forward must return the tuple (h, c)")],
)
def test_the_battery_names_lstm_mistakes(order, swap_outputs, diagnosis):
    torch.manual_seed(0)
    cell = MistakenLSTM(order, swap_outputs).double()
    x, h, c = inputs(2)
    known = lstm_mistakes({key: value.detach() for key, value in cell.state_dict().items()}, x, h, c)
    (value,) = [value for message, value in known.items() if message.startswith(diagnosis)]
    with torch.no_grad():
        torch.testing.assert_close(value, cell(x, (h, c))[0], atol=1e-12, rtol=1e-12)
