"""Surviving mutants of lab03_batchnorm's reference answers that are equivalent to it, and why."""

EQUIVALENT = {
    "batch_norm:11:16 `x.numel() // x.shape[1]` -> `x.numel() / x.shape[1]`": (
        "x.numel() is a multiple of x.shape[1], so the true division gives the same count as a float; "
        "count <= 1 and momentum * var * count / (count - 1) compute the same numbers with a float count "
        "(a Python int meets a tensor as a double scalar either way)"
    ),
    "batch_norm_backward:10:8 `x.numel() // x.shape[1]` -> `x.numel() / x.shape[1]`": (
        "x.numel() is a multiple of x.shape[1], so the true division gives the same count as a float, and n * g, "
        "n * std are the same numbers with it (a Python number meets a tensor as a scalar of the tensor's dtype)"
    ),
    "batchnorm1d:15:52 `torch.tensor(0, dtype=torch.long)` -> `torch.tensor(0)`": (
        "torch.tensor of a Python int is already torch.long (int64), so the buffer is the same long scalar"
    ),
    "batchnorm1d:24:33 `self.num_batches_tracked.item()` -> `self.num_batches_tracked`": (
        "1.0 divided by the long counter is a float32 0-dim tensor, which the lab accepts as the cumulative "
        "momentum: 1/k in float32 is within 1e-7 of it, the stated tolerance for momentum=None"
    ),
}
