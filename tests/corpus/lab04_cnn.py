"""lab04_cnn: realistic mistakes (each caught by the named test cells) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
One answer is used by a later cell, so a mistake in it costs points there too: ``resnet18`` is
built from the student's ``Residual``, and a mistake in the block loses in ``test_resnet18`` as
well, unless ResNet-18 never meets it (its stride-2 blocks all change the width, so a projection
built for only one of the two reasons still fits there). The questions are answered with numbers
worked out by hand (or with the lab's functions, as a student may), graded against fixed values.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab04_cnn"

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "conv_output_size": ("test_conv_output_size",),
    "receptive_field": ("test_receptive_field",),
    "global_avg_pool": ("test_global_avg_pool",),
    "inception": ("test_inception",),
    "residual": ("test_residual",),
    "resnet18": ("test_resnet18",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
USES = {  # the reference ResNet-18 is built from the lab's residual block
    "resnet18": ("residual",),
}

REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

CONV, Q1 = ("test_conv_output_size",), ("test_q1",)
RF, GAP = ("test_receptive_field",), ("test_global_avg_pool",)
INCEPTION, Q2 = ("test_inception",), ("test_q2",)
Q3, Q4, Q5 = ("test_q3",), ("test_q4",), ("test_q5",)
RESIDUAL, RESNET = ("test_residual",), ("test_resnet18",)
BLOCK_AND_NET = RESIDUAL + RESNET

CONV_FORMULA = "    out = (size + 2 * padding - kernel_span) // stride + 1\n"
CONV_RETURN = "    return int(out)"
RF_UPDATE = "        field += dilation * (kernel_size - 1) * jump\n        jump *= stride\n"
INCEPTION_CONVS = """        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)
"""
PROJECTION_IF = "        if stride != 1 or in_channels != out_channels:  # the shortcut must change the shape as well\n"
RESIDUAL_RETURN = "        return self.relu(out + shortcut)"

CORPUS = [
    # --- conv_output_size
    edit(
        "conv_padding_counted_once",
        "conv_output_size",
        CONV_FORMULA,
        "    out = (size + padding - kernel_span) // stride + 1\n",
        CONV,
    ),
    Wrong(
        "conv_ceil_instead_of_floor",
        "conv_output_size",
        "import math\n\n"
        + REFERENCE["conv_output_size"].replace(
            CONV_FORMULA, "    out = math.ceil((size + 2 * padding - kernel_span) / stride) + 1\n"
        ),
        CONV,
    ),
    edit(
        "conv_dilation_ignored",
        "conv_output_size",
        "kernel_span = dilation * (kernel_size - 1) + 1",
        "kernel_span = kernel_size",
        CONV,
    ),
    edit(
        "conv_kernel_span_off_by_one",
        "conv_output_size",
        "kernel_span = dilation * (kernel_size - 1) + 1",
        "kernel_span = dilation * (kernel_size - 1)",
        CONV,
    ),
    # np.floor gives numpy floats: the right values but not an int
    Wrong(
        "conv_numpy_floor_returns_float",
        "conv_output_size",
        "import numpy as np\n\n"
        + REFERENCE["conv_output_size"]
        .replace(CONV_FORMULA, "    out = np.floor((size + 2 * padding - kernel_span) / stride) + 1\n")
        .replace(CONV_RETURN, "    return out"),
        CONV,
    ),
    # a tensor, not a Python int
    Wrong(
        "conv_returns_a_tensor",
        "conv_output_size",
        REFERENCE["conv_output_size"]
        .replace(CONV_FORMULA, "    out = torch.floor(torch.tensor((size + 2 * padding - kernel_span) / stride)) + 1\n")
        .replace(CONV_RETURN, "    return out"),
        CONV,
    ),
    edit(
        "conv_same_allowed_with_a_stride",
        "conv_output_size",
        "        if stride != 1:\n            raise ValueError(\"padding='same' is only supported for stride 1\")\n",
        "",
        CONV,
    ),
    Wrong(
        "conv_no_value_error_for_an_empty_output",
        "conv_output_size",
        REFERENCE["conv_output_size"].replace(
            '    if out < 1:\n        raise ValueError(f"a kernel spanning {kernel_span} pixels does not fit into '
            '{size} + 2 * {padding} pixels")\n',
            "",
        ),
        CONV,
    ),
    # "same" as (k - 1) // 2 on both sides: one pixel short for even (dilated) kernels
    Wrong(
        "conv_same_pads_half_the_kernel",
        "conv_output_size",
        REFERENCE["conv_output_size"].replace(
            "        return int(size)\n", "        padding = dilation * (kernel_size - 1) // 2\n"
        ),
        CONV,
    ),
    # --- receptive_field
    edit(
        "rf_summed_without_strides",
        "receptive_field",
        "field += dilation * (kernel_size - 1) * jump",
        "field += dilation * (kernel_size - 1)",
        RF,
    ),
    Wrong(
        "rf_own_stride_in_the_product",
        "receptive_field",
        """
