"""lab02_init: realistic mistakes (each caught by the named test cell) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_editor

LAB = "lab02_init"
edit = reference_editor(LAB)

GAIN, FAN = ("test_calculate_gain",), ("test_fan_in_and_fan_out",)
Q1_REFERENCE = "q1_answer = math.sqrt(2 / (32 * 3 * 3))"
KN, KU = ("test_kaiming_normal",), ("test_kaiming_uniform",)
XN, XU = ("test_xavier_normal",), ("test_xavier_uniform",)
CLIP, VAR = ("test_clip_grad_norm",), ("test_activation_variances",)

CORPUS = [
    # --- calculate_gain
    edit("gain_relu_is_two", "calculate_gain", "return math.sqrt(2.0)\n", "return 2.0\n", GAIN),
    edit("gain_tanh_is_one", "calculate_gain", "return 5.0 / 3", "return 1.0", GAIN),
    edit("gain_leaky_default_slope_zero", "calculate_gain", "slope = 0.01 if param", "slope = 0.0 if param", GAIN),
    edit(
        "gain_leaky_without_sqrt",
        "calculate_gain",
        "return math.sqrt(2.0 / (1 + slope**2))",
        "return 2.0 / (1 + slope**2)",
        GAIN,
    ),
    edit("gain_leaky_slope_not_squared", "calculate_gain", "(1 + slope**2)", "(1 + slope)", GAIN),
    edit("gain_sigmoid_missing", "calculate_gain", ' or nonlinearity == "sigmoid"', "", GAIN),
    edit(
        "gain_only_linear",
        "calculate_gain",
        '["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]',
        '["linear"]',
        GAIN,
    ),
    edit("gain_selu_is_one", "calculate_gain", "return 3.0 / 4", "return 1.0", GAIN),
    edit(
        "gain_unknown_is_one",
        "calculate_gain",
        'raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")',
        "return 1.0",
        GAIN,
    ),
    # --- fan_in_and_fan_out
    edit(
        "fan_swapped",
        "fan_in_and_fan_out",
        "return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field",
        "return tensor.shape[0] * receptive_field, tensor.shape[1] * receptive_field",
        FAN,
    ),
    edit(
        "fan_without_receptive_field",
        "fan_in_and_fan_out",
        "return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field",
        "return tensor.shape[1], tensor.shape[0]",
        FAN,
    ),
    edit(
        "fan_first_kernel_dimension_only",
        "fan_in_and_fan_out",
        "receptive_field = math.prod(tensor.shape[2:])",
        "receptive_field = tensor.shape[2] if tensor.dim() > 2 else 1",
        FAN,
    ),
    edit(
        "fan_no_dimension_check",
        "fan_in_and_fan_out",
        "    if tensor.dim() < 2:\n"
        '        raise ValueError("fan-in and fan-out need a tensor with at least 2 dimensions")\n',
        "",
        FAN,
    ),
    edit(
        "fan_as_tensors",
        "fan_in_and_fan_out",
        "receptive_field = math.prod(tensor.shape[2:])",
        "receptive_field = torch.tensor(tensor.shape[2:]).prod()",
        FAN,
    ),
    # --- kaiming_normal_
    edit(
        "kn_variance_as_std",
        "kaiming_normal",
        "std = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "std = calculate_gain(nonlinearity, a) ** 2 / fan",
        KN,
    ),
    edit("kn_mode_ignored", "kaiming_normal", 'fan = fan_in if mode == "fan_in" else fan_out', "fan = fan_in", KN),
    edit(
        "kn_modes_swapped",
        "kaiming_normal",
        'fan = fan_in if mode == "fan_in" else fan_out',
        'fan = fan_out if mode == "fan_in" else fan_in',
        KN,
    ),
    edit(
        "kn_no_gain",
        "kaiming_normal",
        "std = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "std = 1 / math.sqrt(fan)",
        KN,
    ),
    edit(
        "kn_gain_squared",
        "kaiming_normal",
        "std = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "std = calculate_gain(nonlinearity, a) ** 2 / math.sqrt(fan)",
        KN,
    ),
    edit(
        "kn_relu_gain_always",
        "kaiming_normal",
        "std = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "std = math.sqrt(2 / fan)",
        KN,
    ),
    edit("kn_slope_ignored", "kaiming_normal", "calculate_gain(nonlinearity, a)", "calculate_gain(nonlinearity)", KN),
    edit(
        "kn_uniform_draws",
        "kaiming_normal",
        "return tensor.normal_(0.0, std)",
        "return tensor.uniform_(-math.sqrt(3) * std, math.sqrt(3) * std)",
        KN,
    ),
    edit(
        "kn_new_tensor",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return torch.randn(tensor.shape, dtype=tensor.dtype, device=tensor.device) * std",
        KN,
    ),
    edit(
        "kn_without_no_grad",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return tensor.normal_(0.0, std)",
        KN,
    ),
    edit(
        "kn_fans_without_receptive_field",
        "kaiming_normal",
        "fan_in, fan_out = fan_in_and_fan_out(tensor)",
        "fan_in, fan_out = tensor.shape[1], tensor.shape[0]",
        KN,
    ),
    edit(
        "kn_no_mode_check",
        "kaiming_normal",
        '    if mode not in ("fan_in", "fan_out"):\n'
        "        raise ValueError(f\"mode must be 'fan_in' or 'fan_out', got {mode!r}\")\n",
        "",
        KN,
    ),
    edit("kn_returns_none", "kaiming_normal", "return tensor.normal_(0.0, std)", "tensor.normal_(0.0, std)", KN),
    # --- kaiming_uniform_
    edit(
        "ku_bound_is_std",
        "kaiming_uniform",
        "bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "bound = calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        KU,
    ),
    edit(
        "ku_sqrt6_for_every_gain",
        "kaiming_uniform",
        "bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "bound = math.sqrt(6.0 / fan)",
        KU,
    ),
    edit(
        "ku_fan_not_square_rooted",
        "kaiming_uniform",
        "bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)",
        "bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / fan",
        KU,
    ),
    edit(
        "ku_half_interval",
        "kaiming_uniform",
        "return tensor.uniform_(-bound, bound)",
        "return tensor.uniform_(0, bound)",
        KU,
    ),
    edit(
        "ku_normal_draws",
        "kaiming_uniform",
        "return tensor.uniform_(-bound, bound)",
        "return tensor.normal_(0.0, bound / math.sqrt(3.0))",
        KU,
    ),
    edit("ku_default_fan_out", "kaiming_uniform", 'mode: str = "fan_in"', 'mode: str = "fan_out"', KU),
    edit(
        "ku_modes_swapped",
        "kaiming_uniform",
        'fan = fan_in if mode == "fan_in" else fan_out',
        'fan = fan_out if mode == "fan_in" else fan_in',
        KU,
    ),
    # --- xavier_normal_
    edit(
        "xn_no_factor_two",
        "xavier_normal",
        "std = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        "std = gain * math.sqrt(1.0 / (fan_in + fan_out))",
        XN,
    ),
    edit(
        "xn_fan_in_only",
        "xavier_normal",
        "std = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        "std = gain * math.sqrt(1.0 / fan_in)",
        XN,
    ),
    edit(
        "xn_variance_as_std",
        "xavier_normal",
        "std = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        "std = gain**2 * 2.0 / (fan_in + fan_out)",
        XN,
    ),
    edit(
        "xn_gain_ignored",
        "xavier_normal",
        "std = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        "std = math.sqrt(2.0 / (fan_in + fan_out))",
        XN,
    ),
    edit(
        "xn_gain_inside_sqrt",
        "xavier_normal",
        "std = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        "std = math.sqrt(2.0 * gain / (fan_in + fan_out))",
        XN,
    ),
    edit(
        "xn_fans_without_receptive_field",
        "xavier_normal",
        "fan_in, fan_out = fan_in_and_fan_out(tensor)",
        "fan_in, fan_out = tensor.shape[1], tensor.shape[0]",
        XN,
    ),
    # --- xavier_uniform_
    edit(
        "xu_bound_is_std",
        "xavier_uniform",
        "bound = gain * math.sqrt(6.0 / (fan_in + fan_out))",
        "bound = gain * math.sqrt(2.0 / (fan_in + fan_out))",
        XU,
    ),
    edit(
        "xu_gain_ignored",
        "xavier_uniform",
        "bound = gain * math.sqrt(6.0 / (fan_in + fan_out))",
        "bound = math.sqrt(6.0 / (fan_in + fan_out))",
        XU,
    ),
    edit(
        "xu_three_instead_of_six",
        "xavier_uniform",
        "bound = gain * math.sqrt(6.0 / (fan_in + fan_out))",
        "bound = gain * math.sqrt(3.0 / (fan_in + fan_out))",
        XU,
    ),
    edit(
        "xu_normal_draws",
        "xavier_uniform",
        "return tensor.uniform_(-bound, bound)",
        "return tensor.normal_(0.0, bound / math.sqrt(3.0))",
        XU,
    ),
    # --- clip_grad_norm_
    Wrong(
        "clip_each_parameter_separately",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    norms = []
    for p in parameters:
        if p.grad is None:
            continue
        norm = torch.linalg.vector_norm(p.grad, norm_type)
        norms.append(norm)
        if norm > max_norm:
            p.grad.mul_(max_norm / (norm + 1e-6))
    if not norms:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)
""",
        CLIP,
    ),
    edit(
        "clip_always_rescales",
        "clip_grad_norm",
        "scale = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)",
        "scale = max_norm / (total_norm + 1e-6)",
        CLIP,
    ),
    edit(
        "clip_returns_norm_after_clipping",
        "clip_grad_norm",
        "    return total_norm",
        "    return torch.clamp(total_norm, max=max_norm)",
        CLIP,
    ),
    Wrong(
        "clip_generator_read_twice",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    norms = torch.stack([torch.linalg.vector_norm(g, norm_type) for g in grads])
    total_norm = torch.linalg.vector_norm(norms, norm_type)
    scale = min(1.0, float(max_norm / (total_norm + 1e-6)))
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.mul_(scale)
    return total_norm
""",
        CLIP,
    ),
    edit(
        "clip_norm_type_ignored",
        "clip_grad_norm",
        "    norm_type = float(norm_type)\n",
        "    norm_type = 2.0\n",
        CLIP,
    ),
    edit(
        "clip_sum_of_norms",
        "clip_grad_norm",
        "total_norm = torch.linalg.vector_norm(norms, norm_type)",
        "total_norm = norms.sum()",
        CLIP,
    ),
    edit(
        "clip_grad_none_not_skipped",
        "clip_grad_norm",
        "grads = [p.grad.detach() for p in parameters if p.grad is not None]",
        "grads = [p.grad.detach() for p in parameters]",
        CLIP,
    ),
    edit(
        "clip_rebinds_local_name",
        "clip_grad_norm",
        "        g.mul_(scale.to(g.device, g.dtype))",
        "        g = g * scale",
        CLIP,
    ),
    edit(
        "clip_single_tensor_not_wrapped",
        "clip_grad_norm",
        "    if isinstance(parameters, torch.Tensor):\n        parameters = [parameters]\n",
        "",
        CLIP,
    ),
    edit(
        "clip_squared_norm",
        "clip_grad_norm",
        "total_norm = torch.linalg.vector_norm(norms, norm_type)",
        "total_norm = (norms**2).sum()",
        CLIP,
    ),
    edit("clip_returns_float", "clip_grad_norm", "    return total_norm", "    return total_norm.item()", CLIP),
    # --- activation_variances
    edit(
        "av_after_the_nonlinearity",
        "activation_variances",
        "if isinstance(layer, nn.Linear):",
        "if isinstance(layer, (nn.ReLU, nn.Tanh)) or (layer is model[-1] and isinstance(layer, nn.Linear)):",
        VAR,
    ),
    edit("av_standard_deviation", "activation_variances", "x.var().item()", "x.std().item()", VAR),
    edit("av_per_feature_variance", "activation_variances", "x.var().item()", "x.var(dim=0).mean().item()", VAR),
    edit("av_second_moment", "activation_variances", "x.var().item()", "x.pow(2).mean().item()", VAR),
    edit("av_every_layer", "activation_variances", "            if isinstance(layer, nn.Linear):\n    ", "", VAR),
    edit("av_tensors_not_floats", "activation_variances", "x.var().item()", "x.var()", VAR),
    Wrong(
        "av_input_of_each_layer",
        "activation_variances",
        """
def activation_variances(model, x):
    variances = []
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                variances.append(x.var().item())
            x = layer(x)
    return variances
""",
        VAR,
    ),
    Wrong(
        "av_hooks_left_behind",
        "activation_variances",
        """
RECORDED = []


def activation_variances(model, x):
    for layer in model:
        if isinstance(layer, nn.Linear):
            layer.register_forward_hook(lambda module, inputs, output: RECORDED.append(output.var().item()))
    RECORDED.clear()
    with torch.no_grad():
        model(x)
    return list(RECORDED)
""",
        VAR,
    ),
    # --- questions
    edit(
        "q1_fan_in",
        "questions",
        "q1_answer = math.sqrt(2 / (32 * 3 * 3))",
        "q1_answer = math.sqrt(2 / (16 * 3 * 3))",
        ("test_q1",),
    ),
    edit(
        "q1_variance",
        "questions",
        "q1_answer = math.sqrt(2 / (32 * 3 * 3))",
        "q1_answer = 2 / (32 * 3 * 3)",
        ("test_q1",),
    ),
    edit("q1_as_text", "questions", Q1_REFERENCE, 'q1_answer = "0.0833"', ("test_q1",)),
    edit("q2_same_variance", "questions", 'q2_answer = "b"', 'q2_answer = "a"', ("test_q2",)),
    edit("q3_per_parameter", "questions", 'q3_answer = "b"', 'q3_answer = "a"', ("test_q3",)),
]

ALTERNATIVES = [
    Wrong(
        "gain_table_lookup",
        "calculate_gain",
        """
GAINS = {"linear": 1, "sigmoid": 1, "tanh": 5 / 3, "relu": 2**0.5, "selu": 0.75}


def calculate_gain(nonlinearity, param=None):
    if nonlinearity.startswith("conv") and nonlinearity[-2:] in ("1d", "2d", "3d"):
        return 1
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return (2 / (1 + slope * slope)) ** 0.5
    if nonlinearity not in GAINS:
        raise ValueError("Unsupported nonlinearity " + nonlinearity)
    return GAINS[nonlinearity]
""",
        (),
    ),
    Wrong(
        "fan_from_numel",
        "fan_in_and_fan_out",
        """
def fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("need at least 2 dimensions")
    return tensor.numel() // tensor.size(0), tensor.numel() // tensor.size(1)
""",
        (),
    ),
    Wrong(
        "kn_copy_from_randn",
        "kaiming_normal",
        """
def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    if mode not in {"fan_in", "fan_out"}:
        raise ValueError("Mode " + str(mode) + " not supported")
    fan = dict(zip(("fan_in", "fan_out"), fan_in_and_fan_out(tensor)))[mode]
    std = calculate_gain(nonlinearity, a) * fan**-0.5
    with torch.no_grad():
        tensor.copy_(std * torch.randn(tensor.shape, dtype=tensor.dtype, device=tensor.device))
    return tensor
""",
        (),
    ),
    Wrong(
        "kn_nn_init_normal",
        "kaiming_normal",
        """
def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        fan = fan_in
    elif mode == "fan_out":
        fan = fan_out
    else:
        raise ValueError(mode)
    return nn.init.normal_(tensor, mean=0.0, std=calculate_gain(nonlinearity, a) / math.sqrt(fan))
""",
        (),
    ),
    Wrong(
        "ku_from_rand",
        "kaiming_uniform",
        """
def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu"):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError("bad mode")
    fans = fan_in_and_fan_out(tensor)
    bound = (3 / fans[mode == "fan_out"]) ** 0.5 * calculate_gain(nonlinearity, a)
    noise = torch.rand(tensor.shape, dtype=tensor.dtype, device=tensor.device)
    tensor.data = (2 * noise - 1) * bound
    return tensor
""",
        (),
    ),
    Wrong(
        "xn_numpy_draws",
        "xavier_normal",
        """
import numpy as np


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    draws = np.random.normal(0.0, gain * np.sqrt(2 / (fan_in + fan_out)), size=tuple(tensor.shape))
    with torch.no_grad():
        tensor.copy_(torch.as_tensor(draws, dtype=tensor.dtype, device=tensor.device))
    return tensor
""",
        (),
    ),
    Wrong(
        "xu_built_on_xavier_normal_std",
        "xavier_uniform",
        """
def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * (2.0 / float(fan_in + fan_out)) ** 0.5
    a = 3.0**0.5 * std
    with torch.no_grad():
        tensor.uniform_(-a, a)
    return tensor
""",
        (),
    ),
    Wrong(
        "clip_concatenated_vector_no_eps",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    params = [parameters] if torch.is_tensor(parameters) else list(parameters)
    params = [p for p in params if p.grad is not None]
    if len(params) == 0:
        return torch.tensor(0.0)
    flat = torch.cat([p.grad.detach().flatten() for p in params])
    total = flat.abs().max() if norm_type == float("inf") else flat.norm(p=norm_type)
    if total > max_norm:
        for p in params:
            p.grad = p.grad * (max_norm / total)
    return total
""",
        (),
    ),
    Wrong(
        "av_forward_hooks_removed",
        "activation_variances",
        """
def activation_variances(model, x):
    variances, handles = [], []
    for module in model.modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(lambda m, i, out: variances.append(float(out.var()))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return variances
""",
        (),
    ),
    Wrong(
        "av_biased_variance",
        "activation_variances",
        """
def activation_variances(model, x):
    out, result = x, []
    for layer in model.children():
        out = layer(out)
        if type(layer) is nn.Linear:
            result.append(out.detach().var(unbiased=False).item())
    return result
""",
        (),
    ),
    Wrong(
        "questions_rounded",
        "questions",
        'q1_answer = 0.0833\nq2_answer = "b"\nq3_answer = "b"\n',
        (),
    ),
]
