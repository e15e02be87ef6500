"""lab02_init: realistic mistakes (each caught by the named test cell) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_editor

LAB = "lab02_init"

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "calculate_gain": (),  # a lookup table without a test cell: the test of kaiming_normal, which USES it, checks it
    "fan_in_and_fan_out": ("test_fan_in_and_fan_out",),
    "kaiming_normal": ("test_kaiming_normal",),
    "kaiming_uniform": ("test_kaiming_uniform",),
    "xavier_normal": ("test_xavier_normal",),
    "xavier_uniform": ("test_xavier_uniform",),
    "clip_grad_norm": ("test_clip_grad_norm",),
    "activation_variances": ("test_activation_variances",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
USES = {  # the reference initialisers compute their standard deviation with the lab's own helpers
    "kaiming_normal": ("calculate_gain", "fan_in_and_fan_out"),
    "kaiming_uniform": ("calculate_gain", "fan_in_and_fan_out"),
    "xavier_normal": ("fan_in_and_fan_out",),
    "xavier_uniform": ("fan_in_and_fan_out",),
}

edit = reference_editor(LAB)

GAIN, FAN = ("test_kaiming_normal",), ("test_fan_in_and_fan_out",)
Q1, Q2, Q3, Q4, Q5 = ("test_q1",), ("test_q2",), ("test_q3",), ("test_q4",), ("test_q5",)
Q1_BOUND = "math.sqrt(3) * math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(24 * 5 * 5)"
Q2_RATIO = "(1.2**2 / 2) ** 20"
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
    Wrong(
        "ku_data_swap_from_rand",
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
        KU,
    ),
    Wrong(
        "clip_rebinds_grad_concatenated_vector",
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
        CLIP,
    ),
    # --- calculate_gain: the contract's corners
    edit(
        "gain_param_or_default",
        "calculate_gain",
        "slope = 0.01 if param is None else param",
        "slope = param or 0.01",
        GAIN,
    ),
    edit(
        "gain_case_insensitive",
        "calculate_gain",
        "    linear = [",
        "    nonlinearity = nonlinearity.lower()\n    linear = [",
        GAIN,
    ),
    edit(
        "gain_returns_tensor",
        "calculate_gain",
        "return math.sqrt(2.0)\n",
        "return torch.sqrt(torch.tensor(2.0))\n",
        GAIN,
    ),
    Wrong(
        "gain_calls_torch",
        "calculate_gain",
        """
def calculate_gain(nonlinearity, param=None):
    return nn.init.calculate_gain(nonlinearity, param)
""",
        GAIN,
    ),
    edit(
        "gain_param_refused_for_other_names",
        "calculate_gain",
        "    linear = [",
        '    if param is not None and nonlinearity != "leaky_relu":\n'
        '        raise ValueError(f"{nonlinearity} takes no parameter")\n'
        "    linear = [",
        GAIN,
    ),
    # --- fan_in_and_fan_out: Python ints in a tuple, written by hand
    Wrong(
        "fan_numpy_prod",
        "fan_in_and_fan_out",
        """
import numpy as np


def fan_in_and_fan_out(tensor):
    if tensor.dim() < 2:
        raise ValueError("fan-in and fan-out need at least 2 dimensions")
    receptive_field = np.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field
""",
        FAN,
    ),
    edit(
        "fan_as_list",
        "fan_in_and_fan_out",
        "return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field",
        "return [tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field]",
        FAN,
    ),
    Wrong(
        "fan_true_division_from_numel",
        "fan_in_and_fan_out",
        """
def fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError("need at least 2 dimensions")
    return tensor.numel() / tensor.shape[0], tensor.numel() / tensor.shape[1]
""",
        FAN,
    ),
    Wrong(
        "fan_calls_torch",
        "fan_in_and_fan_out",
        """
def fan_in_and_fan_out(tensor):
    return nn.init._calculate_fan_in_and_fan_out(tensor)
