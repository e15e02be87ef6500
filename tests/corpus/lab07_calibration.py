"""lab07_calibration: realistic mistakes (each caught by the named test cell) and correct alternatives.

The mistakes are written as students write these functions from scratch (loops over the bins, numpy,
hand-made softmaxes, grids and optimisers), with one-line edits of the reference answer in between.
Each wrong entry is self-contained in its own answer cell (none calls another answer), so it loses
points in its own test cells only. Many pass the visible test and are caught by the hidden tests of
the same cell: a float32 result only on float32 inputs, a tensor made on the CPU only on a (simulated)
GPU, an input changed in place only by the hidden snapshot, a missing try/finally only on a model whose
forward raises, an optimum above 5 only on the hidden problems (the visible ones are 4.33 and 0.455).

The visible checks of ``expected_calibration_error``, ``fit_temperature`` and ``max_softmax_score`` never
fail their cell: these answers may call another one, so a failed visible check is printed ("checks
stopped: ...") and the points are lost in the hidden tests, which lend a correct version of the other
answer and name most mistakes themselves. Correct alternatives may call another answer (an ECE on
``reliability_bins``, a fit on ``softmax_with_temperature``, an MSP on it at T = 1): they are packed with
correct answers only.

"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab07_calibration"
# Each test cell tests one answer only (tests/test_lab_namespaces.py checks it), so entries of different answer
# cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "reliability_bins": ("test_reliability_bins",),
    "expected_calibration_error": ("test_expected_calibration_error",),
    "softmax_with_temperature": ("test_softmax_with_temperature",),
    "fit_temperature": ("test_fit_temperature",),
    "max_softmax_score": ("test_max_softmax_score",),
    "auroc": ("test_auroc",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

BINS, ECE = ("test_reliability_bins",), ("test_expected_calibration_error",)
SOFTMAX, FIT = ("test_softmax_with_temperature",), ("test_fit_temperature",)
MSP, AUROC = ("test_max_softmax_score",), ("test_auroc",)
Q1, Q2, Q3, Q4, Q5 = ("test_q1",), ("test_q2",), ("test_q3",), ("test_q4",), ("test_q5",)

# reliability_bins
BUCKETIZE = "torch.bucketize(confidence, inner_edges)"
BUCKETIZE_LINE = (
    "    bin_of = torch.bucketize(confidence, inner_edges)  # edges[m-1] < c <= edges[m]: closed on the right\n"
)
BIN_COUNT = "    count = torch.bincount(bin_of, minlength=n_bins)\n"
BIN_ZEROS = "    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)\n"
BIN_RETURN = "    return confidence_sum / count, correct_sum / count, count"
TOP = "    confidence, prediction = probs.detach().max(dim=1)\n"
CORRECT = "    correct = (prediction == labels).double()\n"
# expected_calibration_error
ECE_RETURN = "    return per_bin.abs().sum().item() / len(labels)"
ECE_ZEROS = "torch.zeros(n_bins, dtype=torch.float64, device=probs.device).index_add"
# fit_temperature
LOG_T = "torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)"
FIT_RETURN = "    return log_t.exp().item()"
# max_softmax_score
# reliability_bins in numpy on the CPU, up to the return (which brings the results back, or not)
NUMPY_BINS = """import numpy as np


def reliability_bins(probs, labels, n_bins=15):
    p = probs.detach().cpu().numpy().astype(np.float64)
    y = labels.cpu().numpy()
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    bin_of = np.digitize(confidence, np.linspace(0, 1, n_bins + 1)[1:-1], right=True)
    count = np.bincount(bin_of, minlength=n_bins)
    with np.errstate(invalid="ignore"):
        conf = np.bincount(bin_of, weights=confidence, minlength=n_bins) / count
        acc = np.bincount(bin_of, weights=correct, minlength=n_bins) / count
