"""Surviving mutants of lab07_calibration's reference answers that are equivalent to it, and why."""

NO_DETACH = (
    "the result is computed from comparisons, argmax and index_add of values; without detach it may carry a graph "
    "but has the same values, and nothing is ever differentiated or written into the input"
)
LAST_DIM = "the tensor is one-dimensional (or, for (N, K) logits, two-dimensional), so dim -1 is the dimension meant"
FLOAT32_EDGES = (
    "float32 edges m/M differ from float64 ones by less than 1e-8; the battery's confidences are exact binary "
    "fractions on the edges (exact in float32) or at least 1e-6 bin widths away from every edge, so no confidence "
    "changes bin"
)
CONVERGES = (
    "L-BFGS on log T still converges to the minimiser (the NLL is convex in 1 / T and smooth in log T), well within "
    "the contract's 1 % tolerance, from this start, step size or iteration budget"
)
FLOAT32_PAIRS = (
    "comparisons of float32 scores are exact, and the mean of at most a few million 0/1 values in float32 is within "
    "1e-7 of the float64 count, inside the 1e-6 tolerance"
)

EQUIVALENT = {
    "reliability_bins:5:29 `probs.detach()` -> `probs`": NO_DETACH,
    "reliability_bins:8:18 `torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, dev...` -> "
    "`torch.linspace(0, 1, n_bins + 1, device=probs.device)`": FLOAT32_EDGES,
    "reliability_bins:12:37 `0` -> `-1`": LAST_DIM,
    "reliability_bins:13:34 `0` -> `-1`": LAST_DIM,
    "expected_calibration_error:7:29 `probs.detach()` -> `probs`": NO_DETACH,
    "expected_calibration_error:8:17 `confidence.double()` -> `confidence`": (
        "for float32 probabilities the gaps are then summed in float32, which moves the ECE by about 1e-7, inside "
        "the stated tolerance of 1e-6 (float32 weights are a correct style)"
    ),
    "expected_calibration_error:11:12 `torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, dev...` -> "
    "`torch.linspace(0, 1, n_bins + 1, device=probs.device)`": FLOAT32_EDGES,
    "expected_calibration_error:13:86 `0` -> `-1`": LAST_DIM,
    "softmax_with_temperature:4:41 `-1` -> `1`": LAST_DIM,
    "fit_temperature:5:8 `logits.detach().double()` -> `logits.detach()`": (
        "the fit in float32 reaches the minimiser to about 1e-6 relative, far inside the 1 % tolerance"
    ),
    "fit_temperature:6:12 `torch.zeros((), dtype=torch.float64, device=z.device, req...` -> "
    "`torch.zeros((), device=z.device, requires_grad=True)`": (
        "a float32 log T divides float64 logits into float64 (a 0-dim tensor does not lower the dtype), and log T "
        "itself needs no more than float32's precision for 1 %"
    ),
    "fit_temperature:6:12 `torch.zeros((), dtype=torch.float64, device=z.device, req...` -> "
    "`torch.zeros((), dtype=torch.float64, requires_grad=True)`": (
        "a 0-dim CPU tensor may meet tensors on a GPU (PyTorch treats it as a scalar), so log T on the CPU works "
        "with logits on any device, on a real GPU as on the simulated one"
    ),
    "fit_temperature:6:12 `torch.zeros((), dtype=torch.float64, device=z.device, req...` -> "
    "`torch.ones((), dtype=torch.float64, device=z.device, requ...`": CONVERGES,
    "fit_temperature:7:16 `torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_sea...` -> "
    "`torch.optim.LBFGS([log_t], max_iter=100, line_search_fn='...`": CONVERGES,
    "fit_temperature:7:16 `torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_sea...` -> "
    "`torch.optim.LBFGS([log_t], lr=1.0, line_search_fn='strong...`": CONVERGES,
    "fit_temperature:7:16 `torch.optim.LBFGS([log_t], lr=1.0, max_iter=100, line_sea...` -> "
    "`torch.optim.LBFGS([log_t], lr=1.0, max_iter=100)`": CONVERGES,
    "fit_temperature:7:46 `1.0` -> `2.0`": CONVERGES,
    "fit_temperature:7:46 `1.0` -> `0.5`": CONVERGES,
    "fit_temperature:7:60 `100` -> `99`": CONVERGES,
    "fit_temperature:7:60 `100` -> `101`": CONVERGES,
    "auroc:5:11 `scores_in.detach().double()` -> `scores_in.detach()`": FLOAT32_PAIRS,
    "auroc:5:11 `scores_in.detach()` -> `scores_in`": NO_DETACH,
    "auroc:6:12 `scores_out.detach().double()` -> `scores_out.detach()`": FLOAT32_PAIRS,
    "auroc:6:12 `scores_out.detach()` -> `scores_out`": NO_DETACH,
    "questions:5:92 `6` -> `7`": "the term k = 6 of the binomial sum is comb(5, 6) = 0, so q2_answer is unchanged",
}