import math


def receptive_field(layers):
    strides = [layer[1] for layer in layers]
    field = 1
    for index, layer in enumerate(layers):
        dilation = layer[2] if len(layer) == 3 else 1
        field += dilation * (layer[0] - 1) * math.prod(strides[: index + 1])
    return field
""",
        RF,
    ),
    edit(
        "rf_jump_updated_before_adding",
        "receptive_field",
        RF_UPDATE,
        "        jump *= stride\n        field += dilation * (kernel_size - 1) * jump\n",
        RF,
    ),
    edit(
        "rf_dilation_ignored",
        "receptive_field",
        "field += dilation * (kernel_size - 1) * jump",
        "field += (kernel_size - 1) * jump",
        RF,
    ),
    # (kernel_size, stride) layers cannot be unpacked into three names
    Wrong(
        "rf_unpacks_three_values",
        "receptive_field",
        """
def receptive_field(layers):
    field, jump = 1, 1
    for kernel_size, stride, dilation in layers:
        field += dilation * (kernel_size - 1) * jump
        jump *= stride
    return field
""",
        RF,
    ),
    # numpy's integers are not the Python int the task asks for
    Wrong(
        "rf_numpy_cumprod_returns_numpy_int",
        "receptive_field",
        """
import numpy as np


def receptive_field(layers):
    kernels = np.array([layer[0] for layer in layers], dtype=np.int64)
    strides = np.array([layer[1] for layer in layers], dtype=np.int64)
    dilations = np.array([layer[2] if len(layer) > 2 else 1 for layer in layers], dtype=np.int64)
    jumps = np.cumprod(np.concatenate([[1], strides[:-1]])).astype(np.int64)[: len(kernels)]
    return 1 + np.sum(dilations * (kernels - 1) * jumps)
""",
        RF,
    ),
    # copies the list to reverse it: a tuple of layers (allowed by the task) has no .copy()
    Wrong(
        "rf_list_methods_on_a_tuple",
        "receptive_field",
        """
def receptive_field(layers):
    layers = layers.copy()  # do not reverse the caller's list
    layers.reverse()
    field = 1
    for layer in layers:  # from the output back to the input
        dilation = layer[2] if len(layer) > 2 else 1
        field = layer[1] * (field - 1) + dilation * (layer[0] - 1) + 1
    return field
""",
        RF,
    ),
    # --- global_avg_pool
    edit("gap_mean_over_wrong_dims", "global_avg_pool", "x.mean(dim=(2, 3))", "x.mean(dim=(1, 2))", GAP),
    edit("gap_mean_over_the_batch_too", "global_avg_pool", "x.mean(dim=(2, 3))", "x.mean(dim=(0, 2, 3))", GAP),
    edit(
        "gap_sum_divided_by_height_only",
        "global_avg_pool",
        "x.mean(dim=(2, 3))",
        "x.sum(dim=(2, 3)) / x.shape[2]",
        GAP,
    ),
    edit("gap_keepdim", "global_avg_pool", "x.mean(dim=(2, 3))", "x.mean(dim=(2, 3), keepdim=True)", GAP),
    edit(
        "gap_functional_adaptive_pool",
        "global_avg_pool",
        "x.mean(dim=(2, 3))",
        "F.adaptive_avg_pool2d(x, 1).flatten(1)",
        GAP,
    ),
    edit(
        "gap_adaptive_pool_module",
        "global_avg_pool",
        "    return x.mean(dim=(2, 3))",
        "    pool = nn.AdaptiveAvgPool2d((1, 1))\n    return pool(x).view(x.shape[0], -1)",
        GAP,
    ),
    edit("gap_cast_to_float32", "global_avg_pool", "x.mean(dim=(2, 3))", "x.float().mean(dim=(2, 3))", GAP),
    edit("gap_detached", "global_avg_pool", "x.mean(dim=(2, 3))", "x.detach().mean(dim=(2, 3))", GAP),
    # right on the CPU; the accumulator stays on the CPU when x is on a GPU
    Wrong(
        "gap_accumulator_made_on_the_cpu",
        "global_avg_pool",
        """
