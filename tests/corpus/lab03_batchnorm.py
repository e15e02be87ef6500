"""lab03_batchnorm: realistic mistakes (each caught by the named test cells) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
One test cell grades both modules (``BatchNorm2d`` subclasses ``BatchNorm1d`` in the reference).
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab03_batchnorm"

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
# One test cell grades both modules; batchnorm2d comes first, as the owner of that test cell, which reads
# BatchNorm1d too (batchnorm2d uses batchnorm1d).
TESTED_BY = {
    "batch_norm": ("test_batch_norm_training", "test_batch_norm_eval"),
    "batch_norm_backward": ("test_batch_norm_backward",),
    "batchnorm2d": ("test_batchnorm_modules",),
    "batchnorm1d": ("test_batchnorm_modules",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
USES = {"batchnorm1d": ("batch_norm",), "batchnorm2d": ("batchnorm1d",)}  # each module calls the one before

REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

TRAIN, EVAL = ("test_batch_norm_training",), ("test_batch_norm_eval",)
BACKWARD = ("test_batch_norm_backward",)
MODULES = ("test_batchnorm_modules",)

CORPUS = [
    # --- batch_norm
    edit(
        "bn_unbiased_variance_to_normalise",
        "batch_norm",
        "var = x.var(dim=dims, unbiased=False)",
        "var = x.var(dim=dims)",
        TRAIN,
    ),
    edit(
        "bn_momentum_reversed",
        "batch_norm",
        "running_mean.mul_(1 - momentum).add_(momentum * mean)",
        "running_mean.mul_(momentum).add_((1 - momentum) * mean)",
        TRAIN,
    ),
    edit(
        "bn_biased_running_var",
        "batch_norm",
        "running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))",
        "running_var.mul_(1 - momentum).add_(momentum * var)",
        TRAIN,
    ),
    edit(
        "bn_batch_statistics_in_eval",
        "batch_norm",
        "        mean, var = running_mean, running_var",
        "        mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)",
        EVAL,
    ),
    edit("bn_statistics_over_batch_only", "batch_norm", "dims = [0] + list(range(2, x.dim()))", "dims = [0]", TRAIN),
    edit(
        "bn_statistics_per_example",
        "batch_norm",
        "dims = [0] + list(range(2, x.dim()))",
        "dims = list(range(1, x.dim()))",
        TRAIN,
    ),
    edit(
        "bn_eps_outside_sqrt",
        "batch_norm",
        "torch.sqrt(var.reshape(shape) + eps)",
        "(torch.sqrt(var.reshape(shape)) + eps)",
        TRAIN + EVAL,
    ),
    edit(
        "bn_running_mean_rebound",
        "batch_norm",
        "running_mean.mul_(1 - momentum).add_(momentum * mean)",
        "running_mean = (1 - momentum) * running_mean + momentum * mean",
        TRAIN,
    ),
    Wrong(
        "bn_statistics_detached",
        "batch_norm",
        REFERENCE["batch_norm"]
        .replace("mean = x.mean(dim=dims)", "mean = x.detach().mean(dim=dims)")
        .replace("var = x.var(dim=dims, unbiased=False)", "var = x.detach().var(dim=dims, unbiased=False)"),
        TRAIN,
    ),
    edit(
        "bn_no_error_for_one_value",
        "batch_norm",
        "        if count <= 1:\n"
        '            raise ValueError(f"Expected more than 1 value per channel when training, '
        'got input size {tuple(x.shape)}")\n',
        "",
        TRAIN,
    ),
    Wrong(
        "bn_running_statistics_required",
        "batch_norm",
        REFERENCE["batch_norm"]
        .replace("            if running_mean is not None:\n    ", "")
        .replace("            if running_var is not None:\n    ", ""),
        TRAIN,
    ),
    edit("bn_count_examples_only", "batch_norm", "count = x.numel() // x.shape[1]", "count = x.shape[0]", TRAIN),
    Wrong(
        "bn_weight_shaped_for_2d_only",
        "batch_norm",
        REFERENCE["batch_norm"]
        .replace("y = y * weight.reshape(shape)", "y = y * weight.reshape(1, -1)")
        .replace("y = y + bias.reshape(shape)", "y = y + bias.reshape(1, -1)"),
        TRAIN + EVAL,
    ),
    Wrong(
        "bn_running_statistics_updated_in_eval",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = x.numel() // x.shape[1]
    if training and count <= 1:
        raise ValueError("Expected more than 1 value per channel when training")
    batch_mean, batch_var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
    if running_mean is not None and count > 1:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * batch_mean)
            running_var.mul_(1 - momentum).add_(momentum * batch_var * count / (count - 1))
    mean, var = (batch_mean, batch_var) if training else (running_mean, running_var)
    y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y
""",
        EVAL,
    ),
    # --- BatchNorm1d (inherited by BatchNorm2d in the reference)
    Wrong(
        "module_without_num_batches_tracked",
        "batchnorm1d",
        REFERENCE["batchnorm1d"]
        .replace('        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))\n', "")
        .replace("            self.num_batches_tracked += 1\n", "")
        .replace("1.0 / self.num_batches_tracked.item()", "0.1"),
        MODULES,
    ),
    edit(
        "module_num_batches_tracked_float",
        "batchnorm1d",
        "torch.tensor(0, dtype=torch.long)",
        "torch.tensor(0.0)",
        MODULES,
    ),
    edit(
        "module_running_var_zeros",
        "batchnorm1d",
        'self.register_buffer("running_var", torch.ones(num_features))',
        'self.register_buffer("running_var", torch.zeros(num_features))',
        MODULES,
    ),
    Wrong(
        "module_statistics_as_parameters",
        "batchnorm1d",
        REFERENCE["batchnorm1d"]
        .replace(
            'self.register_buffer("running_mean", torch.zeros(num_features))',
            "self.running_mean = nn.Parameter(torch.zeros(num_features), requires_grad=False)",
        )
        .replace(
            'self.register_buffer("running_var", torch.ones(num_features))',
            "self.running_var = nn.Parameter(torch.ones(num_features), requires_grad=False)",
        ),
        MODULES,
    ),
    Wrong(
        "module_affine_as_buffers",
        "batchnorm1d",
        REFERENCE["batchnorm1d"]
        .replace(
            "self.weight = nn.Parameter(torch.ones(num_features))",
            'self.register_buffer("weight", torch.ones(num_features))',
        )
        .replace(
            "self.bias = nn.Parameter(torch.zeros(num_features))",
            'self.register_buffer("bias", torch.zeros(num_features))',
        ),
        MODULES,
    ),
    edit("module_always_training", "batchnorm1d", "training=self.training", "training=True", MODULES),
    edit(
        "module_momentum_none_passed_on",
        "batchnorm1d",
        "            if momentum is None:\n                momentum = 1.0 / self.num_batches_tracked.item()\n",
        "",
        MODULES,
    ),
    Wrong(
        "module_counts_in_eval",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            "        if self.training:\n            self.num_batches_tracked += 1\n",
            "        self.num_batches_tracked += 1\n        if self.training:\n",
        ),
        MODULES,
    ),
    edit(
        "module_never_counts",
        "batchnorm1d",
        "            self.num_batches_tracked += 1\n",
        "            pass\n",
        MODULES,
    ),
    edit(
        "module_keras_momentum_default",
        "batchnorm1d",
        "momentum: float | None = 0.1",
        "momentum: float | None = 0.99",
        MODULES,
    ),
    Wrong(
        "module_does_not_call_batch_norm",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            """        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=momentum, eps=self.eps)""",
            """        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        if self.training:
            count = x.numel() // x.shape[1]
            mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
            with torch.no_grad():
                self.running_mean.mul_(1 - momentum).add_(momentum * mean)
                self.running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + self.eps)
        return y * self.weight.reshape(shape) + self.bias.reshape(shape)""",
        ),
        MODULES,
    ),
    # --- BatchNorm2d
    Wrong(
        "module2d_statistics_shaped_like_the_input",
        "batchnorm2d",
        """
class BatchNorm2d(BatchNorm1d):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__(num_features, eps, momentum)
        self.running_mean = torch.zeros(1, num_features, 1, 1)
        self.running_var = torch.ones(1, num_features, 1, 1)
""",
        MODULES,
    ),
    Wrong(
        "module2d_keras_eps_default",
        "batchnorm2d",
        """
class BatchNorm2d(BatchNorm1d):
    def __init__(self, num_features, eps=1e-3, momentum=0.1):
        super().__init__(num_features, eps, momentum)
""",
        MODULES,
    ),
    # --- questions
    edit("q1_parameters_only", "questions", "q1_answer = 4 * 32 + 1", "q1_answer = 2 * 32", ("test_q1",)),
    edit("q1_without_num_batches_tracked", "questions", "q1_answer = 4 * 32 + 1", "q1_answer = 4 * 32", ("test_q1",)),
    edit(
        "q1_counts_the_convolution",
        "questions",
        "q1_answer = 4 * 32 + 1",
        "q1_answer = 32 * 16 * 9 + 32 + 4 * 32 + 1",
        ("test_q1",),
    ),
    edit(
        "q2_biased_variance",
        "questions",
        "q2_answer = 0.8 * (0.8 + 0.2 * 2.5) + 0.2 * 5.0",
        "q2_answer = 0.8 * (0.8 * 1.0 + 0.2 * 2.0) + 0.2 * 4.0",
        ("test_q2",),
    ),
    edit(
        "q2_keras_momentum",
        "questions",
        "q2_answer = 0.8 * (0.8 + 0.2 * 2.5) + 0.2 * 5.0",
        "q2_answer = 0.2 * (0.2 * 1.0 + 0.8 * 2.5) + 0.8 * 5.0",
        ("test_q2",),
    ),
    edit(
        "q2_starts_from_zero",
        "questions",
        "q2_answer = 0.8 * (0.8 + 0.2 * 2.5) + 0.2 * 5.0",
        "q2_answer = 0.8 * (0.2 * 2.5) + 0.2 * 5.0",
        ("test_q2",),
    ),
    edit(
        "q2_mean_of_the_batch_variances",
        "questions",
        "q2_answer = 0.8 * (0.8 + 0.2 * 2.5) + 0.2 * 5.0",
        "q2_answer = (2.5 + 5.0) / 2",
        ("test_q2",),
    ),
    edit(
        "q3_unbiased_variance",
        "questions",
        "q3_answer = 1 + 2 * (7 - 4) / 5**0.5",
        "q3_answer = 1 + 2 * (7 - 4) / (20 / 3) ** 0.5",
        ("test_q3",),
    ),
    edit(
        "q3_statistics_per_position",
        "questions",
        "q3_answer = 1 + 2 * (7 - 4) / 5**0.5",
        "q3_answer = 1 + 2 * (7 - 5) / 2",
        ("test_q3",),
    ),
    edit(
        "q3_statistics_per_example",
        "questions",
        "q3_answer = 1 + 2 * (7 - 4) / 5**0.5",
        "q3_answer = 1 + 2 * (7 - 4) / 2.5",
        ("test_q3",),
    ),
    edit("q3_no_affine", "questions", "q3_answer = 1 + 2 * (7 - 4) / 5**0.5", "q3_answer = 3 / 5**0.5", ("test_q3",)),
    edit("q4_identity", "questions", 'q4_answer = "d"', 'q4_answer = "a"', ("test_q4",)),
    edit("q4_nan_output", "questions", 'q4_answer = "d"', 'q4_answer = "b"', ("test_q4",)),
    edit("q4_sign", "questions", 'q4_answer = "d"', 'q4_answer = "c"', ("test_q4",)),
    edit("q5_weights_trained", "questions", 'q5_answer = "c"', 'q5_answer = "a"', ("test_q5",)),
    edit("q5_noise", "questions", 'q5_answer = "c"', 'q5_answer = "b"', ("test_q5",)),
    edit("q5_momentum_one", "questions", 'q5_answer = "c"', 'q5_answer = "d"', ("test_q5",)),
    Wrong(
        "questions_letters_as_numbers",
        "questions",
        "q1_answer = 129\nq2_answer = 2.04\nq3_answer = 3.683\nq4_answer = 4\nq5_answer = 3\n",
        ("test_q4", "test_q5"),
    ),
]