""",
        FAN,
    ),
    # --- initialisers: in place, in the tensor's own memory, any layout, written by hand
    edit(
        "kn_data_swap_cpu_draws",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.data = torch.randn(tensor.shape) * std\n    return tensor",
        KN,
    ),
    edit(
        "kn_data_swap_same_dtype_and_device",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.data = torch.randn_like(tensor) * std\n    return tensor",
        KN,
    ),
    edit(
        "kn_flat_view",
        "kaiming_normal",
        "        return tensor.normal_(0.0, std)",
        "        tensor.view(-1).normal_(0.0, std)\n    return tensor",
        KN,
    ),
    edit(
        "kn_reshape_fills_a_copy",
        "kaiming_normal",
        "        return tensor.normal_(0.0, std)",
        "        tensor.reshape(-1).normal_(0.0, std)\n    return tensor",
        KN,
    ),
    edit(
        "kn_calls_torch",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return nn.init.kaiming_normal_(tensor, a=a, mode=mode, nonlinearity=nonlinearity)",
        KN,
    ),
    edit(
        "kn_default_nonlinearity_relu",
        "kaiming_normal",
        'nonlinearity: str = "leaky_relu"',
        'nonlinearity: str = "relu"',
        KN,
    ),
    edit(
        "kn_requires_grad_forced_on",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.requires_grad_(False)\n    tensor.normal_(0.0, std)\n    return tensor.requires_grad_(True)",
        KN,
    ),
    edit(
        "ku_calls_torch",
        "kaiming_uniform",
        "    with torch.no_grad():\n        return tensor.uniform_(-bound, bound)",
        "    return nn.init.kaiming_uniform_(tensor, a, mode, nonlinearity)",
        KU,
    ),
    edit(
        "ku_contiguous_copy",
        "kaiming_uniform",
        "        return tensor.uniform_(-bound, bound)",
        "        tensor.contiguous().uniform_(-bound, bound)\n    return tensor",
        KU,
    ),
    edit("ku_slope_ignored", "kaiming_uniform", "calculate_gain(nonlinearity, a)", "calculate_gain(nonlinearity)", KU),
    edit(
        "xn_data_swap_cpu_draws",
        "xavier_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.data = torch.randn(tensor.shape) * std\n    return tensor",
        XN,
    ),
    edit(
        "xn_calls_torch",
        "xavier_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return nn.init.xavier_normal_(tensor, gain)",
        XN,
    ),
    edit(
        "xn_without_no_grad",
        "xavier_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return tensor.normal_(0.0, std)",
        XN,
    ),
    edit(
        "xn_new_tensor",
        "xavier_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    return torch.randn_like(tensor) * std",
        XN,
    ),
    edit(
        "xu_flat_view",
        "xavier_uniform",
        "        return tensor.uniform_(-bound, bound)",
        "        tensor.view(-1).uniform_(-bound, bound)\n    return tensor",
        XU,
    ),
    edit(
        "xu_calls_torch",
        "xavier_uniform",
        "    with torch.no_grad():\n        return tensor.uniform_(-bound, bound)",
        "    return nn.init.xavier_uniform_(tensor, gain=gain)",
        XU,
    ),
    edit(
        "xu_returns_none",
        "xavier_uniform",
        "return tensor.uniform_(-bound, bound)",
        "tensor.uniform_(-bound, bound)",
        XU,
    ),
    # --- clip_grad_norm_: the same .grad tensors, the norm's dtype, device and history, written by hand
    Wrong(
        "clip_float32_accumulator",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    total = torch.zeros(())
    with torch.no_grad():
        if norm_type == math.inf:
            for p in params:
                total = torch.maximum(total, p.grad.abs().max())
        else:
            for p in params:
                total += p.grad.abs().pow(norm_type).sum()
            total = total ** (1.0 / norm_type)
        factor = max_norm / (total + 1e-6)
        if factor < 1:
            for p in params:
                p.grad.mul_(factor)
    return total
""",
        CLIP,
    ),
    Wrong(
        "clip_norm_accumulated_on_the_cpu",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    with torch.no_grad():
        total = torch.zeros((), dtype=grads[0].dtype)
        if norm_type == math.inf:
            for g in grads:
                total = torch.maximum(total, g.abs().max())
        else:
            for g in grads:
                total += g.abs().pow(norm_type).sum()
            total = total ** (1.0 / norm_type)
        factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for g in grads:
            g.mul_(factor)
    return total
""",
        CLIP,
    ),
    Wrong(
        "clip_flat_views_of_gradients",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    params = [p for p in params if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    with torch.no_grad():
        flat = torch.cat([p.grad.view(-1) for p in params])
        total = torch.linalg.vector_norm(flat, norm_type)
        scale = torch.clamp(max_norm / (total + 1e-6), max=1.0)
        for p in params:
            p.grad.mul_(scale)
    return total
""",
        CLIP,
    ),
    Wrong(
        "clip_calls_torch",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    return torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=norm_type)
