"""lab03_batchnorm: realistic mistakes (each caught by the named test cells) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
``BatchNorm2d`` subclasses ``BatchNorm1d`` in the reference, so a mistake in ``BatchNorm1d``
costs points in both module tests: the 2-D module is then wrong too.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab03_batchnorm"

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "batch_norm": ("test_batch_norm_training", "test_batch_norm_eval"),
    "batchnorm1d": ("test_batchnorm1d",),
    "batchnorm2d": ("test_batchnorm2d",),
    "questions": ("test_q1", "test_q2", "test_q3"),
}
USES = {"batchnorm1d": ("batch_norm",), "batchnorm2d": ("batchnorm1d",)}  # each module calls the one before

REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

TRAIN, EVAL = ("test_batch_norm_training",), ("test_batch_norm_eval",)
BOTH_MODULES = ("test_batchnorm1d", "test_batchnorm2d")

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
        BOTH_MODULES,
    ),
    edit(
        "module_num_batches_tracked_float",
        "batchnorm1d",
        "torch.tensor(0, dtype=torch.long)",
        "torch.tensor(0.0)",
        BOTH_MODULES,
    ),
    edit(
        "module_running_var_zeros",
        "batchnorm1d",
        'self.register_buffer("running_var", torch.ones(num_features))',
        'self.register_buffer("running_var", torch.zeros(num_features))',
        BOTH_MODULES,
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
        BOTH_MODULES,
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
        BOTH_MODULES,
    ),
    edit("module_always_training", "batchnorm1d", "training=self.training", "training=True", BOTH_MODULES),
    edit(
        "module_momentum_none_passed_on",
        "batchnorm1d",
        "            if momentum is None:\n                momentum = 1.0 / self.num_batches_tracked.item()\n",
        "",
        BOTH_MODULES,
    ),
    Wrong(
        "module_counts_in_eval",
        "batchnorm1d",
        REFERENCE["batchnorm1d"].replace(
            "        if self.training:\n            self.num_batches_tracked += 1\n",
            "        self.num_batches_tracked += 1\n        if self.training:\n",
        ),
        BOTH_MODULES,
    ),
    edit(
        "module_never_counts",
        "batchnorm1d",
        "            self.num_batches_tracked += 1\n",
        "            pass\n",
        BOTH_MODULES,
    ),
    edit(
        "module_keras_momentum_default",
        "batchnorm1d",
        "momentum: float | None = 0.1",
        "momentum: float | None = 0.99",
        BOTH_MODULES,
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
        BOTH_MODULES,
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
        ("test_batchnorm2d",),
    ),
    Wrong(
        "module2d_keras_eps_default",
        "batchnorm2d",
        """
class BatchNorm2d(BatchNorm1d):
    def __init__(self, num_features, eps=1e-3, momentum=0.1):
        super().__init__(num_features, eps, momentum)
""",
        ("test_batchnorm2d",),
    ),
    # --- questions
    edit("q1_one_update", "questions", "q1_answer = 2.0 * (1 - 0.9**3)", "q1_answer = 0.2", ("test_q1",)),
    edit(
        "q1_keras_convention",
        "questions",
        "q1_answer = 2.0 * (1 - 0.9**3)",
        "q1_answer = 2.0 * (1 - 0.1**3)",
        ("test_q1",),
    ),
    edit("q2_biased", "questions", 'q2_answer = "b"', 'q2_answer = "a"', ("test_q2",)),
    edit("q3_nothing_changes", "questions", 'q3_answer = "b"', 'q3_answer = "a"', ("test_q3",)),
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
    Wrong("questions_as_numbers", "questions", 'q1_answer = 0.542\nq2_answer = "b"\nq3_answer = "b"\n', ()),
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
        BOTH_MODULES,
    ),
    edit(
        "module_calls_functional_batch_norm",
        "batchnorm1d",
        "        return batch_norm(x, self.running_mean,",
        "        return F.batch_norm(x, self.running_mean,",
        BOTH_MODULES,
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
        BOTH_MODULES,
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
        BOTH_MODULES,
    ),
    edit(
        "module_eps_not_passed",
        "batchnorm1d",
        "training=self.training, momentum=momentum, eps=self.eps)",
        "training=self.training, momentum=momentum)",
        BOTH_MODULES,
    ),
    edit(
        "module_momentum_not_passed",
        "batchnorm1d",
        "training=self.training, momentum=momentum, eps=self.eps)",
        "training=self.training, eps=self.eps)",
        BOTH_MODULES,
    ),
    edit(
        "module_momentum_and_eps_swapped",
        "batchnorm1d",
        "def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1):",
        "def __init__(self, num_features: int, momentum: float | None = 0.1, eps: float = 1e-5):",
        BOTH_MODULES,
    ),
    edit(
        "module_parameters_in_float64",
        "batchnorm1d",
        "self.weight = nn.Parameter(torch.ones(num_features))",
        "self.weight = nn.Parameter(torch.ones(num_features, dtype=torch.float64))",
        BOTH_MODULES,
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
        ("test_batchnorm2d",),
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