ALTERNATIVES = [
    Wrong(
        "bn_channels_first_matrix_and_lerp",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    channels = x.shape[1]
    flat = x.transpose(0, 1).reshape(channels, -1)  # (C, everything else)
    if training:
        m = flat.shape[1]
        if m < 2:
            raise ValueError("need more than one value per channel")
        mean = flat.mean(dim=1)
        var = ((flat - mean[:, None]) ** 2).mean(dim=1)
        if running_mean is not None:
            running_mean.lerp_(mean.detach(), momentum)
        if running_var is not None:
            running_var.lerp_(var.detach() * m / (m - 1), momentum)
    else:
        mean, var = running_mean, running_var
    view = (1, channels) + (1,) * (x.dim() - 2)
    out = (x - mean.view(view)) * torch.rsqrt(var.view(view) + eps)
    if weight is not None:
        out = out * weight.view(view)
    if bias is not None:
        out = out + bias.view(view)
    return out
""",
        (),
    ),
    Wrong(
        "bn_keepdim_and_copy",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    axes = tuple(d for d in range(x.dim()) if d != 1)
    if training:
        if x.numel() == x.size(1):
            raise ValueError("Expected more than 1 value per channel when training")
        mean = x.mean(dim=axes, keepdim=True)
        var = x.var(dim=axes, keepdim=True, correction=0)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.copy_((1 - momentum) * running_mean + momentum * mean.flatten())
            if running_var is not None:
                unbiased = x.var(dim=axes, correction=1)
                running_var.copy_((1 - momentum) * running_var + momentum * unbiased)
    else:
        shape = [1] * x.dim()
        shape[1] = -1
        mean, var = running_mean.view(shape), running_var.view(shape)
    x_hat = (x - mean) / (var + eps).sqrt()
    shape = [1] * x.dim()
    shape[1] = -1
    if weight is not None:
        x_hat = x_hat * weight.view(shape)
    if bias is not None:
        x_hat = x_hat + bias.view(shape)
    return x_hat
""",
        (),
    ),
    Wrong(
        "module_exponential_average_factor",
        "batchnorm1d",
        """
class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.empty(num_features))
        self.bias = nn.Parameter(torch.empty(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        return batch_norm(x, self.running_mean, self.running_var, weight=self.weight, bias=self.bias,
                          training=self.training, momentum=factor, eps=self.eps)
""",
        (),
    ),
    Wrong(
        "module2d_written_out",
        "batchnorm2d",
        """
class BatchNorm2d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0))

    def forward(self, x):
        if self.training:
            self.num_batches_tracked += 1
        momentum = self.momentum
        if momentum is None:
            momentum = 1 / int(self.num_batches_tracked) if self.training else 0.0
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                          momentum, self.eps)
""",
        (),
    ),
    Wrong(
        "questions_other_forms",
        "questions",
        'q1_answer = 129.0\nq2_answer = 2.04\nq3_answer = 3.683\nq4_answer = "D"\nq5_answer = " c "\n',
        (),
    ),
]

