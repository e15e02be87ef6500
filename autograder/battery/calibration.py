"""Hidden tests of lab 7: reliability bins, ECE, temperature scaling, MSP scores and AUROC.

The contract every function shares: its inputs unchanged (values, version counter, ``.grad``), which
may require gradients and come in any layout, and the tensors it returns on the inputs' device.
Oracles, in float64: the bins written out one by one with explicit comparisons (bin m holds
(m-1)/M < c <= m/M; on cases whose confidences are away from every non-dyadic edge, where floating
point cannot disagree about membership, and on dyadic edges, which every correct method places alike);
``torch.softmax`` through ``logsumexp`` for temperatures; the minimiser of the NLL found by a fine grid
on log T refined by golden-section search; a copy of the model in eval mode for MSP; and
``sklearn.metrics.roc_auc_score`` (with a pairwise count in the unit tests) for the AUROC. Functions
that may call another answer run with a correct version of it lent (:meth:`Student.lending`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autograder.battery.compare import assert_close, check_form, fail, group, is_number, require, require_gpu_safe
from autograder.battery.forbidden import forbidding
from autograder.battery.inputs import holding_grad, layouts, normal, requiring_grad, seeded
from autograder.battery.models import (
    Fails,
    NoGradOnly,
    batchnorm_dropout_cnn,
    mode_sensitive_cnn,
    mode_sensitive_mlp,
)
from autograder.battery.snapshot import Snapshot, call_leaving_unchanged
from autograder.battery.student import Student, call, case

FLOAT64, FLOAT32 = torch.float64, torch.float32


def tolerance(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == FLOAT64 else 2e-6


# ------------------------------------------------------------------ data


def edge_distance(confidence: torch.Tensor, n_bins: int) -> float:
    """How far the confidences are, in units of a bin width, from the nearest bin edge."""
    scaled = confidence.double() * n_bins
    return (scaled - scaled.round()).abs().min().item()


def predictions(
    n: int, k: int, *, seed: int, n_bins: int = 15, sharpness: float = 3.0, dtype=FLOAT64, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(probs, labels) of a miscalibrated classifier: softmax of random logits, labels drawn from a flatter
    distribution or equal to the prediction, top-label confidences at least 1e-6 bin widths from every edge
    (in the given dtype)."""
    for attempt in range(100):
        gen = seeded(1000 * seed + attempt)
        logits = sharpness * torch.randn(n, k, generator=gen, dtype=FLOAT64)
        probs = torch.softmax(logits, dim=1).to(dtype)
        if edge_distance(probs.max(dim=1).values, n_bins) > 1e-6 and not has_top_tie(probs):
            # overconfident at high confidence, underconfident at low: the gaps change sign from bin to bin, so
            # that the bins matter (with gaps of one sign, the ECE is |mean confidence - accuracy| for any bins)
            labels = torch.multinomial(torch.softmax(logits / 2, dim=1), 1, generator=gen)[:, 0]
            top = probs.double().max(dim=1)
            right = torch.rand(n, generator=gen, dtype=FLOAT64) < 1.2 * (1 - top.values)
            labels = torch.where(right, top.indices, labels)
            return probs.to(device), labels.to(device)
    raise RuntimeError("no draw away from the bin edges")  # pragma: no cover - 100 attempts always suffice


def has_top_tie(probs: torch.Tensor) -> bool:
    top2 = probs.topk(2, dim=1).values if probs.shape[1] > 1 else None
    return top2 is not None and bool((top2[:, 0] == top2[:, 1]).any())


def on_edges(device=None) -> list[tuple[str, torch.Tensor, torch.Tensor, int]]:
    """Cases whose top-label confidences are exactly m/8 (binary fractions, exact in float32 too), on the
    edges of 4, 8 and 16 bins, and the same just above the edges."""
    tops = torch.arange(1, 9, dtype=FLOAT64) / 8
    probs = ((1 - tops) / 9).view(-1, 1).repeat(1, 10)  # ten classes: the top one strictly above the rest
    probs[:, 3] = tops
    labels = torch.tensor([3, 3, 0, 0, 5, 3, 3, 1])  # right, then wrong: with 4 bins the gaps change sign
    above = probs.clone()
    above[:7, 3] += 2.0**-20  # not the row of confidence 1
    above[:7, 0] -= 2.0**-20
    cases = [(f"confidences on the edges m/8, {m} bins", probs, labels, m) for m in (8, 16, 4)]
    cases.append(("confidences just above the edges m/8", above, labels, 8))
    return [(name, p.to(device), y.to(device), m) for name, p, y, m in cases]


# ------------------------------------------------------------------ oracles


