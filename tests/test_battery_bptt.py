"""Hidden tests of lab01_rnn's elman_bptt (autograder/battery/recurrent.py): correct answers in other styles pass,
known mistakes fail with a message that names them, and the oracle and the written-out backward pass agree. The
answers here run in this process; the corpus (tests/corpus/lab01_rnn.py) grades others through the student's
kernel."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from autograder.battery import recurrent


def run_battery(elman_bptt) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        recurrent.check_elman_bptt({"elman_bptt": elman_bptt})


def forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """The states h_0..h_T and the pre-activations a_1..a_T, without a graph."""
    states, pre = [h0.detach()], []
    for x in xs.detach():
        pre.append(x @ weight_ih.detach().T + bias_ih.detach() + states[-1] @ weight_hh.detach().T + bias_hh.detach())
        states.append(pre[-1].clamp(min=0))
    return states, pre


def bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final, mistake=""):
    """A loop over time with detached inputs, in the inputs' dtype; ``mistake`` makes one known mistake."""
    states, pre = forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    grads = [torch.zeros_like(p.detach()) for p in (weight_ih, weight_hh, bias_ih, bias_hh)]
    g = grad_final.detach()
    for t in range(len(pre) - 1, -1, -1):
        delta = g if mistake == "no mask" else g * (pre[t] > 0)
        parts = [delta.T @ xs[t].detach(), delta.T @ states[t + (mistake == "current state")]]
        parts += [delta.sum(0), delta.sum(0)]
        grads = [total + part for total, part in zip(grads, parts, strict=True)]
        g = delta @ (weight_hh.detach().T if mistake == "W_hh transposed" else weight_hh.detach())
    return (*grads, g)


def bptt_einsum(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    """Every step's delta stacked, each sum over time one einsum, the same tensor for both bias gradients."""
    states, pre = forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    deltas, g = [], grad_final.detach()
    for a in reversed(pre):
        deltas.insert(0, torch.where(a > 0, g, torch.zeros_like(g)))
        g = torch.einsum("nh,hk->nk", deltas[0], weight_hh.detach())
    deltas = torch.stack(deltas)
    grad_bias = deltas.sum(dim=(0, 1))
    grad_weight_ih = torch.einsum("tnh,tni->hi", deltas, xs.detach())
    grad_weight_hh = torch.einsum("tnh,tnk->hk", deltas, torch.stack(states[:-1]))
    return grad_weight_ih, grad_weight_hh, grad_bias, grad_bias, g


@pytest.mark.parametrize("answer", [bptt, bptt_einsum])
def test_correct_answers_pass(answer):
    run_battery(answer)


@pytest.mark.parametrize(
    "mistake, message",
    [
        ("no mask", "does not pass the ReLU as it is"),
        ("current state", "W_hh multiplies the PREVIOUS state"),
        ("W_hh transposed", "uses the transpose of W_hh"),
    ],
)
def test_known_mistakes_are_named(mistake, message):
    with pytest.raises(AssertionError, match=message):
        run_battery(lambda *inputs: bptt(*inputs, mistake=mistake))


def test_autograd_and_a_graph_on_the_results_fail():
    def with_autograd(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
        leaves = [p.detach().requires_grad_() for p in (weight_ih, weight_hh, bias_ih, bias_hh, h0)]
        h = leaves[4]
        for x in xs:
            h = torch.relu(x @ leaves[0].T + leaves[2] + h @ leaves[1].T + leaves[3])
        return torch.autograd.grad(h, leaves, grad_final)

    with pytest.raises(AssertionError, match="called torch.autograd.grad"):
        run_battery(with_autograd)

    def keeps_graph(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
        return tuple(
            value + 0 * weight_ih.sum() for value in bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final)
        )

    with pytest.raises(AssertionError, match="requires grad: compute the gradients without autograd"):
        run_battery(keeps_graph)


@pytest.mark.parametrize("mistake", list(recurrent.BPTT_MISTAKES))
def test_every_written_out_mistake_differs_from_the_oracle(mistake):
    cpu = torch.device("cpu")
    # relu'(0) matters only where a pre-activation is exactly 0
    inputs = (
        recurrent.zero_pre_activation_inputs(cpu)
        if mistake == "mask >= 0"
        else recurrent.bptt_inputs(4, 3, 3, 3, torch.float64, cpu, seed=5)
    )
    expected = recurrent.autograd_bptt(*inputs)
    wrong = recurrent.mistaken_bptt(*inputs, mistake=mistake)
    assert any(not torch.allclose(w, e) for w, e in zip(wrong, expected, strict=True))
    correct = recurrent.mistaken_bptt(*inputs, mistake="")
    assert all(torch.allclose(c, e, atol=1e-12) for c, e in zip(correct, expected, strict=True))


def test_the_zero_pre_activation_case_has_exact_zeros():
    xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, _ = recurrent.zero_pre_activation_inputs(torch.device("cpu"))
    _, pre = forward(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    assert (pre[0][:, :2] == 0).all() and (pre[0][:, 2:] != 0).all()