# --- batch_norm: numerics, dtypes, devices, side effects, forbidden calls (issue 13)
CORPUS += [
    edit(
        "bn_one_pass_variance",
        "batch_norm",
        "var = x.var(dim=dims, unbiased=False)",
        "var = (x * x).mean(dim=dims) - mean**2  # E[x^2] - E[x]^2",
        TRAIN,
    ),
    Wrong(
        "bn_default_affine_made_on_the_cpu",
        "batch_norm",
        REFERENCE["batch_norm"].replace(
            "    if weight is not None:\n        y = y * weight.reshape(shape)\n"
            "    if bias is not None:\n        y = y + bias.reshape(shape)\n",
            "    if weight is None:\n        weight = torch.ones(x.shape[1], dtype=x.dtype)\n"
            "    if bias is None:\n        bias = torch.zeros(x.shape[1], dtype=x.dtype)\n"
            "    y = y * weight.reshape(shape) + bias.reshape(shape)\n",
        ),
        TRAIN + EVAL,
    ),
    edit(
        "bn_upcast_to_float64",
        "batch_norm",
        "    dims = [0] + list(range(2, x.dim()))         # every dimension except the channels\n",
        "    x = x.double()  # more precision\n    dims = [0] + list(range(2, x.dim()))\n",
        TRAIN + EVAL,
    ),
    edit(
        "bn_downcast_to_float32",
        "batch_norm",
        "    dims = [0] + list(range(2, x.dim()))         # every dimension except the channels\n",
        "    x = x.float()\n    dims = [0] + list(range(2, x.dim()))\n",
        TRAIN + EVAL,
    ),
    edit(
        "bn_running_statistics_record_grad",
        "batch_norm",
        """        with torch.no_grad():
            if running_mean is not None:
                running_mean.mul_(1 - momentum).add_(momentum * mean)
            if running_var is not None:
                running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))""",
        """        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(momentum * mean)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(momentum * var * count / (count - 1))""",
        TRAIN,
    ),
    edit(
        "bn_running_statistics_data_swap",
        "batch_norm",
        """                running_mean.mul_(1 - momentum).add_(momentum * mean)""",
        """                running_mean.data = (1 - momentum) * running_mean + momentum * mean""",
        TRAIN,
    ),
    Wrong(
        "bn_normalises_x_in_place",
        "batch_norm",
        REFERENCE["batch_norm"].replace(
            "    y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)\n",
            "    y = x\n    y -= mean.reshape(shape)\n    y /= torch.sqrt(var.reshape(shape) + eps)\n",
        ),
        TRAIN + EVAL,
    ),
    Wrong(
        "bn_eval_updates_with_zero_momentum",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    count = x.numel() // x.shape[1]
    if training and count <= 1:
        raise ValueError("Expected more than 1 value per channel when training")
    factor = momentum if training else 0.0  # no update in evaluation
    if running_mean is not None:
        with torch.no_grad():
            batch_mean = x.mean(dim=dims)
            batch_var = x.var(dim=dims, unbiased=False) * count / max(count - 1, 1)
            running_mean.mul_(1 - factor).add_(factor * batch_mean)
            running_var.mul_(1 - factor).add_(factor * batch_var)
    if training:
        mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
    else:
        mean, var = running_mean, running_var
    y = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y
""",
        EVAL,
    ),
    Wrong(
        "bn_calls_functional_batch_norm",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)
""",
        TRAIN + EVAL,
    ),
    Wrong(
        "bn_layer_norm_on_channels",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    shape = [1, -1] + [1] * (x.dim() - 2)
    channels = x.shape[1]
    flat = x.transpose(0, 1).reshape(channels, -1)  # one row per channel
    if training:
        m = flat.shape[1]
        if m <= 1:
            raise ValueError("Expected more than 1 value per channel when training")
        with torch.no_grad():
            if running_mean is not None:
                running_mean.lerp_(flat.mean(dim=1), momentum)
            if running_var is not None:
                running_var.lerp_(flat.var(dim=1), momentum)
        y = F.layer_norm(flat, (m,), eps=eps).reshape(channels, x.shape[0], *x.shape[2:]).transpose(0, 1)
    else:
        y = (x - running_mean.reshape(shape)) / torch.sqrt(running_var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y
""",
        TRAIN,
    ),
    edit(
        "bn_training_by_default",
        "batch_norm",
        "bias: torch.Tensor | None = None, training: bool = False,",
        "bias: torch.Tensor | None = None, training: bool = True,",
        EVAL,
    ),
    edit(
        "bn_keras_momentum_default",
        "batch_norm",
        "momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:",
        "momentum: float = 0.99, eps: float = 1e-5) -> torch.Tensor:",
        TRAIN,
    ),
    edit(
        "bn_keras_eps_default",
        "batch_norm",
        "momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:",
        "momentum: float = 0.1, eps: float = 1e-3) -> torch.Tensor:",
        TRAIN + EVAL,
    ),
    edit(
        "bn_count_assumes_images",
        "batch_norm",
        "count = x.numel() // x.shape[1]",
        "count = x.shape[0] * x.shape[2] * x.shape[3]",
        TRAIN,
    ),
    Wrong(
        "bn_affine_only_when_both_given",
        "batch_norm",
        REFERENCE["batch_norm"].replace(
            "    if weight is not None:\n        y = y * weight.reshape(shape)\n"
            "    if bias is not None:\n        y = y + bias.reshape(shape)\n",
            "    if weight is not None and bias is not None:\n"
            "        y = y * weight.reshape(shape) + bias.reshape(shape)\n",
        ),
        TRAIN + EVAL,
    ),
    Wrong(
        "bn_value_error_after_the_update",
        "batch_norm",
        REFERENCE["batch_norm"]
        .replace(
            "        if count <= 1:\n"
            '            raise ValueError(f"Expected more than 1 value per channel when training, '
            'got input size {tuple(x.shape)}")\n',
            "",
        )
        .replace("count / (count - 1))", "count / max(count - 1, 1))")
        .replace(
            "    else:\n        mean, var = running_mean, running_var\n",
            "        if count == 1:\n"
            '            raise ValueError("Expected more than 1 value per channel when training")\n'
            "    else:\n        mean, var = running_mean, running_var\n",
        ),
        TRAIN,
    ),
    edit(
        "bn_variance_detached",
        "batch_norm",
        "var = x.var(dim=dims, unbiased=False)",
        "var = x.detach().var(dim=dims, unbiased=False)  # a constant, like running_var",
        TRAIN,
    ),
]

# --- the modules (issue 13): calls, defaults, devices
CORPUS += [
    edit(
        "module_num_batches_tracked_made_on_the_cpu",
        "batchnorm1d",
        "            self.num_batches_tracked += 1\n",
        "            self.num_batches_tracked = torch.tensor(self.num_batches_tracked.item() + 1)\n",
        MODULES,
    ),
    edit(
        "module_calls_functional_batch_norm",
        "batchnorm1d",
        "        return batch_norm(x, self.running_mean,",
        "        return F.batch_norm(x, self.running_mean,",
        MODULES,
    ),
    Wrong(
        "module_calls_batch_norm_twice",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            """        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=momentum, eps=self.eps)""",
            """        if self.training:  # first update the running statistics, then normalise with the batch's
            batch_norm(x, self.running_mean, self.running_var, training=True, momentum=momentum, eps=self.eps)
            return batch_norm(x, None, None, self.weight, self.bias, training=True, eps=self.eps)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, eps=self.eps)""",
        ),
        MODULES,
    ),
    Wrong(
        "module_cumulative_average_counted_late",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            """        momentum = self.momentum
        if self.training:
            self.num_batches_tracked += 1
            if momentum is None:
                momentum = 1.0 / self.num_batches_tracked.item()""",
            """        momentum = self.momentum
        if momentum is None:
            momentum = 1.0 / max(self.num_batches_tracked.item(), 1)
        if self.training:
            self.num_batches_tracked += 1""",
        ),
        MODULES,
    ),
    edit(
        "module_eps_not_passed",
        "batchnorm1d",
        "training=self.training, momentum=momentum, eps=self.eps)",
        "training=self.training, momentum=momentum)",
        MODULES,
    ),
    edit(
        "module_momentum_not_passed",
        "batchnorm1d",
        "training=self.training, momentum=momentum, eps=self.eps)",
        "training=self.training, eps=self.eps)",
        MODULES,
    ),
    edit(
        "module_momentum_and_eps_swapped",
        "batchnorm1d",
        "self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1",
        "self, num_features: int, momentum: float | None = 0.1, eps: float = 1e-5",
        MODULES,
    ),
    edit(
        "module_parameters_in_float64",
        "batchnorm1d",
        "self.weight = nn.Parameter(torch.ones(num_features))",
        "self.weight = nn.Parameter(torch.ones(num_features, dtype=torch.float64))",
        MODULES,
    ),
    Wrong(
        "module2d_view_after_permute",
        "batchnorm2d",
        """
class BatchNorm2d(BatchNorm1d):
    def forward(self, x):
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).view(-1, c)  # one row per position, channels last
        return super().forward(rows).view(n, h, w, c).permute(0, 3, 1, 2)
