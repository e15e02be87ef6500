"""Surviving mutants of lab06_adversarial's reference answers that are equivalent to it, and why."""

RANDOM_START_SIGN = (
    "x - u with u ~ U(-eps, eps) has the same distribution as x + u: the start is uniform in the eps-ball either "
    "way, and the steps continue from whatever start was drawn"
)

EQUIVALENT = {
    "fgsm:13:12 `x.clone().detach()` -> `x.clone()`": (
        "x.clone().requires_grad_(True) is a fine start: if x requires grad, the clone already does and stays "
        "in x's graph, but torch.autograd.grad(loss, x_adv) differentiates with respect to the clone only and "
        "never touches x.grad, and the result is built from x_adv.detach()"
    ),
    "fgsm:13:12 `x.clone()` -> `x`": (
        "x.detach() is a new tensor sharing x's storage; requires_grad_(True) on it leaves x alone and "
        "nothing writes to it, so x is unchanged"
    ),
    "pgd:19:17 `x_adv + torch.empty_like(x).uniform_(-eps, eps)` -> "
    "`x_adv - torch.empty_like(x).uniform_(-eps, eps)`": (RANDOM_START_SIGN),
    "mim:20:17 `x_adv + torch.empty_like(x).uniform_(-eps, eps)` -> "
    "`x_adv - torch.empty_like(x).uniform_(-eps, eps)`": (RANDOM_START_SIGN),
    "mim:26:18 `grad.abs().flatten(start_dim=1).sum(dim=1)` -> `grad.abs().flatten(start_dim=1).mean(dim=1)`": (
        "the mean of |grad| is the L1 norm divided by the number of coordinates, the same for every example, so "
        "the velocity is scaled by that constant and its sign, the only thing a step uses, is unchanged"
    ),
    "mim:27:45 `l1_norm.clamp_min(1e-12)` -> `l1_norm`": (
        "only an all-zero gradient divides by zero; 0 / 0 makes that example's velocity NaN, torch.sign(NaN) is 0, "
        "so the example stays where it is, as the guarded version does, and an example that never moves keeps its "
        "zero gradient at every later step"
    ),
    "mim:27:63 `1e-12` -> `2e-12`": "any tiny guard against dividing by zero works: a non-zero L1 norm is far larger",
    "mim:27:63 `1e-12` -> `5e-13`": "any tiny guard against dividing by zero works: a non-zero L1 norm is far larger",
    "finite_difference_gradient:6:11 `torch.zeros_like(flat_x)` -> `torch.ones_like(flat_x)`": (
        "every entry of the gradient tensor is overwritten by its difference quotient, so its initial values never "
        "matter"
    ),
    "adversarial_training_step:16:8 `with torch.no_grad(): attack_labels = model(x).argmax(dim=1)` -> "
    "`attack_labels = model(x).argmax(dim=1)`": (
        "argmax is not differentiable: the labels carry no graph either way, and the graph of that forward pass is "
        "freed unused; no_grad only saves memory"
    ),
    "adversarial_training_step:20:12 `pgd(model, x, attack_labels, eps, alpha, steps, random_st...` -> "
    "`pgd(model, x, attack_labels, eps, alpha, steps)`": (
        "random_start=True is pgd's default, so leaving it out asks for the same random start"
    ),
}