""",
        CLIP,
    ),
    edit("clip_no_gradients_returns_float", "clip_grad_norm", "return torch.tensor(0.0)", "return 0.0", CLIP),
    Wrong(
        "clip_scales_the_parameters",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = [p for p in parameters if p.grad is not None]
    if not parameters:
        return torch.tensor(0.0)
    with torch.no_grad():
        norms = torch.stack([torch.linalg.vector_norm(p.grad, norm_type) for p in parameters])
        total_norm = torch.linalg.vector_norm(norms, norm_type)
        clip_coef = max_norm / (total_norm + 1e-6)
        if clip_coef < 1:
            for p in parameters:
                p.data.mul_(clip_coef)
    return total_norm
""",
        CLIP,
    ),
    Wrong(
        "clip_grad_data_swap",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = [p for p in parameters if p.grad is not None]
    if not parameters:
        return torch.tensor(0.0)
    with torch.no_grad():
        norms = torch.stack([torch.linalg.vector_norm(p.grad, norm_type) for p in parameters])
        total_norm = torch.linalg.vector_norm(norms, norm_type)
        clip_coef = torch.clamp(max_norm / (total_norm + 1e-6), max=1.0)
        for p in parameters:
            p.grad.data = p.grad.data * clip_coef
    return total_norm
""",
        CLIP,
    ),
    # --- activation_variances: the model's own mode, nothing left behind, Python floats
    edit(
        "av_eval_mode_inside",
        "activation_variances",
        "    variances = []\n",
        "    variances = []\n    model.eval()\n",
        VAR,
    ),
    edit(
        "av_eval_then_train",
        "activation_variances",
        "    return variances",
        "    model.train()\n    return variances",
        VAR,
    ),
    Wrong(
        "av_global_hook_left",
        "activation_variances",
        """
def activation_variances(model, x):
    variances = []

    def record(module, inputs, output):
        if isinstance(module, nn.Linear):
            variances.append(output.var().item())

    torch.nn.modules.module.register_module_forward_hook(record)
    with torch.no_grad():
        model(x)
    return list(variances)
""",
        VAR,
    ),
    Wrong(
        "av_results_kept_between_calls",
        "activation_variances",
        """
VARIANCES = []


def activation_variances(model, x):
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, nn.Linear):
                VARIANCES.append(x.var().item())
    return VARIANCES