""",
        MODULES,
    ),
]

# --- correct answers in other styles, some adapted from public code (issue 13)
ALTERNATIVES += [
    # 1.0 / the long counter is a float32 tensor: 1/3 is rounded, within the stated 1e-7
    edit(
        "module_cumulative_momentum_as_a_tensor",
        "batchnorm1d",
        "momentum = 1.0 / self.num_batches_tracked.item()",
        "momentum = 1.0 / self.num_batches_tracked",
        (),
    ),
    Wrong(
        "bn_var_mean_rsqrt_detached_update",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    dims = tuple(d for d in range(x.dim()) if d != 1)
    view = (1, -1) + (1,) * (x.dim() - 2)
    if training:
        n = x.numel() / x.size(1)
        if n == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {list(x.shape)}")
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
        if running_var is not None:
            running_var.mul_(1 - momentum).add_(var.detach() * (n / (n - 1)), alpha=momentum)
    else:
        mean, var = running_mean, running_var
    out = (x - mean.view(view)) * torch.rsqrt(var.view(view) + eps)
    if weight is not None:
        out = out * weight.view(view)
    if bias is not None:
        out = out + bias.view(view)
    return out
""",
        (),
    ),
    Wrong(
        # adapted from the decomposition of native_batch_norm in PyTorch's torch/_decomp/decompositions.py
        "bn_adapted_from_pytorch_decomposition",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    reduction_dims = [0] + list(range(2, x.dim()))
    if training:
        n = x.numel() / x.shape[1]
        if n <= 1:
            raise ValueError("Expected more than 1 value per channel when training")
        biased_var, mean = torch.var_mean(x, dim=reduction_dims, correction=0, keepdim=True)
        rstd = torch.rsqrt(biased_var + eps)
        output = (x - mean) * rstd
        save_mean = torch.squeeze(mean, reduction_dims)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.copy_(momentum * save_mean + (1 - momentum) * running_mean)
            if running_var is not None:
                squeezed_var = torch.squeeze(biased_var, reduction_dims)
                unbiased_var = squeezed_var * (n / (n - 1))
                running_var.copy_(momentum * unbiased_var + (1 - momentum) * running_var)
    else:
        broadcast = [1, -1] + [1] * (x.dim() - 2)
        rstd = torch.rsqrt(running_var.reshape(broadcast) + eps)
        output = (x - running_mean.reshape(broadcast)) * rstd
    if weight is not None:
        output = output * weight.reshape([1, -1] + [1] * (x.dim() - 2))
    if bias is not None:
        output = output + bias.reshape([1, -1] + [1] * (x.dim() - 2))
    return output
""",
        (),
    ),
    Wrong(
        # the structure of d2l.ai's batch_norm (two branches, keepdim), with this lab's conventions
        "bn_adapted_from_d2l",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    assert len(x.shape) in (2, 4)
    if not training:
        if len(x.shape) == 2:
            x_hat = (x - running_mean) / torch.sqrt(running_var + eps)
        else:
            x_hat = (x - running_mean.reshape(1, -1, 1, 1)) / torch.sqrt(running_var.reshape(1, -1, 1, 1) + eps)
    else:
        if len(x.shape) == 2:
            mean = x.mean(dim=0)
            var = ((x - mean) ** 2).mean(dim=0)
        else:
            mean = x.mean(dim=(0, 2, 3), keepdim=True)
            var = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        m = x.numel() // x.shape[1]
        if m < 2:
            raise ValueError("need more than one value per channel to train")
        x_hat = (x - mean) / torch.sqrt(var + eps)
        with torch.no_grad():
            if running_mean is not None:
                running_mean.copy_((1.0 - momentum) * running_mean + momentum * mean.reshape(-1))
            if running_var is not None:
                running_var.copy_((1.0 - momentum) * running_var + momentum * var.reshape(-1) * m / (m - 1))
    shape = (1, -1) if len(x.shape) == 2 else (1, -1, 1, 1)
    if weight is not None:
        x_hat = weight.reshape(shape) * x_hat
    if bias is not None:
        x_hat = x_hat + bias.reshape(shape)
    return x_hat
""",
        (),
    ),
    Wrong(
        # CS231n's batchnorm_forward and spatial_batchnorm_forward (numpy), written in torch
        "bn_adapted_from_cs231n",
        "batch_norm",
        """
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    def batchnorm_forward(x2d):
        if training:
            sample_mean = x2d.mean(dim=0)
            sample_var = x2d.var(dim=0, unbiased=False)
            if x2d.shape[0] < 2:
                raise ValueError("Expected more than 1 value per channel when training")
            n = x2d.shape[0]
            with torch.no_grad():
                if running_mean is not None:
                    running_mean[:] = (1 - momentum) * running_mean + momentum * sample_mean
                if running_var is not None:
                    running_var[:] = (1 - momentum) * running_var + momentum * sample_var * n / (n - 1)
            x_norm = (x2d - sample_mean) / torch.sqrt(sample_var + eps)
        else:
            x_norm = (x2d - running_mean) / torch.sqrt(running_var + eps)
        out = x_norm
        if weight is not None:
            out = out * weight
        if bias is not None:
            out = out + bias
        return out

    if x.dim() == 2:
        return batchnorm_forward(x)
    n, c, h, w = x.shape
    out = batchnorm_forward(x.permute(0, 2, 3, 1).reshape(-1, c))
    return out.reshape(n, h, w, c).permute(0, 3, 1, 2)
""",
        (),
    ),
    Wrong(
        # the PyTorch forum's MyBatchNorm2d (mean([0, 2, 3]) and [None, :, None, None]), as a function
        "bn_adapted_from_forum_mybatchnorm",
        "batch_norm",
        """
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    index = (None, slice(None)) + (None,) * (input.dim() - 2)
    if training:
        dims = [0] + list(range(2, input.dim()))
        mean = input.mean(dims)
        var = input.var(dims, unbiased=False)
        n = input.numel() / input.size(1)
        if n == 1:
            raise ValueError("Expected more than 1 value per channel when training")
        with torch.no_grad():
            if running_mean is not None:
                running_mean.copy_(momentum * mean + (1 - momentum) * running_mean)
            if running_var is not None:
                running_var.copy_(momentum * var * n / (n - 1) + (1 - momentum) * running_var)
    else:
        mean = running_mean
        var = running_var
    input = (input - mean[index]) / (torch.sqrt(var[index] + eps))
    if weight is not None:
        input = input * weight[index]
    if bias is not None:
        input = input + bias[index]
    return input
""",
        (),
    ),
    Wrong(
        "module_reset_methods_and_reassigned_counter",
        "batchnorm1d",
        """
class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = nn.Parameter(torch.empty(num_features))
        self.bias = nn.Parameter(torch.empty(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        self.reset_parameters()

    def reset_running_stats(self):
        self.running_mean.zero_()
        self.running_var.fill_(1)
        self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(self, x):
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked = self.num_batches_tracked + 1
            if momentum is None:
                momentum = 1.0 / float(self.num_batches_tracked)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, self.training,
                          momentum, self.eps)
""",
        (),
    ),
    Wrong(
        "module_counts_after_the_call",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            """        momentum = self.momentum
        if self.training:
            self.num_batches_tracked += 1
            if momentum is None:
                momentum = 1.0 / self.num_batches_tracked.item()
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training=self.training, momentum=momentum, eps=self.eps)""",
            """        momentum = self.momentum
        if momentum is None:
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        y = batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                       training=self.training, momentum=momentum, eps=self.eps)
        if self.training:
            self.num_batches_tracked.add_(1)
        return y""",
        ),
        (),
    ),
    Wrong(
        "module2d_rows_of_channels",
        "batchnorm2d",
        """
class BatchNorm2d(BatchNorm1d):
    def forward(self, x):
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)  # (N * H * W, C): one row per position
        return super().forward(rows).reshape(n, h, w, c).permute(0, 3, 1, 2)
""",
        (),
    ),
]

