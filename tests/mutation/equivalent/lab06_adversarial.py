"""Surviving mutants of lab06_adversarial's reference answers that are equivalent to it, and why."""

EQUIVALENT = {
    "fgsm:6:12 `x.clone().detach()` -> `x.clone()`": (
        "x.clone().requires_grad_(True) is a fine start: if x requires grad, the clone already does and stays "
        "in x's graph, but torch.autograd.grad(loss, x_adv) differentiates with respect to the clone only and "
        "never touches x.grad, and the result is built from x_adv.detach()"
    ),
    "fgsm:6:12 `x.clone()` -> `x`": (
        "x.detach() is a new tensor sharing x's storage; requires_grad_(True) on it leaves x alone and "
        "nothing writes to it, so x is unchanged"
    ),
}