"""
MSP_LINE = "            return model(x).softmax(dim=1).amax(dim=1)\n"
# auroc
WINS = "    wins = (s_in > s_out).double().mean()\n"
AUROC_RETURN = "    return (wins + 0.5 * ties).item()"
# questions
Q2_LINE = next(line for line in REFERENCE["questions"].splitlines() if line.startswith("q2_answer"))

CORPUS = [
    # --- reliability_bins
    # right=True puts a confidence of exactly m/M in bin m + 1: the visible edges 0.5 and 0.75 show it
    edit("bins_bucketize_right", "reliability_bins", BUCKETIZE, f"{BUCKETIZE[:-1]}, right=True)", BINS),
    # floor(c * M) sends a confidence of 1 to bin M, one past the last: index_add fails on the visible 1.0
    edit(
        "bins_floor_without_clamp",
        "reliability_bins",
        BUCKETIZE_LINE,
        "    bin_of = (confidence * n_bins).floor().long()  # bin m - 1 holds [(m-1)/M, m/M)\n",
        BINS,
    ),
    # clamped, 1.0 lands in the last bin, but the bins are [(m-1)/M, m/M): the visible edges 0.5 and 0.75
    Wrong(
        "bins_floor_clamped",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    conf, pred = probs.detach().double().max(dim=1)
    acc = (pred == labels).double()
    idx = torch.clamp((conf * n_bins).long(), max=n_bins - 1)  # a confidence of 1.0 goes to the last bin
    count = torch.zeros(n_bins, dtype=torch.int64, device=probs.device).scatter_add_(0, idx, torch.ones_like(idx))
    conf_sum = torch.zeros(n_bins, dtype=torch.float64, device=probs.device).scatter_add_(0, idx, conf)
    acc_sum = torch.zeros(n_bins, dtype=torch.float64, device=probs.device).scatter_add_(0, idx, acc)
    return conf_sum / count, acc_sum / count, count
""",
        BINS,
    ),
    # closed on the left, and the last bin [(M-1)/M, 1) drops the visible confidence 1.0
    Wrong(
        "bins_loop_closed_on_the_left",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidences, predictions = probs.detach().max(dim=1)
    confidences = confidences.double()
    accuracies = predictions.eq(labels).double()
    confidence = torch.full((n_bins,), float("nan"), dtype=torch.float64, device=probs.device)
    accuracy = torch.full((n_bins,), float("nan"), dtype=torch.float64, device=probs.device)
    count = torch.zeros(n_bins, dtype=torch.int64, device=probs.device)
    for m in range(n_bins):
        in_bin = (confidences >= m / n_bins) & (confidences < (m + 1) / n_bins)
        count[m] = in_bin.sum()
        if count[m] > 0:
            confidence[m] = confidences[in_bin].mean()
            accuracy[m] = accuracies[in_bin].mean()
    return confidence, accuracy, count
""",
        BINS,
    ),
    # all M + 1 edges, right=True, minus one: closed on the left, and a confidence of 1 (bin M) masked away
    Wrong(
        "bins_last_bin_drops_confidence_one",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=probs.device)
    bin_of = torch.bucketize(confidence, edges, right=True) - 1
    keep = bin_of < n_bins
    bin_of, confidence, correct = bin_of[keep], confidence[keep], correct[keep]
    count = torch.bincount(bin_of, minlength=n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    return zeros.index_add(0, bin_of, confidence) / count, zeros.index_add(0, bin_of, correct) / count, count
""",
        BINS,
    ),
    # edges accumulated by adding 1/M: exact for the visible 4 bins, but 15 x (1/15) = 0.9999999999999999, so
    # the hidden one-hot predictions (confidence 1, default 15 bins) fall out of the last bin
    Wrong(
        "bins_edges_accumulated",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidences, predictions = probs.detach().max(dim=1)
    confidences = confidences.double()
    correct = (predictions == labels).double()
    width = 1.0 / n_bins
    means, accuracies, counts = [], [], []
    low = 0.0
    for _ in range(n_bins):
        high = low + width
        in_bin = (confidences > low) & (confidences <= high)
        counts.append(in_bin.sum())
        means.append(confidences[in_bin].mean())  # NaN when the bin is empty
        accuracies.append(correct[in_bin].mean())
        low = high
    return torch.stack(means), torch.stack(accuracies), torch.stack(counts)
""",
        BINS,
    ),
    # the visible count check names it
    edit(
        "bins_true_class_confidence",
        "reliability_bins",
        TOP,
        "    prediction = probs.detach().argmax(dim=1)\n"
        "    confidence = probs.detach().gather(1, labels.view(-1, 1))[:, 0]  # the confidence in the right answer\n",
        BINS,
    ),
    # the visible (0.25, 0.5, 0.25) with label 1 is right (its top class) but its true-class probability is 0.5
    edit(
        "bins_correct_if_true_class_above_half",
        "reliability_bins",
        CORRECT,
        "    correct = (probs.detach().gather(1, labels.view(-1, 1))[:, 0] > 0.5).double()\n",
        BINS,
    ),
    # the visible empty first bin
    edit(
        "bins_empty_as_zero",
        "reliability_bins",
        BIN_RETURN,
        "    safe = count.clamp(min=1)  # no division by zero\n"
        "    return confidence_sum / safe, correct_sum / safe, count",
        BINS,
    ),
    # float64 on the visible float64 inputs; float32 on the hidden float32 ones
    Wrong(
        "bins_in_the_inputs_dtype",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    correct = (prediction == labels).to(probs.dtype)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=probs.dtype, device=probs.device)
    bin_of = torch.bucketize(confidence, edges[1:-1])
    count = torch.bincount(bin_of, minlength=n_bins)
    confidence_sum = torch.zeros(n_bins, dtype=probs.dtype, device=probs.device).index_add(0, bin_of, confidence)
    correct_sum = torch.zeros_like(confidence_sum).index_add(0, bin_of, correct)
    return confidence_sum / count, correct_sum / count, count
""",
        BINS,
    ),
    # the visible dtype check
    edit(
        "bins_count_as_float",
        "reliability_bins",
        BIN_COUNT,
        "    count = torch.zeros(n_bins, dtype=torch.float64, device=probs.device).index_add(\n"
        "        0, bin_of, torch.ones_like(confidence))\n",
        BINS,
    ),
    # the sums start on the CPU: only the hidden tests' (simulated) GPU sees it
    edit(
        "bins_sums_made_on_the_cpu",
        "reliability_bins",
        BIN_ZEROS,
        "    zeros = torch.zeros(n_bins, dtype=torch.float64)\n",
        BINS,
    ),
    # the visible test passes n_bins=4; the hidden ones also call it with the default
    edit("bins_default_of_10", "reliability_bins", "n_bins: int = 15", "n_bins: int = 10", BINS),
    # bincount without minlength stops at the highest filled bin: the visible last bin holds 1.0, the hidden
    # single prediction leaves the bins above it empty
    Wrong(
        "bins_bincount_without_minlength",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    bin_of = (confidence * n_bins).ceil().long() - 1
    count = torch.bincount(bin_of)
    return torch.bincount(bin_of, weights=confidence) / count, torch.bincount(bin_of, weights=correct) / count, count
""",
        BINS,
    ),
    # right on the CPU; the tensors come back on the CPU: only the (simulated) GPU sees it (torch.as_tensor is a
    # torch function it watches; torch.from_numpy is marked by the simulation itself)
    Wrong(
        "bins_numpy_result_left_on_the_cpu",
        "reliability_bins",
        NUMPY_BINS + "    return torch.as_tensor(conf), torch.as_tensor(acc), torch.as_tensor(count)\n",
        BINS,
    ),
    # --- expected_calibration_error (the visible checks print what they find; the hidden tests take the points)
    # the visible check prints the diagnosis, the hidden tests name it again
    Wrong(
        "ece_mean_of_the_gaps",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    gaps = []
    for m in range(n_bins):
        in_bin = (confidence > m / n_bins) & (confidence <= (m + 1) / n_bins)
        if in_bin.any():
            gaps.append((correct[in_bin].mean() - confidence[in_bin].mean()).abs())
    return torch.stack(gaps).mean().item()
""",
        ECE,
    ),
    # the hidden tests name it (the visible value is 0.125 instead of 0.179)
    Wrong(
        "ece_divided_by_n_bins",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    total = 0.0
    for m in range(n_bins):
        in_bin = (confidence > m / n_bins) & (confidence <= (m + 1) / n_bins)
        if in_bin.any():
            total += (correct[in_bin].mean() - confidence[in_bin].mean()).abs().item()
    return total / n_bins
""",
        ECE,
    ),
    # the visible check prints the diagnosis, the hidden tests name it again
    edit(
        "ece_abs_of_the_sum",
        "expected_calibration_error",
        ECE_RETURN,
        "    return per_bin.sum().abs().item() / len(labels)",
        ECE,
    ),
    # the hidden tests name it
    Wrong(
        "ece_root_mean_square",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    total = 0.0
    for m in range(n_bins):
        in_bin = (confidence > m / n_bins) & (confidence <= (m + 1) / n_bins)
        if in_bin.any():
            weight = in_bin.double().mean().item()
            total += weight * (correct[in_bin].mean() - confidence[in_bin].mean()).item() ** 2
    return total**0.5
""",
        ECE,
    ),
    # the hidden tests name it
    Wrong(
        "ece_maximum_gap",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    worst = 0.0
    for m in range(n_bins):
        in_bin = (confidence > m / n_bins) & (confidence <= (m + 1) / n_bins)
        if in_bin.any():
            worst = max(worst, (correct[in_bin].mean() - confidence[in_bin].mean()).abs().item())
    return worst
""",
        ECE,
    ),
    # the visible float check prints it; the hidden comparison wants a Python number
    edit(
        "ece_returns_a_tensor",
        "expected_calibration_error",
        ECE_RETURN,
        "    return per_bin.abs().sum() / len(labels)",
        ECE,
    ),
    # the empty bins' NaN gaps make the sum NaN (the visible empty first bin; every hidden case with an empty bin)
    Wrong(
        "ece_nan_from_empty_bins",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.double()
    correct = (prediction == labels).double()
    bin_of = torch.bucketize(confidence, torch.linspace(0, 1, n_bins + 1, dtype=torch.float64,
                                                        device=probs.device)[1:-1])
    count = torch.bincount(bin_of, minlength=n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    bin_confidence = zeros.index_add(0, bin_of, confidence) / count
    bin_accuracy = zeros.index_add(0, bin_of, correct) / count
    return torch.sum(count / len(labels) * (bin_accuracy - bin_confidence).abs()).item()
""",
        ECE,
    ),
    # the visible checks pass n_bins=4 or cannot tell (ECE 0 either way); the hidden ones use the default and name it
    edit("ece_default_of_10", "expected_calibration_error", "n_bins: int = 15", "n_bins: int = 10", ECE),
    # the per-bin sums start on the CPU: only the (simulated) GPU sees it
    edit(
        "ece_sums_made_on_the_cpu",
        "expected_calibration_error",
        ECE_ZEROS,
        "torch.zeros(n_bins, dtype=torch.float64).index_add",
        ECE,
    ),
    # the rows are renormalised in place through a detached view: right values, but only the hidden snapshot
    # sees the input's version counter move
    edit(
        "ece_probs_renormalised_in_place",
        "expected_calibration_error",
        "    confidence, prediction = probs.detach().max(dim=1)\n",
        "    p = probs.detach()\n    p /= p.sum(dim=1, keepdim=True)  # make sure every row sums to 1\n"
        "    confidence, prediction = p.max(dim=1)\n",
        ECE,
    ),
    # --- softmax_with_temperature
    # the visible check names it
    Wrong(
        "softmax_multiplied_by_t",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    return torch.softmax(logits * T, dim=-1)
""",
        SOFTMAX,
    ),
    # the visible check names it
    edit("softmax_over_dim_0", "softmax_with_temperature", "dim=-1", "dim=0", SOFTMAX),
    # exp(1000 / 0.1) overflows: the visible large-logit check
    Wrong(
        "softmax_naive_exp",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    e = torch.exp(logits / T)
    return e / e.sum(dim=-1, keepdim=True)
""",
        SOFTMAX,
    ),
    # the visible gradient check
    Wrong(
        "softmax_t_as_a_number",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    if isinstance(T, torch.Tensor):
        T = T.item()
    return torch.softmax(logits / T, dim=-1)
""",
        SOFTMAX,
    ),
    # the visible values (the hidden tests name it)
    edit(
        "softmax_applied_twice",
        "softmax_with_temperature",
        "torch.softmax(logits / T, dim=-1)",
        "torch.softmax(torch.softmax(logits, dim=-1) / T, dim=-1)",
        SOFTMAX,
    ),
    # the values are right (the visible test computes its expectation before each call); only the hidden
    # snapshot sees the caller's logits divided in place
    Wrong(
        "softmax_logits_divided_in_place",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    logits /= T
    return torch.softmax(logits, dim=-1)
""",
        SOFTMAX,
    ),
    # the largest logit of the whole batch: stable for the visible single large row; the hidden rows of
    # logits in the thousands at T = 0.01 underflow to 0 / 0
    Wrong(
        "softmax_global_max_subtracted",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    z = logits / T
    e = torch.exp(z - z.max())
    return e / e.sum(dim=-1, keepdim=True)
""",
        SOFTMAX,
    ),
    # T's gradient still flows (the visible check); the hidden logits with a graph lose theirs
    edit(
        "softmax_logits_detached",
        "softmax_with_temperature",
        "torch.softmax(logits / T, dim=-1)",
        "torch.softmax(logits.detach() / T, dim=-1)",
        SOFTMAX,
    ),
    # --- fit_temperature (the visible checks print what they find; the hidden tests take the points)
    # the visible check prints the diagnosis, the hidden tests name it again
    edit("fit_multiplied_by_t", "fit_temperature", "z / log_t.exp()", "z * log_t.exp()", FIT),
    # 100 Adam steps of 0.01 move log T by 1 at most: T* = 4.33 needs 1.47, and the hidden message says it stopped
    # between the start and T*
    Wrong(
        "fit_adam_too_few_steps",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.Adam([log_t], lr=0.01)
    for _ in range(100):
        optimizer.zero_grad()
        loss = F.cross_entropy(z / log_t.exp(), labels)
        loss.backward()
        optimizer.step()
    return log_t.exp().item()
""",
        FIT,
    ),
    # plain gradient descent on T with a small step: the NLL is flat in T for large T, so it stops short
    Wrong(
        "fit_sgd_on_t_small_learning_rate",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    T = torch.ones((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.SGD([T], lr=0.01)
    for _ in range(300):
        optimizer.zero_grad()
        F.cross_entropy(z / T, labels).backward()
        optimizer.step()
    return T.item()
""",
        FIT,
    ),
    # steps of 0.1: 9.9 % from the visible T* = 1 / log 9 = 0.455, 1.1 % from the first hidden T* = 2.426
    Wrong(
        "fit_grid_too_coarse",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    temperatures = torch.arange(0.1, 5.0001, 0.1, dtype=torch.float64).tolist()
    losses = [F.cross_entropy(z / t, labels).item() for t in temperatures]
    return temperatures[losses.index(min(losses))]
""",
        FIT,
    ),
    # fine enough (steps of 0.0025), but it stops at 5: the visible optima are 4.33 and 0.455, a hidden one 5.87
    Wrong(
        "fit_grid_stops_at_5",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    temperatures = torch.linspace(0.05, 5.0, 2000, dtype=torch.float64, device=z.device)
    losses = torch.stack([F.cross_entropy(z / t, labels) for t in temperatures])
    return temperatures[losses.argmin()].item()
""",
        FIT,
    ),
    # without detach, each L-BFGS evaluation backpropagates into the model's graph: the second one fails on the
    # hidden logits = model(x), and a leaf's .grad changes (the visible logits have no graph)
    edit("fit_logits_not_detached", "fit_temperature", "z = logits.detach().double()", "z = logits.double()", FIT),
    # accuracy does not depend on T: no T beats the start, T = 1 (the hidden tests name it)
    Wrong(
        "fit_by_accuracy",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach()
    best_t = 1.0
    best_accuracy = (torch.softmax(z / best_t, dim=1).argmax(dim=1) == labels).double().mean().item()
    for t in torch.linspace(0.1, 10, 100).tolist():
        accuracy = (torch.softmax(z / t, dim=1).argmax(dim=1) == labels).double().mean().item()
        if accuracy > best_accuracy:
            best_t, best_accuracy = t, accuracy
    return best_t
""",
        FIT,
    ),
    # the hidden tests name it
    edit("fit_returns_a_tensor", "fit_temperature", FIT_RETURN, "    return log_t.exp().detach()", FIT),
    # shifted through a detached view of the caller's logits (NLL unchanged, so the fit is right): only the
    # hidden snapshot sees it
    edit(
        "fit_logits_shifted_in_place",
        "fit_temperature",
        "    z = logits.detach().double()\n",
        "    z = logits.detach()\n"
        "    z -= z.max(dim=1, keepdim=True).values  # numerical stability\n"
        "    z = z.double()\n",
        FIT,
    ),
    # T itself starts at 0: z / 0 is infinite, the loss and T NaN
    Wrong(
        "fit_t_started_at_zero",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    T = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.Adam([T], lr=0.01)
    for _ in range(1000):
        optimizer.zero_grad()
        F.cross_entropy(z / T, labels).backward()
        optimizer.step()
    return T.item()
""",
        FIT,
    ),
    # nll_loss wants log-probabilities: this maximises the mean probability of the label instead
    edit(
        "fit_nll_loss_of_probabilities",
        "fit_temperature",
        "F.cross_entropy(z / log_t.exp(), labels)",
        "F.nll_loss(torch.softmax(z / log_t.exp(), dim=1), labels)",
        FIT,
    ),
    # a (1,) parameter made on the CPU: only the (simulated) GPU sees it
    edit(
        "fit_parameter_made_on_the_cpu",
        "fit_temperature",
        LOG_T,
        "torch.zeros(1, dtype=torch.float64, requires_grad=True)",
        FIT,
    ),
    # Newton's method on T without a safeguard: the NLL is not convex in T, and from T = 1 the step overshoots on
    # a hidden problem with T* = 0.34 (the visible ones converge)
    Wrong(
        "fit_newton_on_t_undamped",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    T = torch.ones((), dtype=torch.float64, device=z.device, requires_grad=True)
    for _ in range(50):
        loss = F.cross_entropy(z / T, labels)
        (g,) = torch.autograd.grad(loss, T, create_graph=True)
        (h,) = torch.autograd.grad(g, T)
        with torch.no_grad():
            T -= g / h
    return T.item()
""",
        FIT,
    ),
    # --- max_softmax_score (the visible checks print what they find; the hidden tests take the points)
    # the visible dropout network, the hidden mode-sensitive ones (which name it)
    edit("msp_in_train_mode", "max_softmax_score", "    model.eval()\n", "", MSP),
    # the visible and hidden checks from train mode
    Wrong(
        "msp_mode_not_restored",
        "max_softmax_score",
        """
def max_softmax_score(model, x):
    model.eval()
    with torch.no_grad():
        return torch.softmax(model(x), dim=1).max(dim=1).values
""",
        MSP,
    ),
    # the visible and hidden checks from eval mode
    edit("msp_back_to_train_mode", "max_softmax_score", "model.train(was_training)", "model.train()", MSP),
    # the visible and hidden no-gradient checks
    edit(
        "msp_without_no_grad",
        "max_softmax_score",
        "        with torch.no_grad():\n" + MSP_LINE,
        MSP_LINE.replace("            ", "        "),
        MSP,
    ),
    # the visible check prints the diagnosis, the hidden tests name it again
    edit("msp_max_logit", "max_softmax_score", "model(x).softmax(dim=1).amax(dim=1)", "model(x).amax(dim=1)", MSP),
    # the visible check prints the diagnosis, the hidden tests name it again
    edit("msp_softmax_over_dim_0", "max_softmax_score", "softmax(dim=1)", "softmax(dim=0)", MSP),
    # the hidden tests name it
    edit("msp_log_softmax", "max_softmax_score", ".softmax(dim=1)", ".log_softmax(dim=1)", MSP),
    # exp of the hidden logits in the thousands overflows: inf / inf (the visible logits are small)
    edit(
        "msp_naive_exp",
        "max_softmax_score",
        MSP_LINE,
        "            e = model(x).exp()\n            return (e / e.sum(dim=1, keepdim=True)).amax(dim=1)\n",
        MSP,
    ),
    # only the (simulated) GPU sees it
    edit(
        "msp_moved_to_the_cpu",
        "max_softmax_score",
        "model(x).softmax(dim=1).amax(dim=1)",
        "model(x).softmax(dim=1).amax(dim=1).cpu()",
        MSP,
    ),
    # the float64 models' scores come back in float32 (visible and hidden)
    edit(
        "msp_in_float32",
        "max_softmax_score",
        "model(x).softmax(dim=1).amax(dim=1)",
        "model(x).softmax(dim=1).amax(dim=1).float()",
        MSP,
    ),
    # the visible x does not require grad; the hidden one does, and comes back without
    edit(
        "msp_input_requires_grad_switched_off",
        "max_softmax_score",
        "    was_training = model.training\n",
        "    x.requires_grad_(False)  # no gradients needed\n    was_training = model.training\n",
        MSP,
    ),
    # the visible model never raises; the hidden one's forward does, and is left in eval mode
    Wrong(
        "msp_mode_not_restored_after_an_error",
        "max_softmax_score",
        """
def max_softmax_score(model, x):
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = model(x).softmax(dim=1).max(dim=1).values
    model.train(was_training)
    return scores
""",
        MSP,
    ),
    # --- auroc
    # the visible ties (0.4 against 0.4) and its diagnoses
    edit("auroc_ties_ignored", "auroc", AUROC_RETURN, "    return wins.item()", AUROC),
    # the visible tie, diagnosed by the hidden tests
    edit("auroc_ties_count_one", "auroc", AUROC_RETURN, "    return (wins + ties).item()", AUROC),
    # the visible check names it
    edit("auroc_classes_swapped", "auroc", WINS, "    wins = (s_out > s_in).double().mean()\n", AUROC),
    # ordinal ranks split ties by position: the visible three-way tie at 0.4, the hidden discrete scores
    Wrong(
        "auroc_ranks_without_ties",
        "auroc",
        """
def auroc(scores_in, scores_out):
    scores = torch.cat([scores_in, scores_out]).detach()
    ranks = scores.argsort().argsort().double() + 1  # rank 1 for the lowest score
    n_in, n_out = len(scores_in), len(scores_out)
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2
    return (u / (n_in * n_out)).item()
""",
        AUROC,
    ),
    # .numpy() of scores that require grad raises: only the hidden tests pass them
    Wrong(
        "auroc_numpy_without_detach",
        "auroc",
        """
def auroc(scores_in, scores_out):
    a = scores_in.cpu().numpy()[:, None]
    b = scores_out.cpu().numpy()[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())
""",
        AUROC,
    ),
    # .numpy() of a tensor on the GPU raises: only the (simulated) GPU sees it
    Wrong(
        "auroc_numpy_without_cpu",
        "auroc",
        """
def auroc(scores_in, scores_out):
    a = scores_in.detach().numpy()[:, None]
    b = scores_out.detach().numpy()[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())
""",
        AUROC,
    ),
    # the visible value (8 / 7 instead of 2 / 3)
    Wrong(
        "auroc_divided_by_all_scores",
        "auroc",
        """
def auroc(scores_in, scores_out):
    s_in, s_out = scores_in.detach()[:, None], scores_out.detach()[None, :]
    pairs = (s_in > s_out).sum() + 0.5 * (s_in == s_out).sum()
    return (pairs / (len(scores_in) + len(scores_out))).item()
""",
        AUROC,
    ),
    # ndarray.sort() sorts the caller's scores in place through the shared memory: the visible result is right,
    # only the hidden snapshot sees it
    Wrong(
        "auroc_numpy_sort_in_place",
        "auroc",
        """
import numpy as np


def auroc(scores_in, scores_out):
    s_in = scores_in.detach().cpu().numpy()
    s_out = scores_out.detach().cpu().numpy()
    s_out.sort()  # sorted once, for searchsorted
    below = np.searchsorted(s_out, s_in, side="left")
    below_or_equal = np.searchsorted(s_out, s_in, side="right")
    return float((below.sum() + 0.5 * (below_or_equal - below).sum()) / (len(s_in) * len(s_out)))
""",
        AUROC,
    ),
    # forbidden by the contract: the hidden tests block it
    Wrong(
        "auroc_sklearn",
        "auroc",
        """
from sklearn.metrics import roc_auc_score


def auroc(scores_in, scores_out):
    scores = torch.cat([scores_in, scores_out]).detach().cpu().numpy()
    labels = [1] * len(scores_in) + [0] * len(scores_out)
    return float(roc_auc_score(labels, scores))
""",
        AUROC,
    ),
    # "an AUROC below 0.5 means the detector is flipped": the visible area is 2/3; the hidden ones below 0.5 (a
    # single pair, scores separated the wrong way) are not flipped
    edit(
        "auroc_flipped_below_half",
        "auroc",
        AUROC_RETURN,
        "    area = (wins + 0.5 * ties).item()\n    return max(area, 1 - area)",
        AUROC,
    ),
    # --- questions (each answer checked by its hidden test)
    # softmax((2, 0, 0) / T)_0 = 1 / 2 means e^(2/T) = 2, not 3 (the two other classes count once each)
    edit("q1_three_classes_in_the_log", "questions", "q1_answer = 2 / math.log(2)", "q1_answer = 2 / math.log(3)", Q1),
    # T solved upside down
    edit("q1_inverted", "questions", "q1_answer = 2 / math.log(2)", "q1_answer = math.log(2) / 2", Q1),
    # "perfectly calibrated means ECE 0"
    edit("q2_zero", "questions", Q2_LINE, "q2_answer = 0.0", Q2),
    # without the absolute value the expected gap is 0 (up to rounding)
    edit("q2_without_the_absolute_value", "questions", "abs(k / 5 - 0.8)", "(k / 5 - 0.8)", Q2),
    # log2 gives 0.881 bits; the question asks for nats
    edit(
        "q3_in_bits",
        "questions",
        "-(0.7 * math.log(0.7) + 0.3 * math.log(0.3))",
        "-(0.7 * math.log2(0.7) + 0.3 * math.log2(0.3))",
        Q3,
    ),
    # "a perfect model has zero loss"
    edit("q3_zero", "questions", "q3_answer = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))", "q3_answer = 0.0", Q3),
    # the training logits are overconfident too: it is not T = 1 (nor any T of the validation split)
    edit("q4_t_near_one", "questions", 'q4_answer = "d"', 'q4_answer = "a"', Q4),
    # T changes the NLL even where it does not change the predictions
    edit("q4_same_t", "questions", 'q4_answer = "d"', 'q4_answer = "b"', Q4),
    # every training example is right, so the NLL falls as T falls: T > 1 would raise it
    edit("q4_t_above_one", "questions", 'q4_answer = "d"', 'q4_answer = "c"', Q4),
    # the order of the maximum probabilities can change with ten classes
    edit("q5_never", "questions", 'q5_answer = "b"', 'q5_answer = "a"', Q5),
    # no such guarantee
    edit("q5_always_raises", "questions", 'q5_answer = "b"', 'q5_answer = "c"', Q5),
    # T never changes a prediction
    edit("q5_only_with_new_predictions", "questions", 'q5_answer = "b"', 'q5_answer = "d"', Q5),
    # torch.from_numpy is not a torch function, which the simulated GPU's mode never sees: the simulation marks its
    # tensors as made on the CPU itself. On Colab's GPU the tensors come back on the CPU.
    Wrong(
        "bins_numpy_result_from_numpy_on_the_cpu",
        "reliability_bins",
        NUMPY_BINS + "    return torch.from_numpy(conf), torch.from_numpy(acc), torch.from_numpy(count)\n",
        BINS,
    ),
    # the contract says "without building a graph (torch.no_grad())"; this builds the whole graph and detaches
    # the result: the hidden tests' model that raises when it runs with gradients enabled sees it
    edit(
        "msp_graph_built_then_detached",
        "max_softmax_score",
        "        with torch.no_grad():\n" + MSP_LINE,
        "        return model(x).detach().softmax(dim=1).amax(dim=1)\n",
        MSP,
    ),
]

ALTERNATIVES = [
    # --- reliability_bins
    # the definition written out, bin by bin
    Wrong(
        "bins_loop_explicit_comparisons",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    top, predicted = probs.detach().max(dim=1)
    top = top.double()
    right = (predicted == labels).double()
    confidence = torch.full((n_bins,), float("nan"), dtype=torch.float64, device=probs.device)
    accuracy = torch.full_like(confidence, float("nan"))
    count = torch.zeros(n_bins, dtype=torch.int64, device=probs.device)
    for m in range(1, n_bins + 1):
        inside = (top > (m - 1) / n_bins) & (top <= m / n_bins)
        count[m - 1] = inside.sum()
        if inside.any():
            confidence[m - 1] = top[inside].mean()
            accuracy[m - 1] = right[inside].mean()
    return confidence, accuracy, count
""",
        (),
    ),
    # ceil(c * M) - 1 is the bin of ((m-1)/M, m/M]; exact on the tests' binary-fraction edges
    Wrong(
        "bins_ceil_scatter_add",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    confidence, prediction = probs.detach().max(dim=1)
    confidence = confidence.to(torch.float64)
    correct = prediction.eq(labels).to(torch.float64)
    index = (torch.ceil(confidence * n_bins) - 1).long().clamp(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.int64, device=probs.device)
    count.scatter_add_(0, index, torch.ones_like(index))
    sums = torch.zeros(2, n_bins, dtype=torch.float64, device=probs.device)
    sums[0].scatter_add_(0, index, confidence)
    sums[1].scatter_add_(0, index, correct)
    return sums[0] / count, sums[1] / count, count
""",
        (),
    ),
    # bucketize against all M + 1 edges, minus one, and bincount with weights
    Wrong(
        "bins_bincount_weights",
        "reliability_bins",
        """
def reliability_bins(probs, labels, n_bins=15):
    p = probs.detach().double()
    confidence, prediction = p.max(dim=1)
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=p.device)
    bin_of = torch.bucketize(confidence, edges) - 1  # edges[i-1] < c <= edges[i] -> bin i - 1
    count = torch.bincount(bin_of, minlength=n_bins)
    confidence_sum = torch.bincount(bin_of, weights=confidence, minlength=n_bins)
    correct_sum = torch.bincount(bin_of, weights=(prediction == labels).double(), minlength=n_bins)
    return confidence_sum / count, correct_sum / count, count
""",
        (),
    ),
    # numpy on a detached CPU copy, the results moved back to the inputs' device
    Wrong(
        "bins_numpy",
        "reliability_bins",
        NUMPY_BINS + "    return tuple(torch.from_numpy(t).to(probs.device) for t in (conf, acc, count))\n",
        (),
    ),
    # --- expected_calibration_error
    # on the lab's reliability_bins (the hidden tests lend a correct one)
    Wrong(
        "ece_from_reliability_bins",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    confidence, accuracy, count = reliability_bins(probs, labels, n_bins)
    weights = count.double() / count.sum()
    return torch.nansum(weights * (accuracy - confidence).abs()).item()
""",
        (),
    ),
    # one pass over the examples, a dict of running sums
    Wrong(
        "ece_one_pass",
        "expected_calibration_error",
        """
def expected_calibration_error(probs, labels, n_bins=15):
    top, predicted = probs.detach().max(dim=1)
    sums = {}
    for c, right in zip(top.double().tolist(), (predicted == labels).tolist()):
        m = min(max(math.ceil(c * n_bins) - 1, 0), n_bins - 1)
        count, conf, acc = sums.get(m, (0, 0.0, 0.0))
        sums[m] = (count + 1, conf + c, acc + right)
    n = len(top)
    return sum(abs(acc - conf) / n for count, conf, acc in sums.values())
""",
        (),
    ),
    # --- softmax_with_temperature
    # dim=1 is the last dimension of the (N, K) logits of the contract
    edit(
        "softmax_functional",
        "softmax_with_temperature",
        "torch.softmax(logits / T, dim=-1)",
        "F.softmax(logits / T, dim=1)",
        (),
    ),
    # stable without torch.softmax: exp(z - logsumexp(z))
    Wrong(
        "softmax_logsumexp_written_out",
        "softmax_with_temperature",
        """
def softmax_with_temperature(logits, T):
    z = logits / T
    return torch.exp(z - torch.logsumexp(z, dim=-1, keepdim=True))
""",
        (),
    ),
    # --- fit_temperature
    # L-BFGS on T itself, kept positive by a clamp
    Wrong(
        "fit_lbfgs_on_t_clamped",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    T = torch.ones((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([T], lr=0.5, max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z / T.clamp(min=1e-2), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return T.clamp(min=1e-2).item()
""",
        (),
    ),
    # L-BFGS on T itself, not kept positive: the line search never leaves T > 0 on these problems
    Wrong(
        "fit_lbfgs_on_t_directly",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    T = torch.ones((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([T], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(z / T, labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return T.item()
""",
        (),
    ),
    # Adam on log T with a decaying learning rate, and enough steps
    Wrong(
        "fit_adam_on_log_t",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.Adam([log_t], lr=0.05)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.995)
    for _ in range(1500):
        optimizer.zero_grad()
        F.cross_entropy(z / log_t.exp(), labels).backward()
        optimizer.step()
        schedule.step()
    return log_t.exp().item()
""",
        (),
    ),
    # on the lab's softmax_with_temperature (the hidden tests lend a correct one)
    Wrong(
        "fit_lbfgs_with_softmax_with_temperature",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, device=z.device, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], max_iter=200, line_search_fn="strong_wolfe")
    rows = torch.arange(len(labels), device=z.device)

    def closure():
        optimizer.zero_grad()
        probs = softmax_with_temperature(z, log_t.exp())
        loss = -probs[rows, labels].clamp_min(1e-300).log().mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    return math.exp(log_t.item())
""",
        (),
    ),
    # a bounded scalar search on log T over [0.01, 100]
    Wrong(
        "fit_scipy_on_log_t",
        "fit_temperature",
        """
from scipy.optimize import minimize_scalar


def fit_temperature(logits, labels):
    z = logits.detach().double()

    def nll(log_t):
        return F.cross_entropy(z / math.exp(log_t), labels).item()

    result = minimize_scalar(nll, bounds=(math.log(0.01), math.log(100.0)), method="bounded", options={"xatol": 1e-6})
    return math.exp(result.x)
""",
        (),
    ),
    # a log-spaced grid, then a fine grid around its best point
    Wrong(
        "fit_log_grid_refined",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()

    def nll(t):
        return F.cross_entropy(z / t, labels).item()

    best = min(torch.logspace(-2, 2, 401, dtype=torch.float64).tolist(), key=nll)
    return min(torch.linspace(best / 1.03, best * 1.03, 301, dtype=torch.float64).tolist(), key=nll)
""",
        (),
    ),
    # the NLL is convex in beta = 1 / T: bisection on the sign of its derivative
    Wrong(
        "fit_bisection_on_the_derivative",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    true_logit = z.gather(1, labels.view(-1, 1)).squeeze(1)

    def slope(beta):  # d NLL / d beta = E_softmax(beta z)[z] - z_y, averaged
        p = torch.softmax(beta * z, dim=1)
        return ((p * z).sum(dim=1) - true_logit).mean().item()

    low, high = math.log(1e-3), math.log(1e3)  # log beta
    for _ in range(100):
        middle = (low + high) / 2
        if slope(math.exp(middle)) > 0:
            high = middle
        else:
            low = middle
    return math.exp(-(low + high) / 2)
""",
        (),
    ),
    # Newton's method on beta = 1 / T (convex), halving steps that would leave beta > 0
    Wrong(
        "fit_newton_on_beta",
        "fit_temperature",
        """
def fit_temperature(logits, labels):
    z = logits.detach().double()
    true_logit = z.gather(1, labels.view(-1, 1)).squeeze(1)
    beta = 1.0
    for _ in range(100):
        p = torch.softmax(beta * z, dim=1)
        mean = (p * z).sum(dim=1)
        gradient = (mean - true_logit).mean().item()
        curvature = ((p * z * z).sum(dim=1) - mean**2).mean().item()
        step = gradient / max(curvature, 1e-12)
        while beta - step <= 0:
            step /= 2
        beta -= step
        if abs(step) < 1e-12 * beta:
            break
    return 1.0 / beta
""",
        (),
    ),
    # --- max_softmax_score
    # F.softmax and max(...).values instead of the methods
    edit(
        "msp_functional_max_values",
        "max_softmax_score",
        "model(x).softmax(dim=1).amax(dim=1)",
        "F.softmax(model(x), dim=1).max(dim=1).values",
        (),
    ),
    # inference_mode builds no graph either
    edit("msp_inference_mode", "max_softmax_score", "torch.no_grad()", "torch.inference_mode()", ()),
    # on the lab's softmax_with_temperature at T = 1 (the hidden tests lend a correct one)
    Wrong(
        "msp_with_softmax_with_temperature",
        "max_softmax_score",
        """
def max_softmax_score(model, x):
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            probs = softmax_with_temperature(model(x), 1.0)
    finally:
        model.train(was_training)
    return probs.max(dim=1).values
""",
        (),
    ),
    # --- auroc
    # Mann-Whitney U with average ranks for ties
    Wrong(
        "auroc_mann_whitney_average_ranks",
        "auroc",
        """
def auroc(scores_in, scores_out):
    n_in, n_out = len(scores_in), len(scores_out)
    scores = torch.cat([scores_in.detach(), scores_out.detach()]).double()
    values, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # 1-based rank of the last copy of each value
    average_rank = last - (counts.double() - 1) / 2
    ranks = average_rank[inverse]
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2
    return (u / (n_in * n_out)).item()
""",
        (),
    ),
    # for each in-distribution score, the out scores strictly below it and those equal to it
    Wrong(
        "auroc_searchsorted",
        "auroc",
        """
def auroc(scores_in, scores_out):
    s_out = scores_out.detach().double().sort().values
    s_in = scores_in.detach().double().contiguous()
    below = torch.searchsorted(s_out, s_in, right=False)  # out scores strictly below
    not_above = torch.searchsorted(s_out, s_in, right=True)
    pairs = below.sum() + 0.5 * (not_above - below).sum()
    return pairs.item() / (len(s_in) * len(s_out))
""",
        (),
    ),
    # every pair at once, the share of wins taken in float32
    Wrong(
        "auroc_pairwise_float32",
        "auroc",
        """
def auroc(scores_in, scores_out):
    wins = (scores_in[:, None] > scores_out[None, :]).float().mean()
    ties = (scores_in[:, None] == scores_out[None, :]).float().mean()
    return (wins + ties / 2).item()
""",
        (),
    ),
    # pairs counted 256 rows at a time, to bound the memory
    Wrong(
        "auroc_chunked_pairs",
        "auroc",
        """
def auroc(scores_in, scores_out):
    s_out = scores_out.detach()
    total = 0.0
    for chunk in scores_in.detach().split(256):
        pairs = chunk[:, None] - s_out[None, :]
        total += (pairs > 0).sum().item() + 0.5 * (pairs == 0).sum().item()
    return total / (len(scores_in) * len(scores_out))
""",
        (),
    ),
    # the ROC curve, one point per distinct score, and the trapezoidal rule (a tie is a diagonal segment)
    Wrong(
        "auroc_trapezoidal_roc",
        "auroc",
        """
def auroc(scores_in, scores_out):
    scores = torch.cat([scores_in.detach(), scores_out.detach()]).double()
    is_in = torch.cat([torch.ones_like(scores_in, dtype=torch.float64),
                       torch.zeros_like(scores_out, dtype=torch.float64)])
    values, inverse = torch.unique(scores, return_inverse=True)
    positives = torch.bincount(inverse, weights=is_in, minlength=len(values)).flip(0)  # highest score first
    negatives = torch.bincount(inverse, weights=1 - is_in, minlength=len(values)).flip(0)
    tpr = torch.cat([positives.new_zeros(1), positives.cumsum(0)]) / len(scores_in)
    fpr = torch.cat([negatives.new_zeros(1), negatives.cumsum(0)]) / len(scores_out)
    return torch.trapezoid(tpr, fpr).item()
""",
        (),
    ),
    # --- questions
    # numbers typed from a hand computation, to three decimals; letters in upper case, one with a space
    Wrong(
        "questions_typed_numbers",
        "questions",
        """
q1_answer = 2.885
q2_answer = 0.131
q3_answer = 0.611
q4_answer = " D"
q5_answer = "B"
""",
        (),
    ),
]

# Realistic mistakes the current hidden tests let through (reported for the battery; not graded as CORPUS).