# --- batch_norm_backward: the gradients by hand (issue 18)
GRAD_X = "grad_x = weight.detach().reshape(shape) / (n * std) * (n * g - sum_g - x_hat * sum_g_x_hat)"
STD = "std = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)"
RETURN = "return grad_x, sum_g_x_hat.reshape(-1), sum_g.reshape(-1)"

CORPUS += [
    edit(
        "bwd_statistics_constant",
        "batch_norm_backward",
        GRAD_X,
        "grad_x = weight.detach().reshape(shape) * g / std  # through x_hat only",
        BACKWARD,
    ),
    edit(
        "bwd_no_path_through_the_variance",
        "batch_norm_backward",
        GRAD_X,
        "grad_x = weight.detach().reshape(shape) / (n * std) * (n * g - sum_g)",
        BACKWARD,
    ),
    edit(
        "bwd_no_path_through_the_mean",
        "batch_norm_backward",
        GRAD_X,
        "grad_x = weight.detach().reshape(shape) / (n * std) * (n * g - x_hat * sum_g_x_hat)",
        BACKWARD,
    ),
    edit("bwd_unbiased_variance", "batch_norm_backward", "unbiased=False", "unbiased=True", BACKWARD),
    edit(
        "bwd_no_weight_factor",
        "batch_norm_backward",
        "weight.detach().reshape(shape) / (n * std)",
        "1 / (n * std)",
        BACKWARD,
    ),
    Wrong(
        "bwd_sums_over_the_batch_only",
        "batch_norm_backward",
        REFERENCE["batch_norm_backward"]
        .replace("dims = [0] + list(range(2, x.dim()))", "dims = [0]")
        .replace("n = x.numel() // x.shape[1]", "n = x.shape[0]"),
        BACKWARD,
    ),
    edit(
        "bwd_count_is_the_batch_size", "batch_norm_backward", "n = x.numel() // x.shape[1]", "n = x.shape[0]", BACKWARD
    ),
    edit(
        "bwd_eps_outside_the_sqrt",
        "batch_norm_backward",
        STD,
        "std = torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True)) + eps",
        BACKWARD,
    ),
    edit(
        "bwd_sign_of_the_variance_term",
        "batch_norm_backward",
        "- x_hat * sum_g_x_hat",
        "+ x_hat * sum_g_x_hat",
        BACKWARD,
    ),
    edit("bwd_sign_of_the_mean_term", "batch_norm_backward", "n * g - sum_g", "n * g + sum_g", BACKWARD),
    edit(
        "bwd_grad_weight_from_x",
        "batch_norm_backward",
        RETURN,
        "return grad_x, (g * x).sum(dim=dims), sum_g.reshape(-1)",
        BACKWARD,
    ),
    edit(
        "bwd_grad_bias_mean",
        "batch_norm_backward",
        RETURN,
        "return grad_x, sum_g_x_hat.reshape(-1), g.mean(dim=dims)",
        BACKWARD,
    ),
    edit(
        "bwd_centres_x_in_place",
        "batch_norm_backward",
        "x_hat = (x - x.mean(dim=dims, keepdim=True)) / std",
        "x_hat = x.sub_(x.mean(dim=dims, keepdim=True)).div_(std)",
        BACKWARD,
    ),
    Wrong(
        "bwd_results_carry_autograd_history",
        "batch_norm_backward",
        REFERENCE["batch_norm_backward"]
        .replace("g, x = grad_out.detach(), x.detach()", "g = grad_out")
        .replace("weight.detach().reshape(shape)", "weight.reshape(shape)"),
        BACKWARD,
    ),
    edit(
        "bwd_float64_returned",
        "batch_norm_backward",
        "g, x = grad_out.detach(), x.detach()",
        "g, x, weight = grad_out.detach().double(), x.detach().double(), weight.double()",
        BACKWARD,
    ),
    edit(
        "bwd_grad_bias_made_on_the_cpu",
        "batch_norm_backward",
        RETURN,
        "grad_bias = torch.zeros(x.shape[1], dtype=x.dtype)\n    grad_bias += sum_g.reshape(-1)\n"
        "    return grad_x, sum_g_x_hat.reshape(-1), grad_bias",
        BACKWARD,
    ),
    Wrong(
        "bwd_autograd_grad",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    x = x.detach().requires_grad_(True)
    weight = weight.detach().requires_grad_(True)
    bias = torch.zeros_like(weight, requires_grad=True)
    with torch.enable_grad():
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        y = (x - mean) / torch.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)
        return torch.autograd.grad(y, (x, weight, bias), grad_out)
""",
        BACKWARD,
    ),
    Wrong(
        "bwd_calls_backward",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    dims = [0] + list(range(2, x.dim()))
    shape = [1, -1] + [1] * (x.dim() - 2)
    x = x.detach().clone().requires_grad_(True)
    weight = weight.detach().clone().requires_grad_(True)
    bias = torch.zeros_like(weight, requires_grad=True)
    with torch.enable_grad():
        x_hat = (x - x.mean(dim=dims, keepdim=True)) / torch.sqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
        (x_hat * weight.reshape(shape) + bias.reshape(shape)).backward(grad_out)
    return x.grad, weight.grad, bias.grad
""",
        BACKWARD,
    ),
]