def reference_bins(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int, *, left_closed: bool = False, true_class: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(confidence, accuracy, count) bin by bin, in float64 on the CPU: (m-1)/M < c <= m/M.

    ``left_closed`` ((m-1)/M <= c < m/M, a confidence of 1 in the last bin) and ``true_class`` (the
    probability of the label instead of the top one) are the usual mistakes.
    """
    p = probs.detach().to("cpu", FLOAT64)
    y = labels.detach().cpu()
    top, predicted = p.max(dim=1)
    confidence = p.gather(1, y.view(-1, 1))[:, 0] if true_class else top
    correct = (predicted == y).to(FLOAT64)
    means, accuracies, counts = [], [], []
    for m in range(1, n_bins + 1):
        low, high = (m - 1) / n_bins, m / n_bins
        if left_closed:
            inside = (confidence >= low) & ((confidence < high) | ((m == n_bins) & (confidence <= high)))
        else:
            inside = (confidence > low) & (confidence <= high)
        counts.append(int(inside.sum()))
        means.append(confidence[inside].mean().item() if counts[-1] else math.nan)
        accuracies.append(correct[inside].mean().item() if counts[-1] else math.nan)
    return torch.tensor(means, dtype=FLOAT64), torch.tensor(accuracies, dtype=FLOAT64), torch.tensor(counts)


def gaps_and_weights(bins: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    confidence, accuracy, count = bins
    filled = count > 0
    return (accuracy - confidence)[filled], count[filled].to(FLOAT64) / count.sum()


def reference_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    gaps, weights = gaps_and_weights(reference_bins(probs, labels, n_bins))
    return (weights * gaps.abs()).sum().item()


def ece_mistakes(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> dict[str, float]:
    gaps, weights = gaps_and_weights(reference_bins(probs, labels, n_bins))
    mistakes = {
        "weight each bin's gap by its share of the examples |B_m| / N; do not average the gaps of the bins": gaps.abs()
        .mean()
        .item(),
        "weight each bin's gap by |B_m| / N; do not average the gaps over all n_bins bins": gaps.abs().sum().item()
        / n_bins,
        "take the absolute value of each bin's gap, then sum (not the absolute value of the sum)": abs(
            (weights * gaps).sum().item()
        ),
        "the ECE sums the absolute gaps (the L1 norm), not their squares (the RMS calibration error)": (
            weights * gaps**2
        )
        .sum()
        .sqrt()
        .item(),
        "the ECE sums the weighted gaps of all bins, not the largest gap (the maximum calibration error)": gaps.abs()
        .max()
        .item()
        if len(gaps)
        else 0.0,
        "bins are open on the left and closed on the right: a confidence of exactly m/M belongs to bin m": sum(
            (w * g.abs()).item()
            for g, w in zip(*gaps_and_weights(reference_bins(probs, labels, n_bins, left_closed=True)), strict=True)
        ),
        "use the top-label confidence max_k probs[n, k], not the probability of the true class": sum(
            (w * g.abs()).item()
            for g, w in zip(*gaps_and_weights(reference_bins(probs, labels, n_bins, true_class=True)), strict=True)
        ),
    }
    return mistakes


def reference_reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15):
    """A correct reliability_bins, lent to answers that call it: the reference's results on the inputs' device."""
    return tuple(t.to(probs.device) for t in reference_bins(probs, labels, n_bins))


def reference_softmax_with_temperature(logits: torch.Tensor, T) -> torch.Tensor:
    """A correct softmax_with_temperature, lent to answers that call it."""
    return torch.softmax(logits / T, dim=-1)


# ------------------------------------------------------------------ reliability_bins


def check_reliability_bins(namespace: MutableMapping[str, Any]) -> None:
    """reliability_bins(probs, labels, n_bins=15) -> (confidence float64, accuracy float64, count int64)."""
    student = Student(namespace)
    reliability_bins = student.function("reliability_bins")
    device = student.device

    def bins(label: str, probs: torch.Tensor, labels: torch.Tensor, n_bins: int | None, **kwargs) -> None:
        args = (probs, labels) if n_bins is None else (probs, labels, n_bins)
        result = call_leaving_unchanged(
            label, reliability_bins, *args, inputs={"probs": probs, "labels": labels}, **kwargs
        )
        m = 15 if n_bins is None else n_bins
        require(
            isinstance(result, tuple) and len(result) == 3,
            label,
            f"return a tuple (confidence, accuracy, count), got {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, list | tuple) else ""),
        )
        confidence, accuracy, count = result
        for name, value, dtype in (
            ("confidence", confidence, FLOAT64),
            ("accuracy", accuracy, FLOAT64),
            ("count", count, torch.int64),
        ):
            check_form(f"{label}, {name}", value, shape=(m,), dtype=dtype, device=probs.device)
        expected = reference_bins(probs, labels, m)
        wrong_side = reference_bins(probs, labels, m, left_closed=True)
        true_class = reference_bins(probs, labels, m, true_class=True)
        side = "bins are open on the left and closed on the right: a confidence of exactly m/M belongs to bin m"
        top = "use the top-label confidence max_k probs[n, k], not the probability of the true class"
        assert_close(
            f"{label}, count", count, expected[2].to(probs.device), mistakes={side: wrong_side[2], top: true_class[2]}
        )
        empty = expected[2] == 0
        require(
            bool(confidence.detach().cpu()[empty].isnan().all() and accuracy.detach().cpu()[empty].isnan().all()),
            f"{label}, empty bins",
            "an empty bin has NaN confidence and accuracy (0 / 0), not 0 or another number",
        )
        tol = tolerance(probs.dtype)
        assert_close(
            f"{label}, confidence",
            confidence,
            expected[0].to(probs.device),
            atol=tol,
            rtol=tol,
            mistakes={top: true_class[0]},
        )
        assert_close(
            f"{label}, accuracy",
            accuracy,
            expected[1].to(probs.device),
            atol=1e-12,
            rtol=1e-12,
            mistakes={
                "an example is right when its top-label prediction argmax_k probs[n, k] equals its label": true_class[1]
            },
        )

    with group("reliability_bins against the bins written out: sizes, classes, numbers of bins, dtypes, seeds"):
        for seed, (n, k, n_bins, dtype) in enumerate(
            [
                (300, 10, None, FLOAT64),
                (57, 3, 10, FLOAT32),
                (1, 4, 15, FLOAT64),
                (2, 2, 7, FLOAT32),
                (500, 100, 20, FLOAT64),
                (40, 5, 1, FLOAT64),
                (1000, 10, 15, FLOAT32),
            ]
        ):
            probs, labels = predictions(n, k, seed=seed, n_bins=n_bins or 15, dtype=dtype, device=device)
            bins(
                case("reliability_bins", probs, labels, **({} if n_bins is None else {"n_bins": n_bins})),
                probs,
                labels,
                n_bins,
            )

    with group("reliability_bins: confidences exactly on the edges m/M and 1.0, and just above them"):
        for name, probs, labels, n_bins in on_edges(device):
            for dtype in (FLOAT64, FLOAT32):
                p = probs.to(dtype)
                bins(case("reliability_bins", p, labels, n_bins=n_bins) + f" ({name})", p, labels, n_bins)
        one_hot = torch.eye(4, dtype=FLOAT64, device=device)[[0, 1, 2, 3, 0]]
        labels = torch.tensor([0, 1, 3, 3, 1], device=device)
        bins(case("reliability_bins", one_hot, labels) + " (one-hot predictions: confidence 1)", one_hot, labels, None)

    with group("reliability_bins: probs in every layout and requiring grad, labels not contiguous, n_bins by name"):
        probs, labels = predictions(64, 6, seed=20, n_bins=12, device=device)
        for layout, variant in layouts(probs):
            bins(case("reliability_bins", variant, labels, n_bins=12) + f" ({layout})", variant, labels, 12)
        label = case("reliability_bins", requiring_grad(probs), labels, n_bins=12) + " (the output of a model)"
        bins(label, requiring_grad(probs), labels, 12)
        variant = holding_grad(probs)
        bins(case("reliability_bins", variant, labels, n_bins=12) + " (probs holding a .grad)", variant, labels, 12)
        strided = torch.stack([labels, labels], dim=1)[:, 0]
        bins(case("reliability_bins", probs, strided, n_bins=12) + " (labels a strided view)", probs, strided, 12)
        label = case("reliability_bins", probs, labels, n_bins=12) + " (n_bins passed by name)"
        result = call(label, reliability_bins, probs, labels, n_bins=12)
        assert_close(label, result[2] if isinstance(result, tuple) else result, reference_bins(probs, labels, 12)[2])

    with group("reliability_bins on inputs on a (simulated) GPU"):
        probs, labels = predictions(30, 4, seed=21, device=device)
        require_gpu_safe(case("reliability_bins", probs, labels), reliability_bins, probs, labels)
        require_gpu_safe(case("reliability_bins", probs, labels, n_bins=6), reliability_bins, probs, labels, n_bins=6)


# ------------------------------------------------------------------ expected_calibration_error


def check_expected_calibration_error(namespace: MutableMapping[str, Any]) -> None:
    """expected_calibration_error(probs, labels, n_bins=15) = sum_m |B_m| / N |acc(B_m) - conf(B_m)|, a float."""
    student = Student(namespace)
    ece_of = student.function("expected_calibration_error")
    device = student.device

    def ece(label: str, probs: torch.Tensor, labels: torch.Tensor, n_bins: int | None) -> None:
        args = (probs, labels) if n_bins is None else (probs, labels, n_bins)
        with student.lending(reliability_bins=reference_reliability_bins):
            result = call_leaving_unchanged(label, ece_of, *args, inputs={"probs": probs, "labels": labels})
        m = 15 if n_bins is None else n_bins
        mistakes = ece_mistakes(probs, labels, m)
        if n_bins is None:
            mistakes["the default number of bins is n_bins=15"] = reference_ece(probs, labels, 10)
        # float32 weights (count / N of int64 tensors is float32) are a correct style: 1e-6, not float64's 1e-10
        assert_close(label, result, reference_ece(probs, labels, m), atol=1e-6, rtol=1e-6, mistakes=mistakes)

    with group("expected_calibration_error against the bins written out: sizes, numbers of bins, dtypes, seeds"):
        for seed, (n, k, n_bins, dtype) in enumerate(
            [
                (300, 10, None, FLOAT64),
                (57, 3, 10, FLOAT32),
                (1, 4, 15, FLOAT64),
                (3, 2, 7, FLOAT32),
                (500, 100, 20, FLOAT64),
                (40, 5, 1, FLOAT64),
                (2000, 10, 15, FLOAT32),
                (200, 10, 50, FLOAT64),
            ]
        ):
            probs, labels = predictions(n, k, seed=30 + seed, n_bins=n_bins or 15, dtype=dtype, device=device)
            ece(
                case("expected_calibration_error", probs, labels, **({} if n_bins is None else {"n_bins": n_bins})),
                probs,
                labels,
                n_bins,
            )

    with group("expected_calibration_error: confidences on the edges m/M and 1.0, perfectly calibrated bins"):
        for name, probs, labels, n_bins in on_edges(device):
            ece(case("expected_calibration_error", probs, labels, n_bins=n_bins) + f" ({name})", probs, labels, n_bins)
        # every prediction at confidence 3/4 and three of four right: a perfectly calibrated bin, ECE 0
        probs = torch.tensor([[0.75, 0.25, 0.0]] * 4, dtype=FLOAT64, device=device)
        labels = torch.tensor([0, 0, 1, 0], device=device)
        ece(case("expected_calibration_error", probs, labels) + " (calibrated: ECE 0)", probs, labels, None)

    with group("expected_calibration_error: probs in every layout and requiring grad"):
        probs, labels = predictions(80, 7, seed=40, n_bins=9, device=device)
        for layout, variant in layouts(probs):
            ece(case("expected_calibration_error", variant, labels, n_bins=9) + f" ({layout})", variant, labels, 9)
        for note, variant in (("the output of a model", requiring_grad(probs)), ("a .grad", holding_grad(probs))):
            ece(case("expected_calibration_error", variant, labels, n_bins=9) + f" ({note})", variant, labels, 9)

    with group("expected_calibration_error on inputs on a (simulated) GPU"):
        probs, labels = predictions(30, 4, seed=41, device=device)
        with student.lending(reliability_bins=reference_reliability_bins):
            require_gpu_safe(case("expected_calibration_error", probs, labels), ece_of, probs, labels)


# ------------------------------------------------------------------ softmax_with_temperature


def reference_tempered(logits: torch.Tensor, T: float) -> torch.Tensor:
    z = logits.detach().to("cpu", FLOAT64) / float(T)
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))


def check_softmax_with_temperature(namespace: MutableMapping[str, Any]) -> None:
    """softmax_with_temperature(logits, T) = softmax(logits / T) over the classes, differentiable in T."""
    student = Student(namespace)
    tempered = student.function("softmax_with_temperature")
    device = student.device

    def check(label: str, logits: torch.Tensor, T, atol: float | None = None) -> torch.Tensor:
        result = call_leaving_unchanged(
            label, tempered, logits, T, inputs={"logits": logits} | ({"T": T} if isinstance(T, torch.Tensor) else {})
        )
        t = float(T.detach()) if isinstance(T, torch.Tensor) else float(T)
        expected = reference_tempered(logits, t)
        tol = tolerance(logits.dtype) if atol is None else atol
        mistakes = {
            "divide the logits by T (softmax(z / T)), do not multiply them": reference_tempered(logits, 1 / t),
            "the softmax runs over the classes (the last dimension), not over the examples": torch.softmax(
                logits.detach().double() / t, dim=0
            ),
            "apply the softmax once, to logits / T": torch.softmax(reference_tempered(logits, t), dim=-1),
        }
        check_form(label, result, shape=tuple(logits.shape), dtype=logits.dtype, device=logits.device)
        require(
            bool(torch.isfinite(result.detach()).all()),
            label,
            "the result contains NaN or infinity: exp(z / T) overflows for large logits or small T; subtract each "
            "row's maximum first, or use torch.softmax / F.softmax, which do",
        )
        assert_close(
            label, result, expected.to(device=logits.device, dtype=logits.dtype), atol=tol, rtol=tol, mistakes=mistakes
        )
        return result

    with group("softmax_with_temperature against logsumexp in float64: T above and below 1, shapes, dtypes"):
        for seed, (n, k, T, dtype) in enumerate(
            [
                (5, 3, 2.0, FLOAT64),
                (1, 10, 0.5, FLOAT64),
                (7, 2, 3, FLOAT32),
                (4, 100, 0.2, FLOAT32),
                (3, 5, 1.0, FLOAT64),
                (6, 4, 7.5, FLOAT64),
            ]
        ):
            logits = normal((n, k), seed=50 + seed, std=3.0, dtype=dtype, device=device)
            check(case("softmax_with_temperature", logits, T), logits, T)

    with group("softmax_with_temperature: large logits and small T stay finite; offsets change nothing"):
        logits = normal((4, 6), seed=60, std=1.0, device=device) * 1000
        check(case("softmax_with_temperature", logits, 0.01) + " (logits of size 1000)", logits, 0.01, atol=1e-9)
        base = normal((5, 4), seed=61, device=device)
        for dtype in (FLOAT64, FLOAT32):
            shifted = (base + 500).to(dtype)
            check(
                case("softmax_with_temperature", shifted, 0.5) + " (every logit near 500)",
                shifted,
                0.5,
                atol=1e-10 if dtype == FLOAT64 else 1e-4,
            )

    with group("softmax_with_temperature: T as a tensor (requiring grad), gradients, layouts, logits with a graph"):
        logits = normal((6, 5), seed=62, std=2.0, device=device)
        for note, T in (
            ("0-dim float64 tensor", torch.tensor(1.7, dtype=FLOAT64, device=device)),
            ("0-dim float32 tensor", torch.tensor(0.6, device=device)),
        ):
            check(case("softmax_with_temperature", logits, T) + f" ({note})", logits, T)
        T = torch.tensor(1.7, dtype=FLOAT64, device=device, requires_grad=True)
        label = case("softmax_with_temperature", logits, T)
        result = check(label, logits, T)
        require(
            result.requires_grad,
            label,
            "the result must depend on T through autograd: do not call .item(), float() or .detach() on T",
        )
        weights = normal((6, 5), seed=63, device=device)
        (grad,) = torch.autograd.grad((result * weights).sum(), T)
        t = T.detach().clone().requires_grad_(True)
        (expected,) = torch.autograd.grad((torch.softmax(logits / t, dim=-1) * weights).sum(), t)
        assert_close(label + ", gradient with respect to T", grad, expected, atol=1e-10, rtol=1e-10)
        for layout, variant in layouts(logits):
            check(case("softmax_with_temperature", variant, 2.0) + f" ({layout})", variant, 2.0)
        graph = requiring_grad(logits)
        label = case("softmax_with_temperature", graph, 2.0) + " (logits with a graph)"
        require(check(label, graph, 2.0).requires_grad, label, "the result must keep the logits' graph")

    with group("softmax_with_temperature on logits on a (simulated) GPU"):
        logits = normal((3, 4), seed=64, device=device)
        require_gpu_safe(case("softmax_with_temperature", logits, 2.0), tempered, logits, 2.0)


# ------------------------------------------------------------------ fit_temperature


def mean_nll(logits: torch.Tensor, labels: torch.Tensor, T: float) -> float:
    return F.cross_entropy(logits / T, labels).item()


def optimal_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """argmin_T NLL(T): a grid of 601 points on log T in [1e-3, 1e3], refined by golden-section search.

    NLL is convex in 1 / T, hence unimodal in log T, so the refinement cannot leave the optimum's basin.
    """
    z, y = logits.detach().to("cpu", FLOAT64), labels.detach().cpu()
    true_logit = z.gather(1, y.view(-1, 1))[:, 0]
    grid = torch.linspace(math.log(1e-3), math.log(1e3), 601, dtype=FLOAT64)
    losses = torch.cat(
        [
            (torch.logsumexp(z / t.view(-1, 1, 1), dim=2) - true_logit / t.view(-1, 1)).mean(dim=1)
            for t in grid.exp().split(50)
        ]
    )
    best = int(losses.argmin())
    low, high = grid[max(best - 1, 0)].item(), grid[min(best + 1, len(grid) - 1)].item()
    ratio = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if mean_nll(z, y, math.exp(a)) < mean_nll(z, y, math.exp(b)):
            high = b
        else:
            low = a
    return math.exp((low + high) / 2)


def calibration_problem(
    n: int, k: int, *, seed: int, overconfidence: float, dtype=FLOAT64, device=None, offset: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a model ``overconfidence`` times too sharp: labels drawn from softmax(z), the logits returned
    are overconfidence * z (so T* is near ``overconfidence``), plus a constant ``offset``."""
    gen = seeded(seed)
    z = 2.0 * torch.randn(n, k, generator=gen, dtype=FLOAT64)
    labels = torch.multinomial(torch.softmax(z, dim=1), 1, generator=gen)[:, 0]
    return (overconfidence * z + offset).to(device=device, dtype=dtype), labels.to(device)


def check_fit_temperature(namespace: MutableMapping[str, Any]) -> None:
    """fit_temperature(logits, labels) -> float T > 0 within 1 % of argmin_T mean NLL(softmax(logits / T))."""
    student = Student(namespace)
    fit = student.function("fit_temperature")
    device = student.device

    def fitted(label: str, logits: torch.Tensor, labels: torch.Tensor) -> float:
        snapshot_of = {"logits": logits, "labels": labels}
        start = time.perf_counter()
        with student.lending(softmax_with_temperature=reference_softmax_with_temperature):
            result = call_leaving_unchanged(label, fit, logits, labels, inputs=snapshot_of)
        seconds = time.perf_counter() - start
        if isinstance(result, torch.Tensor) and result.numel() == 1:
            fail(label, "return T as a Python float (T.item()), not a tensor")
        require(is_number(result), label, f"return T as a Python float, got {type(result).__name__}")
        require(math.isfinite(result) and result > 0, label, f"T must be a positive finite number, got {result!r}")
        optimum = optimal_temperature(logits, labels)
        z, y = logits.detach().to("cpu", FLOAT64), labels.cpu()
        at_result, at_optimum = mean_nll(z, y, result), mean_nll(z, y, optimum)
        mistakes = {
            "divide the logits by T: minimising the NLL of softmax(logits * T) gives 1 / T*": 1 / optimum,
            "T must minimise the NLL; accuracy does not depend on T, so fitting it by accuracy leaves T at its "
            "start": 1.0,
        }
        if abs(result - optimum) > 0.01 * optimum:
            for diagnosis, value in mistakes.items():
                if abs(result - value) <= 0.01 * value:
                    fail(label, diagnosis)
            between = min(1.0, optimum) <= result <= max(1.0, optimum)
            hint = (
                " It lies between the start T = 1 and T*: the optimiser stopped before it converged (more steps, "
                "a larger learning rate on log T, or torch.optim.LBFGS)"
                if between
                else ""
            )
            fail(
                label,
                f"T = {result:.4g} is not within 1 % of the minimiser T* = {optimum:.4g} (NLL {at_result:.6f} "
                f"instead of {at_optimum:.6f}).{hint}",
            )
        require(seconds < 60, label, f"took {seconds:.0f} s; a fit of one parameter must take seconds, not a minute")
        return result

    with group("fit_temperature against the minimiser found by grid and golden-section search (within 1 %)"):
        for seed, (n, k, overconfidence, dtype) in enumerate(
            [
                (500, 10, 2.5, FLOAT64),
                (300, 3, 0.4, FLOAT64),
                (1000, 10, 6.0, FLOAT32),
                (200, 2, 1.0, FLOAT32),
                (60, 100, 3.0, FLOAT64),
                (2000, 5, 0.25, FLOAT32),
                (25, 4, 1.7, FLOAT64),
            ]
        ):
            logits, labels = calibration_problem(
                n, k, seed=70 + seed, overconfidence=overconfidence, dtype=dtype, device=device
            )
            fitted(case("fit_temperature", logits, labels), logits, labels)

    with group("fit_temperature: logits with a graph, holding a .grad, in every layout, shifted by a constant"):
        logits, labels = calibration_problem(400, 6, seed=80, overconfidence=3.0, device=device)
        model = nn.Linear(6, 6).double().to(device)
        with torch.no_grad():
            model.weight.copy_(torch.eye(6, dtype=FLOAT64))
            model.bias.zero_()
        out = model(logits)  # the same values, with a graph back into the model, as fit_temperature(model(x), y)
        fitted(case("fit_temperature", out, labels) + " (logits = model(x), with a graph)", out, labels)
        fitted(
            case("fit_temperature", holding_grad(logits), labels) + " (a leaf holding a .grad)",
            holding_grad(logits),
            labels,
        )
        for layout, variant in list(layouts(logits))[1:]:
            fitted(case("fit_temperature", variant, labels) + f" ({layout})", variant, labels)
        for dtype in (FLOAT64, FLOAT32):
            shifted, labels = calibration_problem(
                300, 5, seed=81, overconfidence=2.0, dtype=dtype, offset=60.0, device=device
            )
            fitted(case("fit_temperature", shifted, labels) + " (every logit shifted by 60)", shifted, labels)

    with group("fit_temperature on logits on a (simulated) GPU"):
        logits, labels = calibration_problem(100, 4, seed=82, overconfidence=2.0, device=device)
        with student.lending(softmax_with_temperature=reference_softmax_with_temperature):
            require_gpu_safe(case("fit_temperature", logits, labels), fit, logits, labels)


# ------------------------------------------------------------------ max_softmax_score


def check_max_softmax_score(namespace: MutableMapping[str, Any]) -> None:
    """max_softmax_score(model, x) = max_k softmax(model(x))_k per input, in eval mode, without a graph."""
    student = Student(namespace)
    msp = student.function("max_softmax_score")
    device = student.device

    def score(label: str, model: nn.Module, x: torch.Tensor, atol: float | None = None) -> torch.Tensor:
        with student.lending(softmax_with_temperature=reference_softmax_with_temperature):
            result = call_leaving_unchanged(label, msp, model, x, inputs={"model": model, "x": x})
        twin = copy.deepcopy(model).eval()
        with torch.no_grad():
            raw = twin(x.detach())
        logits, out_dtype = raw.double(), raw.dtype
        expected = logits.softmax(dim=1).amax(dim=1)
        mistakes = {
            "take the maximum of the softmax probabilities, not of the logits": logits.amax(dim=1),
            "the softmax runs over the classes (dim=1), not over the batch": logits.softmax(dim=0).amax(dim=1),
            "the score is the maximum probability, not its logarithm (log_softmax)": logits.log_softmax(dim=1).amax(
                dim=1
            ),
        }
        if model.training:
            with torch.no_grad():
                train_logits = copy.deepcopy(model).train()(x.detach()).double()
            mistakes["compute the scores in eval mode (model.eval() first, then restore the mode)"] = (
                train_logits.softmax(dim=1).amax(dim=1)
            )
        tol = tolerance(out_dtype) if atol is None else atol
        check_form(label, result, shape=(len(x),), dtype=out_dtype, device=x.device)
        assert_close(
            label, result, expected.to(device=x.device, dtype=out_dtype), atol=tol, rtol=tol, mistakes=mistakes
        )
        require(
            not result.requires_grad and result.grad_fn is None,
            label,
            "the scores carry an autograd graph; compute them under torch.no_grad()",
        )
        return result

    with group("max_softmax_score against a copy in eval mode: models that differ in train and eval mode"):
        for seed, (batch, training) in enumerate([(5, True), (1, True), (7, False), (3, True)]):
            model = mode_sensitive_cnn(2, 5, 4, device=device, seed=90 + seed).train(training)
            x = normal((batch, 2, 5, 5), seed=95 + seed, device=device)
            score(case("max_softmax_score", model, x), model, x)
        model = batchnorm_dropout_cnn(1, 4, 10, device=device, seed=99).train()
        x = normal((6, 1, 4, 4), seed=100, dtype=FLOAT32, device=device)
        score(case("max_softmax_score", model, x) + " (batch norm and dropout)", model, x, atol=2e-6)
        model = mode_sensitive_mlp(8, 3, device=device, seed=101).train()
        x = normal((2, 8), seed=102, device=device)
        score(case("max_softmax_score", model, x) + " (flat inputs)", model, x)

    with group("max_softmax_score: logits in the thousands, x requiring grad or in other layouts"):
        model = mode_sensitive_mlp(5, 4, device=device, seed=103).train()
        with torch.no_grad():
            model[-1].weight.mul_(3000)
        x = normal((6, 5), seed=104, device=device)
        score(case("max_softmax_score", model, x) + " (logits in the thousands)", model, x)
        for note, variant in (("requires grad", x.clone().requires_grad_(True)), ("holds a .grad", holding_grad(x))):
            score(case("max_softmax_score", model, variant) + f" (x {note})", model, variant)
        for layout, variant in list(layouts(x))[1:]:
            score(case("max_softmax_score", model, variant) + f" ({layout})", model, variant)

    with group("max_softmax_score: the model runs without building a graph"):
        model = nn.Sequential(NoGradOnly(), mode_sensitive_mlp(4, 3, device=device, seed=108)).train()
        x = normal((3, 4), seed=109, device=device)
        score(case("max_softmax_score", model, x) + " (a model that must run under torch.no_grad())", model, x)

    with group("max_softmax_score: the mode restored after an error, and on a (simulated) GPU"):
        for training in (True, False):
            model = nn.Sequential(nn.Linear(3, 3), Fails()).to(device).train(training)
            x = normal((2, 3), seed=105, dtype=FLOAT32, device=device)
            label = case("max_softmax_score", model, x) + " (a model whose forward raises)"
            snapshot = Snapshot(model=model, x=x)
            try:
                msp(model, x)
            except Exception:  # noqa: BLE001, S110 - raising is allowed; what matters is the mode it left
                pass
            snapshot.assert_unchanged(label, grads=False)
        model = mode_sensitive_cnn(1, 4, 3, device=device, seed=106).train()
        x = normal((3, 1, 4, 4), seed=107, device=device)
        with student.lending(softmax_with_temperature=reference_softmax_with_temperature):
            require_gpu_safe(case("max_softmax_score", model, x), msp, model, x)


# ------------------------------------------------------------------ auroc


def reference_auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    s_in, s_out = scores_in.detach().cpu().double().numpy(), scores_out.detach().cpu().double().numpy()
    labels = [1] * len(s_in) + [0] * len(s_out)
    return float(roc_auc_score(labels, list(s_in) + list(s_out)))


def pair_counts(scores_in: torch.Tensor, scores_out: torch.Tensor) -> tuple[float, float]:
    """(share of pairs the in-distribution score wins, share of ties), counted over every pair in float64."""
    s_in = scores_in.detach().cpu().double().view(-1, 1)
    s_out = scores_out.detach().cpu().double().view(1, -1)
    return (s_in > s_out).double().mean().item(), (s_in == s_out).double().mean().item()


def auroc_forbidden() -> dict[Callable, str]:
    import sklearn.metrics

    return {
        sklearn.metrics.roc_auc_score: "sklearn.metrics.roc_auc_score",
        sklearn.metrics.roc_curve: "sklearn.metrics.roc_curve",
        sklearn.metrics.auc: "sklearn.metrics.auc",
    }


def check_auroc(namespace: MutableMapping[str, Any]) -> None:
    """auroc(scores_in, scores_out) = P(s_in > s_out) + P(s_in = s_out) / 2, a float, without scikit-learn."""
    student = Student(namespace)
    auroc = student.function("auroc")
    device = student.device
    forbidden = auroc_forbidden()

    def check(label: str, scores_in: torch.Tensor, scores_out: torch.Tensor) -> None:
        with forbidding(label, forbidden, "the area under the ROC curve, from tensor operations"):
            result = call_leaving_unchanged(
                label, auroc, scores_in, scores_out, inputs={"scores_in": scores_in, "scores_out": scores_out}
            )
        wins, ties = pair_counts(scores_in, scores_out)
        mistakes = {}
        if ties:
            mistakes["a tie counts one half: ties are pairs where neither score is higher"] = wins
            mistakes["a tie counts one half, not one"] = wins + ties
        mistakes[
            "in-distribution is the positive class: the area is P(s_in > s_out) (+ ties / 2), not P(s_out > s_in)"
        ] = 1 - wins - ties / 2
        assert_close(label, result, reference_auroc(scores_in, scores_out), atol=1e-6, mistakes=mistakes)

    with group("auroc against sklearn.metrics.roc_auc_score: continuous scores, sizes, dtypes, seeds"):
        for seed, (n_in, n_out, shift, dtype) in enumerate(
            [
                (300, 200, 1.0, FLOAT64),
                (1, 1, 0.5, FLOAT64),
                (1, 7, 0.3, FLOAT32),
                (9, 1, -0.2, FLOAT32),
                (2000, 1500, 0.8, FLOAT32),
                (50, 50, 0.0, FLOAT64),
                (400, 30, -1.0, FLOAT64),
            ]
        ):
            scores_in = normal((n_in,), seed=110 + seed, mean=shift, dtype=dtype, device=device)
            scores_out = normal((n_out,), seed=120 + seed, dtype=dtype, device=device)
            check(case("auroc", scores_in, scores_out), scores_in, scores_out)

    with group("auroc with ties: discrete scores, all equal, perfectly separated either way"):
        for seed, (n_in, n_out) in enumerate([(40, 60), (7, 3), (1, 5), (500, 400)]):
            scores_in = torch.randint(0, 4, (n_in,), generator=seeded(130 + seed)).double().to(device)
            scores_out = torch.randint(0, 3, (n_out,), generator=seeded(140 + seed)).double().to(device)
            check(case("auroc", scores_in, scores_out) + " (scores in {0, 1, 2, 3})", scores_in, scores_out)
            check(
                case("auroc", scores_in.float(), scores_out.float()) + " (float32)",
                scores_in.float(),
                scores_out.float(),
            )
        for name, (a, b) in {
            "all scores equal": (torch.ones(4), torch.ones(6)),
            "separated: every in-distribution score higher": (torch.full((3,), 0.9), torch.zeros(5)),
            "separated: every in-distribution score lower": (torch.zeros(5), torch.full((3,), 0.9)),
            "MSP-like scores, many exactly 1.0": (
                torch.tensor([1.0, 1.0, 0.99, 1.0, 0.7]),
                torch.tensor([1.0, 0.5, 0.99, 0.3]),
            ),
        }.items():
            check(case("auroc", a, b) + f" ({name})", a.to(device), b.to(device))

    with group("auroc: scores requiring grad, in strided views, and on a (simulated) GPU"):
        scores_in = normal((30,), seed=150, mean=0.5, device=device)
        scores_out = normal((20,), seed=151, device=device)
        check(
            case("auroc", requiring_grad(scores_in), scores_out) + " (scores with a graph)",
            requiring_grad(scores_in),
            requiring_grad(scores_out),
        )
        check(
            case("auroc", holding_grad(scores_in), scores_out) + " (scores holding a .grad)",
            holding_grad(scores_in),
            scores_out,
        )
        for layout, variant in list(layouts(scores_in))[1:]:
            check(case("auroc", variant, scores_out) + f" ({layout})", variant, scores_out)
        require_gpu_safe(case("auroc", scores_in, scores_out), auroc, scores_in, scores_out)
