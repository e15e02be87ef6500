"""Hidden tests of lab07_calibration (autograder/battery/calibration.py): correct answers in other styles pass,
known mistakes fail with a message that names them, and the oracles agree with independent computations. The
answers here run in this process; the corpus (tests/corpus/lab07_calibration.py) grades others through the
student's kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.battery import calibration

# ------------------------------------------------------------------ correct answers, in other styles than the reference


def reliability_bins(probs, labels, n_bins=15):
    """A loop over the bins with explicit comparisons."""
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    means, accuracies, counts = [], [], []
    for m in range(1, n_bins + 1):
        inside = (confidence > (m - 1) / n_bins) & (confidence <= m / n_bins)
        counts.append(inside.sum())
        means.append(confidence[inside].mean() if inside.any() else confidence.new_tensor(float("nan")))
        accuracies.append(correct[inside].mean() if inside.any() else confidence.new_tensor(float("nan")))
    return torch.stack(means), torch.stack(accuracies), torch.stack(counts)


def expected_calibration_error(probs, labels, n_bins=15):
    """numpy on the CPU, bins by ceil(c * M) - 1 (exact for the binary-fraction edges the tests use)."""
    p = probs.detach().cpu().double().numpy()
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == labels.cpu().numpy())
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    total = 0.0
    for m in range(n_bins):
        inside = index == m
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def ece_calling_bins(probs, labels, n_bins=15):
    """Calls reliability_bins, which the test lends (the name is looked up in this module's globals)."""
    confidence, accuracy, count = reliability_bins(probs, labels, n_bins)
    return torch.nansum(count / count.sum() * (accuracy - confidence).abs()).item()


def softmax_with_temperature(logits, T):
    z = logits / T
    return torch.exp(z - torch.logsumexp(z, dim=1, keepdim=True))


def fit_temperature(logits, labels):
    """Bisection on the derivative of the NLL in beta = 1 / T (convex in beta)."""
    z = logits.detach().double()
    y = labels

    def slope(beta):
        b = torch.tensor(beta, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(F.cross_entropy(z * b, y), b)
        return grad.item()

    low, high = 1e-3, 1e3
    for _ in range(80):
        middle = math.sqrt(low * high)
        low, high = (middle, high) if slope(middle) < 0 else (low, middle)
    return 1 / math.sqrt(low * high)


def max_softmax_score(model, x):
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(x)
        return F.softmax(logits, dim=-1).max(dim=-1).values.clone()
    finally:
        model.train(was_training)


def auroc(scores_in, scores_out):
    """Mann-Whitney U from average ranks of the pooled scores."""
    pooled = torch.cat([scores_in.detach(), scores_out.detach()]).double()
    order = pooled.argsort()
    sorted_scores = pooled[order]
    ranks = torch.empty_like(pooled)
    ranks[order] = torch.arange(1, len(pooled) + 1, dtype=torch.float64, device=pooled.device)
    values, inverse = torch.unique(sorted_scores, return_inverse=True)
    sums = torch.zeros(len(values), dtype=torch.float64, device=pooled.device).index_add(
        0, inverse, torch.arange(1, len(pooled) + 1, dtype=torch.float64, device=pooled.device)
    )
    counts = torch.bincount(inverse, minlength=len(values)).double()
    ranks[order] = (sums / counts)[inverse]
    n_in, n_out = len(scores_in), len(scores_out)
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2
    return (u / (n_in * n_out)).item()


CORRECT = {
    "reliability_bins": [reliability_bins],
    "expected_calibration_error": [expected_calibration_error, ece_calling_bins],
    "softmax_with_temperature": [softmax_with_temperature],
    "fit_temperature": [fit_temperature],
    "max_softmax_score": [max_softmax_score],
    "auroc": [auroc],
}


def grade(name: str, function) -> None:
    getattr(calibration, f"check_{name}")({name: function, "device": torch.device("cpu")})


@pytest.mark.parametrize(
    ("name", "answer"),
    [(name, answer) for name, answers in CORRECT.items() for answer in answers],
    ids=[answer.__name__ for answers in CORRECT.values() for answer in answers],
)
def test_correct_answers_in_other_styles_pass(name, answer):
    grade(name, answer)


# ------------------------------------------------------------------ known mistakes


def bins_with(*, right=False, true_class=False, empty_zero=False, float32=False, on_cpu=False, count_float=False):
    def answer(probs, labels, n_bins=15):
        top, prediction = probs.detach().max(dim=1)
        confidence = probs.detach().gather(1, labels.view(-1, 1))[:, 0] if true_class else top
        confidence = confidence.double()
        correct = (prediction == labels).double()
        device = "cpu" if on_cpu else probs.device
        edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=device)[1:-1]
        index = torch.bucketize(confidence, edges, right=right).clamp(max=n_bins - 1)
        count = torch.bincount(index, minlength=n_bins)
        zeros = torch.zeros(n_bins, dtype=torch.float64, device=device)
        conf, acc = zeros.index_add(0, index, confidence) / count, zeros.index_add(0, index, correct) / count
        if empty_zero:
            conf, acc = conf.nan_to_num(0.0), acc.nan_to_num(0.0)
        if float32:
            conf, acc = conf.float(), acc.float()
        return conf, acc, count.double() if count_float else count

    return answer


def ece_with(*, unweighted=False, all_bins=False, abs_of_sum=False, rms=False, tensor=False, default=15, right=False):
    def answer(probs, labels, n_bins=default):
        conf, acc, count = bins_with(right=right)(probs, labels, n_bins)
        filled = count > 0
        gaps, weights = (acc - conf)[filled], count[filled].double() / count.sum()
        if unweighted:
            value = gaps.abs().mean()
        elif all_bins:
            value = gaps.abs().sum() / n_bins
        elif abs_of_sum:
            value = (weights * gaps).sum().abs()
        elif rms:
            value = (weights * gaps**2).sum().sqrt()
        else:
            value = (weights * gaps.abs()).sum()
        return value if tensor else value.item()

    return answer


def ece_with_nan_sum(probs, labels, n_bins=15):
    conf, acc, count = bins_with()(probs, labels, n_bins)
    return (count / count.sum() * (acc - conf).abs()).sum().item()


def softmax_multiplied(logits, T):
    return torch.softmax(logits * T, dim=-1)


def softmax_over_examples(logits, T):
    return torch.softmax(logits / T, dim=0)


def softmax_naive(logits, T):
    e = torch.exp(logits / T)
    return e / e.sum(dim=-1, keepdim=True)


def softmax_detached_temperature(logits, T):
    return torch.softmax(logits / float(T.detach() if isinstance(T, torch.Tensor) else T), dim=-1)


def softmax_in_place(logits, T):
    logits /= T
    return torch.softmax(logits, dim=-1)


def fit_with(*, multiply=False, steps=200, lr=0.01, detach=True, tensor=False):
    def answer(logits, labels):
        z = logits.detach() if detach else logits
        log_t = torch.zeros((), dtype=z.dtype, requires_grad=True)
        optimizer = torch.optim.Adam([log_t], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            scaled = z * log_t.exp() if multiply else z / log_t.exp()
            F.cross_entropy(scaled, labels).backward(retain_graph=not detach)
            optimizer.step()
        return log_t.exp().detach() if tensor else log_t.exp().item()

    return answer


def fit_coarse_grid(logits, labels):
    grid = torch.arange(0.1, 5.01, 0.1)
    losses = [F.cross_entropy(logits.detach() / t, labels).item() for t in grid]
    return grid[int(np.argmin(losses))].item()


def fit_by_accuracy(logits, labels):
    grid = torch.linspace(0.05, 10, 200)
    accuracies = [((logits.detach() / t).argmax(1) == labels).float().mean().item() for t in grid]
    return grid[int(np.argmax(accuracies))].item()


def msp_with(*, train=False, restore=True, no_grad=True, logits=False, dim=1, finally_restore=True):
    def answer(model, x):
        was_training = model.training
        if not train:
            model.eval()
        if finally_restore:
            try:
                with torch.set_grad_enabled(not no_grad):
                    out = model(x)
            finally:
                if restore:
                    model.train(was_training)
        else:
            with torch.set_grad_enabled(not no_grad):
                out = model(x)
            if restore:
                model.train(was_training)
        return out.max(dim=1).values if logits else out.softmax(dim=dim).max(dim=1).values

    return answer


def auroc_with(*, ties=0.5, swapped=False):
    def answer(scores_in, scores_out):
        a, b = scores_in.detach().double().view(-1, 1), scores_out.detach().double().view(1, -1)
        if swapped:
            a, b = b.t(), a.t()
        return ((a > b).double().mean() + ties * (a == b).double().mean()).item()

    return answer


def auroc_by_sklearn(scores_in, scores_out):
    from sklearn.metrics import roc_auc_score

    scores = torch.cat([scores_in, scores_out]).detach().cpu().numpy()
    return float(roc_auc_score([1] * len(scores_in) + [0] * len(scores_out), scores))


def auroc_by_numpy(scores_in, scores_out):
    a, b = scores_in.numpy()[:, None], scores_out.numpy()[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def auroc_sorting_in_place(scores_in, scores_out):
    scores_in.data, _ = scores_in.data.sort()
    return auroc_with()(scores_in, scores_out)


def bins_from_numpy(probs, labels, n_bins=15):
    """numpy bins whose tensors come back on the CPU (torch.from_numpy, which the simulated GPU marks itself)."""
    p, y = probs.detach().cpu().double().numpy(), labels.cpu().numpy()
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    index = np.digitize(confidence, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(index, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(index, weights=correct, minlength=n_bins) / count
    return torch.from_numpy(conf), torch.from_numpy(acc), torch.from_numpy(count)


def msp_detached_afterwards(model, x):
    was_training = model.training
    model.eval()
    try:
        return model(x).detach().softmax(dim=1).amax(dim=1)
    finally:
        model.train(was_training)


MISTAKES = [
    ("reliability_bins", bins_from_numpy, "GPU"),
    ("max_softmax_score", msp_detached_afterwards, "gradients enabled"),
    ("reliability_bins", bins_with(right=True), "closed on the right"),
    ("reliability_bins", bins_with(true_class=True), "top-label confidence"),
    ("reliability_bins", bins_with(empty_zero=True), "NaN"),
    ("reliability_bins", bins_with(float32=True), "dtype"),
    ("reliability_bins", bins_with(count_float=True), "dtype"),
    ("reliability_bins", bins_with(on_cpu=True), "GPU"),
    ("expected_calibration_error", ece_with(unweighted=True), "do not average the gaps of the bins"),
    ("expected_calibration_error", ece_with(all_bins=True), "all n_bins bins"),
    ("expected_calibration_error", ece_with(abs_of_sum=True), "absolute value of each bin's gap"),
    ("expected_calibration_error", ece_with(rms=True), "not their squares"),
    ("expected_calibration_error", ece_with(tensor=True), "Python number"),
    ("expected_calibration_error", ece_with(default=10), "default number of bins"),
    ("expected_calibration_error", ece_with(right=True), "closed on the right"),
    ("expected_calibration_error", ece_with_nan_sum, "NaN"),
    ("softmax_with_temperature", softmax_multiplied, "do not multiply"),
    ("softmax_with_temperature", softmax_over_examples, "not over the examples"),
    ("softmax_with_temperature", softmax_naive, "overflows"),
    ("softmax_with_temperature", softmax_detached_temperature, "through autograd"),
    ("softmax_with_temperature", softmax_in_place, "in place"),
    ("fit_temperature", fit_with(multiply=True, steps=500, lr=0.05), "1 / T"),
    ("fit_temperature", fit_with(steps=50), "converged"),
    ("fit_temperature", fit_with(steps=500, lr=0.05, tensor=True), "Python float"),
    ("fit_temperature", fit_with(steps=300, lr=0.05, detach=False), "graph|backward|retain|grad"),
    ("fit_temperature", fit_coarse_grid, "within 1 %"),
    ("fit_temperature", fit_by_accuracy, "by accuracy|within 1 %"),
    ("max_softmax_score", msp_with(train=True), "eval mode"),
    ("max_softmax_score", msp_with(restore=False), "mode"),
    ("max_softmax_score", msp_with(finally_restore=False), "mode"),
    ("max_softmax_score", msp_with(no_grad=False), "torch.no_grad"),
    ("max_softmax_score", msp_with(logits=True), "not of the logits"),
    ("max_softmax_score", msp_with(dim=0), "not over the batch"),
    ("auroc", auroc_with(ties=0.0), "a tie counts one half"),
    ("auroc", auroc_with(ties=1.0), "one half, not one"),
    ("auroc", auroc_with(swapped=True), "positive class"),
    ("auroc", auroc_by_sklearn, "sklearn"),
    ("auroc", auroc_by_numpy, "raised"),
    ("auroc", auroc_sorting_in_place, "memory|in place"),
]


@pytest.mark.parametrize(("name", "answer", "message"), MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(MISTAKES)])
def test_known_mistakes_fail_with_a_message_that_names_them(name, answer, message):
    with pytest.raises(AssertionError, match=message):
        grade(name, answer)


def test_a_missing_answer_is_named():
    with pytest.raises(AssertionError, match="`auroc` is not defined"):
        calibration.check_auroc({})


# ------------------------------------------------------------------ the oracles against independent computations


def test_reference_bins_agree_with_torchmetrics_binning_away_from_the_edges():
    """torchmetrics bins by bucketize(c, linspace(0, 1, M + 1), right=True) - 1, i.e. [lo, hi): the same bins as
    (lo, hi] wherever no confidence sits on an edge, as in every random case of the battery."""
    for seed, (n, k, n_bins) in enumerate([(300, 10, 15), (57, 3, 10), (500, 100, 20)]):
        probs, labels = calibration.predictions(n, k, seed=seed, n_bins=n_bins)
        confidence, prediction = probs.max(dim=1)
        index = torch.bucketize(confidence, torch.linspace(0, 1, n_bins + 1, dtype=torch.float64), right=True) - 1
        gaps = torch.zeros(n_bins, dtype=torch.float64).index_add(
            0, index, (prediction == labels).double() - confidence
        )
        torchmetrics_style = gaps.abs().sum().item() / n
        assert calibration.reference_ece(probs, labels, n_bins) == pytest.approx(torchmetrics_style, abs=1e-12)


def test_reference_bins_put_edges_in_the_bin_they_close():
    probs = torch.tensor(
        [[0.5, 0.25, 0.25], [0.75, 0.25, 0.0], [1.0, 0.0, 0.0], [0.5 + 2**-20, 0.25, 0.25 - 2**-20]],
        dtype=torch.float64,
    )
    _, _, count = calibration.reference_bins(probs, torch.zeros(4, dtype=torch.int64), 4)
    assert count.tolist() == [0, 1, 2, 1]


def test_optimal_temperature_is_the_minimiser():
    for seed, overconfidence in enumerate([0.3, 1.0, 2.5, 7.0]):
        logits, labels = calibration.calibration_problem(300, 5, seed=seed, overconfidence=overconfidence)
        optimum = calibration.optimal_temperature(logits, labels)
        at = calibration.mean_nll(logits, labels, optimum)
        for factor in (0.999, 1.001):
            assert calibration.mean_nll(logits, labels, optimum * factor) >= at - 1e-15


def test_reference_auroc_counts_pairs_with_ties_as_halves():
    scores_in, scores_out = torch.tensor([0.9, 0.8, 0.4, 0.4]), torch.tensor([0.4, 0.2, 0.85])
    wins, ties = calibration.pair_counts(scores_in, scores_out)
    assert calibration.reference_auroc(scores_in, scores_out) == pytest.approx(wins + ties / 2) == 8 / 12


def test_edge_cases_are_exact_binary_fractions_in_float32():
    for _, probs, _, n_bins in calibration.on_edges():
        confidence = probs.max(dim=1).values
        assert torch.equal(confidence.float().double(), confidence)
        assert len(calibration.reference_bins(probs, torch.zeros(len(probs), dtype=torch.int64), n_bins)[2]) == n_bins
