"""lab03_batchnorm: realistic mistakes (each caught by the named test cells) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
``BatchNorm2d`` subclasses ``BatchNorm1d`` in the reference, so a mistake in ``BatchNorm1d``
costs points in both module tests: the 2-D module is then wrong too.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab03_batchnorm"
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
