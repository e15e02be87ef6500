"""Surviving mutants of lab04_cnn's reference answers that are equivalent to it, and why."""

EQUIVALENT = {
    "conv_output_size:20:10 `(size + 2 * padding - kernel_span) // stride` -> "
    "`(size + 2 * padding - kernel_span) / stride`": (
        "the true quotient q = a / stride gives q + 1 < 1 exactly when a < 0, as a // stride + 1 < 1 does, and for "
        "a >= 0 int(q + 1) truncates to floor(a / stride) + 1, a Python int: the same result and the same ValueError "
        "for every size below 2**53 (checked exhaustively for sizes < 300, kernels < 12, strides < 8, paddings < 6, "
        "dilations < 5); math.floor(... / stride), a correct style, has the same float division"
    ),
    "residual:9:20 `nn.ReLU(inplace=True)` -> `nn.ReLU()`": (
        "the lab makes the relu module optional (it has no state); an out-of-place ReLU computes the same values and "
        "gradients, only without overwriting bn1's output buffer"
    ),
    "residual:9:36 `True` -> `False`": (
        "nn.ReLU(inplace=False) is the out-of-place ReLU: same values and gradients, no state, and the lab makes the "
        "relu module optional"
    ),
    "resnet18:10:20 `nn.ReLU(inplace=True)` -> `nn.ReLU()`": (
        "the stem's ReLU has no state and the same values and gradients out of place; torchvision's inplace=True only "
        "saves memory (the battery's own reference uses nn.ReLU())"
    ),
    "resnet18:10:36 `True` -> `False`": (
        "nn.ReLU(inplace=False) in the stem computes the same values and gradients and has no state_dict entry, so "
        "the network is torchvision's resnet18 all the same"
    ),
}