def global_avg_pool(x):
    n, c, h, w = x.shape
    total = torch.zeros(n, c, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            total = total + x[:, :, i, j]
    return total / (h * w)
""",
        GAP,
    ),
    # --- Inception
    edit("inception_cat_on_dim_0", "inception", "branch4), dim=1)", "branch4), dim=0)", INCEPTION),
    edit("inception_cat_on_last_dim", "inception", "branch4), dim=1)", "branch4), dim=-1)", INCEPTION),
    edit(
        "inception_branches_2_and_3_swapped",
        "inception",
        "(branch1, branch2, branch3, branch4)",
        "(branch1, branch3, branch2, branch4)",
        INCEPTION,
    ),
    edit(
        "inception_pool_default_stride",
        "inception",
        "nn.MaxPool2d(kernel_size=3, stride=1, padding=1)",
        "nn.MaxPool2d(kernel_size=3, padding=1)",
        INCEPTION,
    ),
    edit(
        "inception_no_relu_on_pool_branch",
        "inception",
        "branch4 = F.relu(self.b4_2(self.b4_1(x)))",
        "branch4 = self.b4_2(self.b4_1(x))",
        INCEPTION,
    ),
    Wrong(
        "inception_no_relu_after_reductions",
        "inception",
        REFERENCE["inception"]
        .replace("F.relu(self.b2_1(x))", "self.b2_1(x)")
        .replace("F.relu(self.b3_1(x))", "self.b3_1(x)"),
        INCEPTION,
    ),
    edit(
        "inception_5x5_padding_1",
        "inception",
        "kernel_size=5, padding=2",
        "kernel_size=5, padding=1",
        INCEPTION,
    ),
    edit(
        "inception_avg_pool",
        "inception",
        "nn.MaxPool2d(kernel_size=3, stride=1, padding=1)",
        "nn.AvgPool2d(kernel_size=3, stride=1, padding=1)",
        INCEPTION,
    ),
    # no biases
    edit(
        "inception_convs_without_bias",
        "inception",
        INCEPTION_CONVS,
        INCEPTION_CONVS.replace("kernel_size=1)", "kernel_size=1, bias=False)")
        .replace("padding=1)\n        self.b3_1", "padding=1, bias=False)\n        self.b3_1")
        .replace("padding=2)", "padding=2, bias=False)"),
        INCEPTION,
    ),
    # the output is preallocated with torch.empty on the CPU, whatever x's device
    Wrong(
        "inception_output_preallocated_on_the_cpu",
        "inception",
        REFERENCE["inception"].replace(
            "        return torch.cat((branch1, branch2, branch3, branch4), dim=1)",
            """        branches = [branch1, branch2, branch3, branch4]
        n, _, h, w = x.shape
        out = torch.empty(n, sum(b.shape[1] for b in branches), h, w, dtype=x.dtype)
        start = 0
        for b in branches:
            out[:, start : start + b.shape[1]] = b
            start += b.shape[1]
        return out""",
        ),
        INCEPTION,
    ),
    # --- Residual (resnet18 is built from it)
    Wrong(
        "residual_relu_before_the_sum",
        "residual",
        REFERENCE["residual"].replace(
            "        out = self.bn2(self.conv2(out))\n", "        out = self.relu(self.bn2(self.conv2(out)))\n"
        ),
        BLOCK_AND_NET,
    ),
    edit(
        "residual_projection_without_batch_norm",
        "residual",
        "                nn.BatchNorm2d(out_channels),\n",
        "",
        BLOCK_AND_NET,
    ),
    # ResNet-18's stride-2 blocks all change the width: resnet18 is right
    edit(
        "residual_projection_only_when_channels_change",
        "residual",
        PROJECTION_IF,
        "        if in_channels != out_channels:\n",
        RESIDUAL,
    ),
    Wrong(
        "residual_stride_on_conv2",
        "residual",
        REFERENCE["residual"]
        .replace("kernel_size=3, stride=stride, padding=1, bias=False)", "kernel_size=3, padding=1, bias=False)")
        .replace(
            "nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)",
            "nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)",
        ),
        BLOCK_AND_NET,
    ),
    Wrong(
        "residual_convs_with_bias",
        "residual",
        REFERENCE["residual"].replace("padding=1, bias=False)", "padding=1)"),
        BLOCK_AND_NET,
    ),
    edit("residual_no_relu_after_the_sum", "residual", RESIDUAL_RETURN, "        return out + shortcut", BLOCK_AND_NET),
    edit(
        "residual_bn2_not_applied",
        "residual",
        "        out = self.bn2(self.conv2(out))\n",
        "        out = self.conv2(out)\n",
        BLOCK_AND_NET,
    ),
    edit(
        "residual_shortcut_after_the_relu",
        "residual",
        RESIDUAL_RETURN,
        "        return self.relu(out) + shortcut",
        BLOCK_AND_NET,
    ),
    Wrong(
        "residual_downsample_always_built",
        "residual",
        REFERENCE["residual"].replace(
            "        self.downsample = None\n" + PROJECTION_IF + "            self.downsample = nn.Sequential(\n",
            "        self.downsample = nn.Sequential(\n",
        ),
        BLOCK_AND_NET,
    ),
    # shortcut is x itself without a projection: += writes into the caller's tensor (resnet18's visible
    # check then fails in backward: conv1 saved that tensor)
    edit(
        "residual_inplace_add_into_the_input",
        "residual",
        RESIDUAL_RETURN,
        "        shortcut += out\n        return self.relu(shortcut)",
        BLOCK_AND_NET,
    ),
    # --- resnet18 (the reference Residual)
    edit(
        "resnet_maxpool_not_applied",
        "resnet18",
        "x = self.maxpool(self.relu(self.bn1(self.conv1(x))))",
        "x = self.relu(self.bn1(self.conv1(x)))",
        RESNET,
    ),
    edit(
        "resnet_maxpool_without_padding",
        "resnet18",
        "nn.MaxPool2d(kernel_size=3, stride=2, padding=1)",
        "nn.MaxPool2d(kernel_size=3, stride=2)",
        RESNET,
    ),
    edit(
        "resnet_cifar_stem_3x3",
        "resnet18",
        "nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)",
        "nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)",
        RESNET,
    ),
    Wrong(
        "resnet_layer4_keeps_256_channels",
        "resnet18",
        REFERENCE["resnet18"]
        .replace(
            "nn.Sequential(Residual(256, 512, stride=2), Residual(512, 512))",
            "nn.Sequential(Residual(256, 256, stride=2), Residual(256, 256))",
        )
        .replace("nn.Linear(512, num_classes)", "nn.Linear(256, num_classes)"),
        RESNET,
    ),
    edit(
        "resnet_stride_2_in_layer1",
        "resnet18",
        "nn.Sequential(Residual(64, 64), Residual(64, 64))",
        "nn.Sequential(Residual(64, 64, stride=2), Residual(64, 64))",
        RESNET,
    ),
    edit(
        "resnet_three_blocks_in_layer3",
        "resnet18",
        "nn.Sequential(Residual(128, 256, stride=2), Residual(256, 256))",
        "nn.Sequential(Residual(128, 256, stride=2), Residual(256, 256), Residual(256, 256))",
        RESNET,
    ),
    edit(
        "resnet_pooled_map_not_flattened",
        "resnet18",
        "return self.fc(torch.flatten(self.avgpool(x), 1))",
        "return self.fc(self.avgpool(x))",
        RESNET,
    ),
    # squeeze() also drops the batch axis of a single image: (num_classes,) instead of (1, num_classes)
    edit(
        "resnet_squeeze_instead_of_flatten",
        "resnet18",
        "return self.fc(torch.flatten(self.avgpool(x), 1))",
        "return self.fc(self.avgpool(x).squeeze())",
        RESNET,
    ),
    edit(
        "resnet_softmax_at_the_end",
        "resnet18",
        "return self.fc(torch.flatten(self.avgpool(x), 1))",
        "return F.softmax(self.fc(torch.flatten(self.avgpool(x), 1)), dim=1)",
        RESNET,
    ),
    edit(
        "resnet_in_channels_ignored",
        "resnet18",
        "nn.Conv2d(in_channels, 64,",
        "nn.Conv2d(3, 64,",
        RESNET,
    ),
    edit(
        "resnet_num_classes_ignored",
        "resnet18",
        "nn.Linear(512, num_classes)",
        "nn.Linear(512, 10)",
        RESNET,
    ),
    # --- questions
    # Q1: 97 x 130 -> 49 x 65 -> 25 x 33 -> 13 x 17 -> 9 x 13, times 256 channels
    edit("q1_height_times_width_only", "questions", "q1_answer = 29952", "q1_answer = 9 * 13", Q1),
    edit("q1_square_from_the_height", "questions", "q1_answer = 29952", "q1_answer = 256 * 9 * 9", Q1),
    edit("q1_dilation_ignored", "questions", "q1_answer = 29952", "q1_answer = 256 * 11 * 15", Q1),
    edit("q1_ceil_instead_of_floor", "questions", "q1_answer = 29952", "q1_answer = 256 * 9 * 14", Q1),
    # Q2: 4096 + 36864 + 16384 + 16384 convolution weights and 1280 batch-norm weights and biases
    edit("q2_convolutions_with_biases", "questions", "q2_answer = 75008", "q2_answer = 75008 + 640", Q2),
    edit("q2_running_statistics_counted", "questions", "q2_answer = 75008", "q2_answer = 75008 + 1280", Q2),
    edit("q2_projection_forgotten", "questions", "q2_answer = 75008", "q2_answer = 75008 - 16384 - 512", Q2),
    edit("q2_batch_norms_forgotten", "questions", "q2_answer = 75008", "q2_answer = 73728", Q2),
    edit("q2_3x3_without_kernel_area", "questions", "q2_answer = 75008", "q2_answer = 75008 - 8 * 4096", Q2),
    # Q3: 1 + 6 + 4 + 4 * 8 + 8 + 3 * 16
    edit("q3_strides_ignored", "questions", "q3_answer = 99", "q3_answer = 1 + 6 + 2 + 8 * 2", Q3),
    edit("q3_own_stride_counted", "questions", "q3_answer = 99", "q3_answer = 1 + 12 + 8 + 4 * 8 + 16 + 3 * 16", Q3),
    edit("q3_layer1_only", "questions", "q3_answer = 99", "q3_answer = 43", Q3),
    edit("q4_vanishing_gradient", "questions", 'q4_answer = "a"', 'q4_answer = "b"', Q4),
    edit("q4_one_copy_per_block", "questions", 'q4_answer = "a"', 'q4_answer = "c"', Q4),
    edit("q5_projection_forgotten", "questions", "q5_answer = 1", "q5_answer = 0", Q5),
    edit("q5_plain_path", "questions", "q5_answer = 1", "q5_answer = 16", Q5),
    edit("q5_one_stage", "questions", "q5_answer = 1", "q5_answer = 8", Q5),
]

ALTERNATIVES = [
    # --- conv_output_size
    Wrong(
        "conv_math_floor_and_same_by_formula",
        "conv_output_size",
        """
import math


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if stride != 1:
                raise ValueError("padding='same' is not supported for strided convolutions")
            total = dilation * (kernel_size - 1)  # PyTorch puts total // 2 on the left and the rest on the right
            return math.floor((size + total - dilation * (kernel_size - 1) - 1) / stride) + 1
        else:
            raise ValueError(f"unknown padding {padding!r}")
    out = math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if out <= 0:
        raise ValueError("the output would be empty")
    return out
""",
        (),
    ),
    Wrong(
        "conv_counts_positions_in_a_loop",
        "conv_output_size",
        """
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    span = dilation * (kernel_size - 1) + 1
    if padding == "same":
        if stride != 1:
            raise ValueError("same padding only with stride 1")
        left = (span - 1) // 2
        right = span - 1 - left
    elif padding == "valid":
        left = right = 0
    else:
        left = right = padding
    padded = left + size + right
    count, start = 0, 0
    while start + span <= padded:  # one output for every position the kernel fits at
        count += 1
        start += stride
    if count == 0:
        raise ValueError("kernel larger than the padded input")
    return count
""",
        (),
    ),
    # --- receptive_field
    Wrong(
        "rf_backwards_from_the_output",
        "receptive_field",
        """
def receptive_field(layers):
    r = 1  # one unit of the last layer
    for layer in reversed(list(layers)):
        k, s = layer[0], layer[1]
        d = layer[2] if len(layer) == 3 else 1
        r = s * (r - 1) + d * (k - 1) + 1  # the units of this layer's input that r units of its output see
    return r
""",
        (),
    ),
    Wrong(
        "rf_math_prod",
        "receptive_field",
        """
import math


def receptive_field(layers):
    full = [tuple(layer) + (1,) * (3 - len(layer)) for layer in layers]
    return 1 + sum(d * (k - 1) * math.prod(s for _, s, _ in full[:i]) for i, (k, _, d) in enumerate(full))
""",
        (),
    ),
    # --- global_avg_pool
    edit(
        "gap_sum_over_last_dims_divided",
        "global_avg_pool",
        "    return x.mean(dim=(2, 3))",
        "    h, w = x.shape[-2:]\n    return x.sum((-2, -1)) / (h * w)",
        (),
    ),
    edit(
        "gap_avg_pool2d_over_the_whole_map",
        "global_avg_pool",
        "x.mean(dim=(2, 3))",
        "F.avg_pool2d(x, x.shape[2:]).flatten(1)",
        (),
    ),
    edit("gap_flatten_then_mean", "global_avg_pool", "x.mean(dim=(2, 3))", "x.flatten(2).mean(-1)", ()),
    # --- Inception
    Wrong(
        # d2l.ai's Inception (chapter 8.4), with this lab's names and branch variables as locals
        "inception_d2l_style",
        "inception",
        """
class Inception(nn.Module):
    # c1--c4 are the number of output channels for each branch
    def __init__(self, in_channels, c1, c2, c3, c4, **kwargs):
        super(Inception, self).__init__(**kwargs)
        # Branch 1
        self.b1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        # Branch 2
        self.b2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        # Branch 3
        self.b3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        # Branch 4
        self.b4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.b4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        b1 = F.relu(self.b1_1(x))
        b2 = F.relu(self.b2_2(F.relu(self.b2_1(x))))
        b3 = F.relu(self.b3_2(F.relu(self.b3_1(x))))
        b4 = F.relu(self.b4_2(self.b4_1(x)))
        return torch.cat((b1, b2, b3, b4), dim=1)
""",
        (),
    ),
    Wrong(
        # relu(cat(...)) is cat(relu(...)): one in-place ReLU module after the concatenation
        "inception_relu_module_after_the_cat",
        "inception",
        """
class Inception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.b1_1 = nn.Conv2d(in_channels, c1, 1)
        self.b2_1 = nn.Conv2d(in_channels, c2[0], 1)
        self.b2_2 = nn.Conv2d(c2[0], c2[1], 3, padding=1)
        self.b3_1 = nn.Conv2d(in_channels, c3[0], 1)
        self.b3_2 = nn.Conv2d(c3[0], c3[1], 5, padding=2)
        self.b4_1 = nn.MaxPool2d(3, 1, 1)
        self.b4_2 = nn.Conv2d(in_channels, c4, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        reduced2 = self.act(self.b2_1(x))
        reduced3 = self.act(self.b3_1(x))
        outputs = [self.b1_1(x), self.b2_2(reduced2), self.b3_2(reduced3), self.b4_2(self.b4_1(x))]
        return self.act(torch.cat(outputs, 1))
""",
        (),
    ),
    # --- Residual
    Wrong(
        # torchvision's BasicBlock (torchvision/models/resnet.py), its helpers and ``out += identity``
        "residual_torchvision_basic_block",
        "residual",
        """
from collections import OrderedDict


def conv3x3(in_planes, out_planes, stride=1):
    \"\"\"3x3 convolution with padding\"\"\"
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    \"\"\"1x1 convolution\"\"\"
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class Residual(nn.Module):
    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        norm_layer = nn.BatchNorm2d
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = norm_layer(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = norm_layer(out_channels)
        if stride != 1 or in_channels != out_channels * self.expansion:
            self.downsample = nn.Sequential(
                OrderedDict([("0", conv1x1(in_channels, out_channels, stride)), ("1", norm_layer(out_channels))])
            )
        else:
            self.downsample = None
        self.stride = stride

    def forward(self, x):
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out
""",
        (),
    ),
    Wrong(
        # d2l.ai's Residual (chapter 8.6) with torchvision's names and F.relu
        "residual_d2l_style_functional_relu",
        "residual",
        """
class Residual(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.downsample = None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.downsample:
            X = self.downsample(X)
        Y += X
        return F.relu(Y)
""",
        (),
    ),
    # --- resnet18
    Wrong(
        # torchvision's ResNet: _make_layer with an inplanes counter, its weight initialisation, nn.Flatten
        "resnet_torchvision_make_layer",
        "resnet18",
        """
class ResNet18(nn.Module):
    def __init__(self, num_classes=10, in_channels=3, layers=(2, 2, 2, 2)):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes, blocks, stride=1):
        layers = [Residual(self.inplanes, planes, stride)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(Residual(self.inplanes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        x = self.flatten(x)
        return self.fc(x)


def resnet18(num_classes=10, in_channels=3):
    return ResNet18(num_classes=num_classes, in_channels=in_channels)
""",
        (),
    ),
    Wrong(
        # kuangliu's pytorch-cifar ResNet (strides list per stage, F.relu, view) with ImageNet's stem and the
        # student's own global_avg_pool in place of an avgpool module
        "resnet_pytorch_cifar_style_own_pooling",
        "resnet18",
        """
class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10, in_channels=3):
        super(ResNet, self).__init__()
        self.in_planes = 64

        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.fc = nn.Linear(512, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for stride in strides:
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        out = self.layer1(out)
        out = self.layer2(out)
        out = self.layer3(out)
        out = self.layer4(out)
        out = global_avg_pool(out)
        out = out.view(out.size(0), -1)
        out = self.fc(out)
        return out


def resnet18(num_classes=10, in_channels=3):
    return ResNet(Residual, [2, 2, 2, 2], num_classes, in_channels)
""",
        (),
    ),
    # --- questions
    Wrong(
        "questions_as_whole_floats",
        "questions",
        """
# Q1: 97 x 130 -> 49 x 65 -> 25 x 33 -> 13 x 17 -> 9 x 13 (the last layer spans 5 pixels), 256 channels
q1_answer = 256.0 * 9 * 13
# Q2: four convolutions without bias and four batch norms with a weight and a bias per channel
q2_answer = float(64 * 64 + 64 * 9 * 64 + 64 * 256 + 64 * 256 + 2 * (64 + 64 + 256 + 256))
q3_answer = 99.0
q4_answer = "A"
q5_answer = 1.0
""",
        (),
    ),
    Wrong(
        "questions_computed_with_torch",
        "questions",
        """
def feature_map_size(size):
    for kernel, stride, padding, dilation in [(7, 2, 3, 1), (3, 2, 1, 1), (3, 2, 1, 1), (3, 1, 0, 2)]:
        size = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    return size


def field_of(layers):
    field, jump = 1, 1
    for kernel, stride in layers:
        field, jump = field + (kernel - 1) * jump, jump * stride
    return field


def conv_bn(in_channels, out_channels, kernel_size):
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels)]


bottleneck = nn.ModuleList(conv_bn(64, 64, 1) + conv_bn(64, 64, 3) + conv_bn(64, 256, 1) + conv_bn(64, 256, 1))
q1_answer = 256 * feature_map_size(97) * feature_map_size(130)
q2_answer = sum(p.numel() for p in bottleneck.parameters())
q3_answer = field_of([(7, 2), (3, 2), (3, 1), (3, 1), (3, 1), (3, 1), (3, 2), (3, 1), (3, 1), (3, 1)])
q4_answer = " a "
q5_answer = 1
""",
        (),
    ),
]