""",
        VAR,
    ),
    edit("av_numpy_float32", "activation_variances", "x.var().item()", "x.numpy().var(ddof=1)", VAR),
    edit(
        "av_cast_to_float32",
        "activation_variances",
        "    variances = []\n",
        "    variances = []\n    x = x.float()\n",
        VAR,
    ),
    # --- questions
    # Q1: b = sqrt(3) * sqrt(2 / (1 + 0.2^2)) / sqrt(24 * 5 * 5) = 0.0981
    edit("q1_std_not_bound", "questions", Q1_BOUND, "math.sqrt(2 / (1 + 0.2**2)) / math.sqrt(24 * 5 * 5)", Q1),
    edit("q1_fan_out", "questions", Q1_BOUND, Q1_BOUND.replace("24 * 5 * 5", "48 * 5 * 5"), Q1),
    edit("q1_no_receptive_field", "questions", Q1_BOUND, Q1_BOUND.replace("24 * 5 * 5", "24"), Q1),
    edit("q1_slope_not_squared", "questions", Q1_BOUND, Q1_BOUND.replace("0.2**2", "0.2"), Q1),
    edit("q1_gain_of_relu", "questions", Q1_BOUND, "math.sqrt(3) * math.sqrt(2) / math.sqrt(24 * 5 * 5)", Q1),
    edit("q1_variance", "questions", Q1_BOUND, "3 * (2 / (1 + 0.2**2)) / (24 * 5 * 5)", Q1),
    edit("q1_as_text", "questions", "q1_answer = " + Q1_BOUND, 'q1_answer = "0.0981"', Q1),
    # Q2: (gain^2 / 2)^20 = 0.72^20 = 0.00140
    edit("q2_relu_halving_forgotten", "questions", Q2_RATIO, "(1.2**2) ** 20", Q2),
    edit("q2_gain_not_squared", "questions", Q2_RATIO, "(1.2 / 2) ** 20", Q2),
    edit("q2_off_by_one_layer", "questions", Q2_RATIO, "(1.2**2 / 2) ** 19", Q2),
    edit("q2_ratio_inverted", "questions", Q2_RATIO, "(2 / 1.2**2) ** 20", Q2),
    edit("q2_halving_only", "questions", Q2_RATIO, "0.5**20", Q2),
    # Q3: the global norm is 5, so every gradient is scaled by 2 / 5
    edit("q3_each_parameter_alone", "questions", "q3_answer = -0.8", "q3_answer = -2 * 2 / 3", Q3),
    edit("q3_not_clipped", "questions", "q3_answer = -0.8", "q3_answer = -2.0", Q3),
    edit("q3_sign_lost", "questions", "q3_answer = -0.8", "q3_answer = 0.8", Q3),
    edit("q3_squared_norm", "questions", "q3_answer = -0.8", "q3_answer = -2 * 2 / 25", Q3),
    # Q4: the learning rate 0.1 times max_norm 1
    edit("q4_max_norm_only", "questions", "q4_answer = 0.1", "q4_answer = 1.0", Q4),
    edit("q4_max_norm_over_rate", "questions", "q4_answer = 0.1", "q4_answer = 10.0", Q4),
    edit("q4_rate_squared", "questions", "q4_answer = 0.1", "q4_answer = 0.01", Q4),
    edit("q5_gain_of_tanh", "questions", 'q5_answer = "c"', 'q5_answer = "a"', Q5),
    edit("q5_odd_function", "questions", 'q5_answer = "c"', 'q5_answer = "b"', Q5),
    edit("q5_halves_like_relu", "questions", 'q5_answer = "c"', 'q5_answer = "d"', Q5),
    edit("q5_as_list", "questions", 'q5_answer = "c"', 'q5_answer = ["c"]', Q5),
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
        "gain_pytorch_source",
        "calculate_gain",
        """
def calculate_gain(nonlinearity, param=None):
    # adapted from torch.nn.init.calculate_gain
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    elif nonlinearity == "selu":
        return 3.0 / 4
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
""",
        (),
    ),
    Wrong(
        "fan_pytorch_1x_source",
        "fan_in_and_fan_out",
        """
def fan_in_and_fan_out(tensor):
    # adapted from torch.nn.init._calculate_fan_in_and_fan_out (PyTorch 1.x)
    dimensions = tensor.dim()
    if dimensions < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    num_input_fmaps = tensor.size(1)
    num_output_fmaps = tensor.size(0)
    receptive_field_size = 1
    if tensor.dim() > 2:
        receptive_field_size = tensor[0][0].numel()
    fan_in = num_input_fmaps * receptive_field_size
    fan_out = num_output_fmaps * receptive_field_size
    return fan_in, fan_out