ALTERNATIVES += [
    Wrong(
        "bwd_long_chain_rule_through_mean_and_variance",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    with torch.no_grad():
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        m = x.numel() / x.shape[1]
        mu = x.mean(dim=dims, keepdim=True)
        centred = x - mu
        var = (centred**2).mean(dim=dims, keepdim=True)
        inv_std = 1.0 / torch.sqrt(var + eps)
        dx_hat = grad_out * weight.reshape(shape)
        dvar = (dx_hat * centred).sum(dim=dims, keepdim=True) * -0.5 * inv_std**3
        dmu = -(dx_hat * inv_std).sum(dim=dims, keepdim=True) + dvar * (-2.0 * centred).mean(dim=dims, keepdim=True)
        grad_x = dx_hat * inv_std + dvar * 2.0 * centred / m + dmu / m
        grad_weight = (grad_out * centred * inv_std).sum(dim=dims)
        grad_bias = grad_out.sum(dim=dims)
    return grad_x, grad_weight, grad_bias
""",
        (),
    ),
    Wrong(
        "bwd_einsum",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    x3 = x.detach().reshape(x.shape[0], x.shape[1], -1)
    g3 = grad_out.detach().reshape(x3.shape)
    n = x3.shape[0] * x3.shape[2]
    mu = torch.einsum("ncl->c", x3) / n
    centred = x3 - mu[None, :, None]
    var = torch.einsum("ncl,ncl->c", centred, centred) / n
    inv_std = torch.rsqrt(var + eps)
    x_hat = centred * inv_std[None, :, None]
    grad_bias = torch.einsum("ncl->c", g3)
    grad_weight = torch.einsum("ncl,ncl->c", g3, x_hat)
    scale = (weight.detach() * inv_std)[None, :, None]
    grad_x = scale * (g3 - grad_bias[None, :, None] / n - x_hat * grad_weight[None, :, None] / n)
    return grad_x.reshape(x.shape), grad_weight, grad_bias
""",
        (),
    ),
    Wrong(
        "bwd_channels_first_matrix",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    channels = x.shape[1]
    flat_x = x.detach().transpose(0, 1).reshape(channels, -1)  # (C, n)
    flat_g = grad_out.detach().transpose(0, 1).reshape(channels, -1)
    n = flat_x.shape[1]
    mean = flat_x.mean(dim=1, keepdim=True)
    std = ((flat_x - mean) ** 2).mean(dim=1, keepdim=True).add(eps).sqrt()
    x_hat = (flat_x - mean) / std
    grad_bias = flat_g.sum(dim=1)
    grad_weight = (flat_g * x_hat).sum(dim=1)
    flat_dx = weight.detach()[:, None] / std * (flat_g - grad_bias[:, None] / n - x_hat * grad_weight[:, None] / n)
    grad_x = flat_dx.reshape(channels, x.shape[0], *x.shape[2:]).transpose(0, 1)
    return grad_x, grad_weight, grad_bias
""",
        (),
    ),
    Wrong(
        "bwd_float64_inside_then_cast",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps=1e-5):
    dtype = x.dtype
    g, x, w = (t.detach().to(torch.float64) for t in (grad_out, x, weight))
    dims = (0, *range(2, x.dim()))
    w = w.view(1, -1, *[1] * (x.dim() - 2))
    n = x.numel() // x.shape[1]
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, correction=0, keepdim=True)
    x_hat = (x - mean) * (var + eps).rsqrt()
    grad_bias = g.sum(dim=dims)
    grad_weight = (g * x_hat).sum(dim=dims)
    mean_g, mean_g_x_hat = g.mean(dim=dims, keepdim=True), (g * x_hat).mean(dim=dims, keepdim=True)
    grad_x = w * (var + eps).rsqrt() * (g - mean_g - x_hat * mean_g_x_hat)
    return grad_x.to(dtype), grad_weight.to(dtype), grad_bias.to(dtype)
""",
        (),
    ),
    Wrong(
        "bwd_loop_over_channels",
        "batch_norm_backward",
        """
def batch_norm_backward(grad_out, x, weight, eps):
    grad_x, grad_weight, grad_bias = [], [], []
    for c in range(x.shape[1]):
        xc, gc = x[:, c].detach(), grad_out[:, c].detach()
        n = xc.numel()
        mu = xc.mean()
        sigma = torch.sqrt(((xc - mu) ** 2).sum() / n + eps)
        x_hat = (xc - mu) / sigma
        grad_bias.append(gc.sum())
        grad_weight.append((gc * x_hat).sum())
        grad_x.append(weight[c].detach() / (n * sigma) * (n * gc - gc.sum() - x_hat * (gc * x_hat).sum()))
    return torch.stack(grad_x, dim=1), torch.stack(grad_weight), torch.stack(grad_bias)
""",
        (),
    ),
]
