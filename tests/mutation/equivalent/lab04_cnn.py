"""Surviving mutants of lab04_cnn's reference answers that are equivalent to it, and why."""

# Q1's answer cell computes the size through conv_output_size: 100 -> 50 (7x7, stride 2, padding 3) -> 25 (max-pool
# 3x3, stride 2, padding 1) -> 13 (3x3, stride 2, padding 1) -> 9 (3x3, dilation 2). The graded output of the cell is
# only the number q1_answer, and the floor division of the three strided layers absorbs a change of one in these
# constants: each mutant below still sets q1_answer = 9 (and leaves q2_answer and q3_answer alone), the very answer.
Q1_STILL_9 = "q1_answer, the only output of the cell these edits touch, is still 9 (the reference's): "

EQUIVALENT = {
    "conv_output_size:11:10 `(size + 2 * padding - kernel_span) // stride` -> "
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
    "resnet18:9:20 `nn.ReLU(inplace=True)` -> `nn.ReLU()`": (
        "the stem's ReLU has no state and the same values and gradients out of place; torchvision's inplace=True only "
        "saves memory (the battery's own reference uses nn.ReLU())"
    ),
    "resnet18:9:36 `True` -> `False`": (
        "nn.ReLU(inplace=False) in the stem computes the same values and gradients and has no state_dict entry, so "
        "the network is torchvision's resnet18 all the same"
    ),
    "questions:3:7 `100` -> `99`": Q1_STILL_9 + "(99 + 6 - 7) // 2 + 1 = 50, as for 100",
    "questions:3:7 `100` -> `101`": Q1_STILL_9 + "101 -> 51 -> 26 -> 13 -> 9",
    "questions:4:15 `7` -> `6`": Q1_STILL_9 + "a 6x6 stem kernel gives 51, then 26 -> 13 -> 9",
    "questions:4:15 `7` -> `8`": Q1_STILL_9 + "an 8x8 stem kernel gives (100 + 6 - 8) // 2 + 1 = 50, as 7x7",
    "questions:4:21 `3` -> `2`": Q1_STILL_9 + "stem padding 2 gives 49, then the max-pool gives 25 as from 50",
    "questions:4:21 `3` -> `4`": Q1_STILL_9 + "stem padding 4 gives 51, then 26 -> 13 -> 9",
    "questions:4:29 `3` -> `2`": Q1_STILL_9 + "a 2x2 max-pool gives 26 from 50, then 13 -> 9",
    "questions:4:29 `3` -> `4`": Q1_STILL_9 + "a 4x4 max-pool gives (50 + 2 - 4) // 2 + 1 = 25, as 3x3",
    "questions:4:35 `1` -> `2`": Q1_STILL_9 + "max-pool padding 2 gives 26 from 50, then 13 -> 9",
    "questions:4:38 `1` -> `0`": Q1_STILL_9 + "max-pool dilation 0 spans 1 pixel, giving 26 from 50, then 13 -> 9",
    "questions:4:43 `3` -> `2`": Q1_STILL_9 + "a 2x2 third convolution gives (25 + 2 - 2) // 2 + 1 = 13, as 3x3",
}