""",
        (),
    ),
    edit(
        "kn_fill_through_detach",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.detach().normal_(0.0, std)\n    return tensor",
        (),
    ),
    edit(
        "kn_fill_through_data",
        "kaiming_normal",
        "    with torch.no_grad():\n        return tensor.normal_(0.0, std)",
        "    tensor.data.normal_(0, std)\n    return tensor",
        (),
    ),
    edit(
        "kn_cpu_float32_draws_copied",
        "kaiming_normal",
        "        return tensor.normal_(0.0, std)",
        "        tensor.copy_(torch.randn(tensor.shape) * std)\n    return tensor",
        (),
    ),
    edit(
        "ku_rand_like_copied",
        "kaiming_uniform",
        "        return tensor.uniform_(-bound, bound)",
        "        tensor.copy_((2 * torch.rand_like(tensor) - 1) * bound)\n    return tensor",
        (),
    ),
    Wrong(
        "clip_pytorch_1_5_source",
        "clip_grad_norm",
        """
from math import inf


def clip_grad_norm_(parameters, max_norm, norm_type=2):
    # adapted from torch.nn.utils.clip_grad_norm_ (PyTorch 1.5)
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    parameters = list(filter(lambda p: p.grad is not None, parameters))
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if len(parameters) == 0:
        return torch.tensor(0.0)
    device = parameters[0].grad.device
    if norm_type == inf:
        total_norm = max(p.grad.detach().abs().max().to(device) for p in parameters)
    else:
        total_norm = torch.norm(
            torch.stack([torch.norm(p.grad.detach(), norm_type).to(device) for p in parameters]), norm_type
        )
    clip_coef = max_norm / (total_norm + 1e-6)
    if clip_coef < 1:
        for p in parameters:
            p.grad.detach().mul_(clip_coef.to(p.grad.device))
    return total_norm
""",
        (),
    ),
    Wrong(
        "clip_d2l_grad_clipping",
        "clip_grad_norm",
        """
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    # d2l's grad_clipping, generalised to any norm_type
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    params = [p for p in params if p.grad is not None]
    if not params:
        return torch.tensor(0.0)
    with torch.no_grad():
        if norm_type == math.inf:
            norm = max(p.grad.abs().max() for p in params)
        else:
            norm = sum(torch.sum(p.grad.abs() ** norm_type) for p in params) ** (1 / norm_type)
        if norm > max_norm:
            for p in params:
                p.grad[:] *= max_norm / norm
    return norm
""",
        (),
    ),
    Wrong(
        "clip_concatenated_vector_in_place_no_eps",
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
            p.grad.detach().mul_(max_norm / total)
    return total
""",
        (),
    ),
    Wrong(
        "av_activation_dict_recipe",
        "activation_variances",
        """
activation = {}


def get_activation(name):
    def hook(model, input, output):
        activation[name] = output.detach()

    return hook


def activation_variances(model, x):
    handles = []
    for name, layer in model.named_children():
        if isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(get_activation(name)))
    activation.clear()
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return [activation[name].var().item() for name, layer in model.named_children() if isinstance(layer, nn.Linear)]
""",
        (),
    ),
    Wrong(
        "questions_rounded",
        "questions",
        'q1_answer = 0.0981\nq2_answer = 0.0014\nq3_answer = -0.8\nq4_answer = 0.1\nq5_answer = "C"\n',
        (),
    ),
    Wrong(
        "questions_with_numpy_and_spaces",
        "questions",
        """
import numpy as np

q1_answer = np.sqrt(3 * 2 / 1.04 / 600)  # a numpy float
q2_answer = np.power(0.72, 20)
q3_answer = -4 / 5
q4_answer = 1 / 10
q5_answer = " c "
""",
        (),
    ),
]
