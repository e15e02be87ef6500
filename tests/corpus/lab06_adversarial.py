"""lab06_adversarial: realistic mistakes (each caught by the named test cell) and correct alternatives.

Each entry replaces one answer cell of the reference solution. The attack bodies share a
skeleton on purpose: each wrong one differs from a correct attack in one realistic way.
"""

import textwrap

from tests.submissions import WrongImplementation as Wrong

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "fgsm": ("test_fgsm",),
    "pgd": ("test_pgd",),
    "mim": ("test_mim",),
    "finite_difference_gradient": ("test_finite_difference_gradient",),
    "adversarial_training_step": ("test_adversarial_training_step",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
}
USES = {"adversarial_training_step": ("pgd",)}  # the reference training step attacks with the lab's pgd


FGSM = ("test_fgsm",)
PGD = ("test_pgd",)
MIM = ("test_mim",)
FD = ("test_finite_difference_gradient",)
STEP = ("test_adversarial_training_step",)


def indented(code: str, spaces: int) -> str:
    """``code`` re-indented by ``spaces``; its first line may have lost its indentation to fit the line."""
    first, _, rest = code.partition("\n")
    return textwrap.indent(first.strip() + "\n" + textwrap.dedent(rest), " " * spaces)


def fgsm_variant(name: str, body: str) -> Wrong:
    """An fgsm whose body after the gradient computation is ``body``."""
    body = indented(body, 4)
    code = f"""
def fgsm(model, x, y, eps, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach().requires_grad_(True)
    loss = F.cross_entropy(model(x_adv), y)
    (grad,) = torch.autograd.grad(loss, x_adv)
{body}
"""
    return Wrong(name, "fgsm", code, FGSM)


def pgd_variant(name: str, start: str, step: str) -> Wrong:
    """A pgd with the random start ``start`` and the update ``step`` (both using x_adv)."""
    start, step = indented(start, 8), indented(step, 8)
    code = f"""
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach()
    if random_start:
{start}
    sign = -1.0 if targeted else 1.0
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
{step}
    model.train(was_training)
    return x_adv.detach()
"""
    return Wrong(name, "pgd", code, PGD)


UNIFORM_START = "x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)"
PGD_STEP = """x_adv = x_adv.detach() + sign * alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)"""


def mim_variant(
    name: str, update: str, signature_extra: str = "random_start=False", loses: tuple[str, ...] = MIM
) -> Wrong:
    """A mim whose velocity update is ``update`` (from grad and velocity)."""
    update = indented(update, 8)
    code = f"""
def mim(model, x, y, eps, alpha, steps, decay=1.0, {signature_extra}, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach()
    if random_start:
        x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    sign = -1.0 if targeted else 1.0
    velocity = torch.zeros_like(x)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
{update}
        x_adv = x_adv.detach() + sign * alpha * velocity.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv.detach()
"""
    return Wrong(name, "mim", code, loses)


PER_EXAMPLE_L1 = "grad.abs().flatten(1).sum(dim=1).view(-1, *[1] * (x.dim() - 1)).clamp_min(1e-12)"


def step_variant(name: str, body: str, signature: str = "use_predicted_labels=True") -> Wrong:
    body = indented(body, 4)
    code = f"""
def adversarial_training_step(model, optimizer, x, y, eps, alpha, steps, {signature}):
{body}
"""
    return Wrong(name, "adversarial_training_step", code, STEP)


PREDICTED_LABELS = """    model.eval()
    with torch.no_grad():
        labels = model(x).argmax(dim=1) if use_predicted_labels else y"""

REFERENCE_ANSWERS = {
    "q1_answer": "8 / 255 * (3 * 32 * 32) ** 0.5",
    "q2_answer": "[5 * 20 + 5, 5 * 20]",
    "q3_answer": "[2 * 28 * 28, 28 * 28 + 1]",
    "q4_answer": '"d"',
    "q5_answer": '"c"',
}


def question_variant(name: str, answer: str, loses: tuple[str, ...]) -> Wrong:
    """The reference answers with the one assignment ``answer`` (``"qN_answer = ..."``) in place of its own."""
    changed, _, value = answer.partition(" = ")
    answers = {**REFERENCE_ANSWERS, changed: value}
    return Wrong(name, "questions", "".join(f"{key} = {value}\n" for key, value in answers.items()), loses)


CORPUS = [
    # --- fgsm
    fgsm_variant(
        "fgsm_no_sign",
        """    model.train(was_training)
    return (x + (-eps if targeted else eps) * grad).clamp(0, 1).detach()""",
    ),
    fgsm_variant(
        "fgsm_no_clamp",
        """    model.train(was_training)
    return (x + (-eps if targeted else eps) * grad.sign()).detach()""",
    ),
    fgsm_variant(
        "fgsm_targeted_adds",
        """    model.train(was_training)
    return (x + eps * grad.sign()).clamp(0, 1).detach()""",
    ),
    fgsm_variant(
        "fgsm_descends",
        """    model.train(was_training)
    return (x + (eps if targeted else -eps) * grad.sign()).clamp(0, 1).detach()""",
    ),
    fgsm_variant(
        "fgsm_leaves_eval_mode", """return (x + (-eps if targeted else eps) * grad.sign()).clamp(0, 1).detach()"""
    ),
    fgsm_variant(
        "fgsm_always_train_after",
        """    model.train()
    return (x + (-eps if targeted else eps) * grad.sign()).clamp(0, 1).detach()""",
    ),
    fgsm_variant(
        "fgsm_not_detached",
        """    model.train(was_training)
    return (x_adv + (-eps if targeted else eps) * grad.sign()).clamp(0, 1)""",
    ),
    Wrong(
        "fgsm_train_mode",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    x_adv = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
    return (x + (-eps if targeted else eps) * grad.sign()).clamp(0, 1).detach()
""",
        FGSM,
    ),
    Wrong(
        "fgsm_marks_caller_x",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    was_training = model.training
    model.eval()
    x.requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    model.train(was_training)
    return (x + (-eps if targeted else eps) * x.grad.sign()).clamp(0, 1).detach()
""",
        FGSM,
    ),
    Wrong(
        "fgsm_in_place",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
    model.train(was_training)
    x += (-eps if targeted else eps) * grad.sign()
    return x.clamp_(0, 1).clone()
""",
        FGSM,
    ),
    Wrong(
        "fgsm_attacks_predictions",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach().requires_grad_(True)
    logits = model(x_adv)
    labels = y if targeted else logits.argmax(dim=1)
    (grad,) = torch.autograd.grad(F.cross_entropy(logits, labels), x_adv)
    model.train(was_training)
    return (x + (-eps if targeted else eps) * grad.sign()).clamp(0, 1).detach()
""",
        FGSM,
    ),
    Wrong(
        "fgsm_double_softmax",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach().requires_grad_(True)
    probabilities = F.softmax(model(x_adv), dim=1)
    (grad,) = torch.autograd.grad(F.cross_entropy(probabilities, y), x_adv)
    model.train(was_training)
    return (x + (-eps if targeted else eps) * grad.sign()).clamp(0, 1).detach()
""",
        FGSM,
    ),
    # --- pgd
    pgd_variant(
        "pgd_no_projection", UNIFORM_START, """x_adv = (x_adv.detach() + sign * alpha * grad.sign()).clamp(0, 1)"""
    ),
    pgd_variant(
        "pgd_projects_around_iterate",
        UNIFORM_START,
        """x_new = x_adv.detach() + sign * alpha * grad.sign()
        x_adv = torch.min(torch.max(x_new, x_adv.detach() - eps), x_adv.detach() + eps).clamp(0, 1)""",
    ),
    pgd_variant(
        "pgd_no_clamp",
        UNIFORM_START,
        """x_adv = x_adv.detach() + sign * alpha * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)""",
    ),
    pgd_variant(
        "pgd_step_size_eps",
        UNIFORM_START,
        """x_adv = x_adv.detach() + sign * eps * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)""",
    ),
    pgd_variant("pgd_targeted_flipped", UNIFORM_START, PGD_STEP.replace("sign * alpha", "-sign * alpha")),
    pgd_variant("pgd_no_random_start", "pass", PGD_STEP),
    pgd_variant("pgd_gaussian_start", "x_adv = (x_adv + eps * torch.randn_like(x)).clamp(0, 1)", PGD_STEP),
    pgd_variant("pgd_one_sided_start", "x_adv = (x_adv + eps * torch.rand_like(x)).clamp(0, 1)", PGD_STEP),
    pgd_variant("pgd_sign_noise_start", "x_adv = (x_adv + eps * torch.randn_like(x).sign()).clamp(0, 1)", PGD_STEP),
    pgd_variant(
        "pgd_start_discarded", "start = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)", PGD_STEP
    ),
    Wrong(
        "pgd_gradient_at_x_only",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    was_training = model.training
    model.eval()
    x_var = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_var), y), x_var)
    x_adv = x.clone().detach()
    if random_start:
        x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv
""",
        PGD,
    ),
    Wrong(
        "pgd_one_step_too_many",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach()
    if random_start:
        x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps + 1):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = x_adv.detach() + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv
""",
        PGD,
    ),
    Wrong(
        "pgd_train_mode",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    x_adv = x.clone().detach()
    if random_start:
        x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = x_adv.detach() + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    return x_adv
""",
        PGD,
    ),
    # --- mim
    mim_variant("mim_batch_l1", "velocity = decay * velocity + grad / grad.abs().sum()"),
    mim_variant(
        "mim_l2_norm", "velocity = decay * velocity + grad / grad.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))"
    ),
    mim_variant("mim_unnormalised", "velocity = decay * velocity + grad"),
    mim_variant("mim_no_momentum", f"velocity = grad / {PER_EXAMPLE_L1}"),
    mim_variant("mim_decay_on_gradient", f"velocity = velocity + decay * grad / {PER_EXAMPLE_L1}"),
    mim_variant(
        "mim_image_shapes_only", "velocity = decay * velocity + grad / grad.abs().sum(dim=(1, 2, 3), keepdim=True)"
    ),
    mim_variant(
        "mim_random_start_by_default", f"velocity = decay * velocity + grad / {PER_EXAMPLE_L1}", "random_start=True"
    ),
    Wrong(
        "mim_steps_on_gradient_sign",
        "mim",
        f"""
def mim(model, x, y, eps, alpha, steps, decay=1.0, random_start=False, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach()
    velocity = torch.zeros_like(x)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        velocity = decay * velocity + grad / {PER_EXAMPLE_L1}
        x_adv = x_adv.detach() + (-alpha if targeted else alpha) * grad.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv
""",
        MIM,
    ),
    # --- finite_difference_gradient
    Wrong(
        "fd_central_over_h",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = h
        step = step.view_as(x)
        grad.view(-1)[i] = (float(f(x + step)) - float(f(x - step))) / h
    return grad
""",
        FD,
    ),
    Wrong(
        "fd_all_coordinates_at_once",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    return torch.full_like(x, (float(f(x + h)) - float(f(x - h))) / (2 * h))
""",
        FD,
    ),
    Wrong(
        "fd_perturbation_not_undone",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    base = float(f(x))
    grad = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(flat.numel()):
        flat[i] += h
        grad.view(-1)[i] = (float(f(x)) - base) / h
    return grad
""",
        FD,
    ),
    Wrong(
        "fd_fixed_step",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = 1e-3
        step = step.view_as(x)
        grad.view(-1)[i] = (float(f(x + step)) - float(f(x - step))) / 2e-3
    return grad
""",
        FD,
    ),
    Wrong(
        "fd_uses_autograd",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    x_var = x.clone().detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x_var), x_var)
    return grad
""",
        FD,
    ),
    Wrong(
        "fd_flattened_queries",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    flat = x.reshape(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        grad[i] = (float(f(flat + step)) - float(f(flat - step))) / (2 * h)
    return grad.view_as(x)
""",
        FD,
    ),
    Wrong(
        "fd_returns_flat",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    grad = torch.zeros(x.numel(), dtype=x.dtype, device=x.device)
    for i in range(x.numel()):
        step = torch.zeros_like(x).view(-1)
        step[i] = h
        step = step.view_as(x)
        grad[i] = (float(f(x + step)) - float(f(x - step))) / (2 * h)
    return grad
""",
        FD,
    ),
    # --- adversarial_training_step
    step_variant(
        "step_clean_loss_only",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_adversarial_loss_only",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_no_zero_grad",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_zero_grad_before_attack",
        """    optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        labels = model(x).argmax(dim=1) if use_predicted_labels else y
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        F.cross_entropy(model(x_adv), labels).backward()  # also fills the parameters' .grad
        x_adv = torch.min(torch.max(x_adv + alpha * x_adv.grad.sign(), x - eps), x + eps).clamp(0, 1)
    model.train()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv.detach()), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_ignores_use_predicted_labels",
        """x_adv = pgd(model, x, y, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_stays_in_eval_mode",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_no_random_start",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=False)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_concatenated_mean",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(torch.cat([x, x_adv])), torch.cat([y, y]))
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_returns_tensor",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss""",
    ),
    step_variant(
        "step_forgets_optimizer_step",
        f"""{PREDICTED_LABELS}
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    return loss.item()""",
    ),
    # --- inputs on a GPU, any layout, batch size 1, the graph of x (issue 13's categories)
    pgd_variant("pgd_cpu_random_start", "x_adv = (x_adv + (2 * torch.rand(x.shape) - 1) * eps).clamp(0, 1)", PGD_STEP),
    pgd_variant(
        "pgd_ball_around_random_start",
        """x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        x = x_adv.clone()""",
        PGD_STEP,
    ),
    Wrong(
        "pgd_result_tracks_x_graph",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    x_adv = x.clone()
    if random_start:
        x_adv = torch.clamp(x_adv + (torch.rand_like(x) * 2 - 1) * eps, 0, 1)
    for _ in range(steps):
        x_adv = fgsm(model, x_adv, y, alpha, targeted=targeted)
        x_adv = torch.clamp(x_adv, x - eps, x + eps).clamp(0, 1)
    return x_adv
""",
        PGD,
    ),
    Wrong(
        "mim_cpu_velocity",
        "mim",
        f"""
def mim(model, x, y, eps, alpha, steps, decay=1.0, random_start=False, targeted=False):
    was_training = model.training
    model.eval()
    x_adv = x.clone().detach()
    if random_start:
        x_adv = (x_adv + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    velocity = torch.zeros(x.shape)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        velocity = decay * velocity + grad / {PER_EXAMPLE_L1}
        x_adv = x_adv.detach() + (-alpha if targeted else alpha) * velocity.sign()
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
    model.train(was_training)
    return x_adv
""",
        MIM,
    ),
    Wrong(
        "fd_cpu_result",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    grad = torch.zeros(x.shape)
    flat = x.reshape(-1)
    for i in range(flat.numel()):
        step = torch.zeros_like(flat)
        step[i] = h
        grad.view(-1)[i] = (float(f((flat + step).view_as(x))) - float(f((flat - step).view_as(x)))) / (2 * h)
    return grad
""",
        FD,
    ),
    Wrong(
        "fd_view_on_non_contiguous",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    grad = torch.zeros_like(x)
    for i in range(x.numel()):
        step = torch.zeros_like(x)
        step.view(-1)[i] = h
        grad.view(-1)[i] = (float(f(x + step)) - float(f(x - step))) / (2 * h)
    return grad
""",
        FD,
    ),
    step_variant(
        "step_predictions_in_train_mode",
        """with torch.no_grad():
        labels = model(x).argmax(dim=1) if use_predicted_labels else y
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    step_variant(
        "step_squeezed_labels",
        """model.eval()
    with torch.no_grad():
        labels = model(x).argmax(dim=1).squeeze() if use_predicted_labels else y
    x_adv = pgd(model, x, labels, eps, alpha, steps, random_start=True)
    model.train()
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + F.cross_entropy(model(x_adv), y)
    loss.backward()
    optimizer.step()
    return loss.item()""",
    ),
    # --- questions
    question_variant("q1_l_infinity_norm", "q1_answer = 8 / 255", ("test_q1",)),
    question_variant("q1_one_channel", "q1_answer = 8 / 255 * 32", ("test_q1",)),
    question_variant("q1_l1_norm", "q1_answer = 8 / 255 * 3 * 32 * 32", ("test_q1",)),
    question_variant("q1_squared_norm", "q1_answer = (8 / 255) ** 2 * 3 * 32 * 32", ("test_q1",)),
    question_variant("q2_no_scoring_pass", "q2_answer = [100, 100]", ("test_q2",)),
    question_variant("q2_one_restart", "q2_answer = [21, 20]", ("test_q2",)),
    question_variant("q2_swapped", "q2_answer = [100, 105]", ("test_q2",)),
    question_variant("q2_total_passes", "q2_answer = 205", ("test_q2",)),
    question_variant("q3_central_for_both", "q3_answer = [1568, 1568]", ("test_q3",)),
    question_variant("q3_forward_without_f_of_x", "q3_answer = [1568, 784]", ("test_q3",)),
    question_variant("q3_one_query_per_pixel", "q3_answer = [784, 785]", ("test_q3",)),
    question_variant("q3_swapped", "q3_answer = [785, 1568]", ("test_q3",)),
    question_variant("q4_fgsm_is_enough", 'q4_answer = "a"', ("test_q4",)),
    question_variant("q4_random_start_outside_the_ball", 'q4_answer = "c"', ("test_q4",)),
    question_variant("q5_same_function", 'q5_answer = "a"', ("test_q5",)),
    question_variant("q5_any_perturbation", 'q5_answer = "b"', ("test_q5",)),
    question_variant("q5_masking", 'q5_answer = "d"', ("test_q5",)),
    # A cheat, not a mistake: answers equal to everything must still lose (the checks want a str / numbers).
    Wrong(
        "question_always_equal",
        "questions",
        "class Anything(str):\n    def __eq__(self, other):\n        return True\n\n    __hash__ = str.__hash__\n\n\n"
        "class AnyInt(int):\n    def __eq__(self, other):\n        return True\n\n    __hash__ = int.__hash__\n\n\n"
        "q1_answer = AnyInt(7)\nq2_answer = [AnyInt(7), AnyInt(7)]\nq3_answer = [AnyInt(7), AnyInt(7)]\n"
        'q4_answer = Anything("d?")\nq5_answer = Anything("c?")\n',
        ("test_q1", "test_q2", "test_q3", "test_q4", "test_q5"),
    ),
]

# Entries that cheat rather than err: the grader must flag them in problems.csv with this phrase.
FLAGGED = {"question_always_equal": "with its own __eq__"}

ALTERNATIVES = [
    # Without a guard a zero gradient gives 0/0 = NaN, but torch.sign(nan) is 0: the example stays
    # where it is and the result has no NaN, which is all the lab asks.
    mim_variant(
        "mim_unguarded_division",
        "velocity = decay * velocity + grad / grad.abs().flatten(1).sum(dim=1).view(-1, *[1] * (x.dim() - 1))",
        loses=(),
    ),
    # Adapted from torchattacks (FGSM, PGD, MIFGSM) as a student would paste them into the lab's signatures.
    Wrong(
        "fgsm_torchattacks_style",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    given_mode = model.training
    model.eval()
    images = x.clone().detach()
    labels = y.clone().detach()
    images.requires_grad = True
    outputs = model(images)
    loss = nn.CrossEntropyLoss()
    cost = -loss(outputs, labels) if targeted else loss(outputs, labels)
    grad = torch.autograd.grad(cost, images, retain_graph=False, create_graph=False)[0]
    adv_images = images + eps * grad.sign()
    adv_images = torch.clamp(adv_images, min=0, max=1).detach()
    model.train(given_mode)
    return adv_images
""",
        (),
    ),
    Wrong(
        "pgd_torchattacks_style",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    given_mode = model.training
    model.eval()
    images = x.clone().detach()
    labels = y.clone().detach()
    loss = nn.CrossEntropyLoss()
    adv_images = images.clone().detach()
    if random_start:
        adv_images = adv_images + torch.empty_like(adv_images).uniform_(-eps, eps)
        adv_images = torch.clamp(adv_images, min=0, max=1).detach()
    for _ in range(steps):
        adv_images.requires_grad = True
        outputs = model(adv_images)
        cost = -loss(outputs, labels) if targeted else loss(outputs, labels)
        grad = torch.autograd.grad(cost, adv_images, retain_graph=False, create_graph=False)[0]
        adv_images = adv_images.detach() + alpha * grad.sign()
        delta = torch.clamp(adv_images - images, min=-eps, max=eps)
        adv_images = torch.clamp(images + delta, min=0, max=1).detach()
    model.train(given_mode)
    return adv_images
""",
        (),
    ),
    Wrong(
        "mim_torchattacks_style",
        "mim",
        """
def mim(model, x, y, eps, alpha, steps, decay=1.0, random_start=False, targeted=False):
    given_mode = model.training
    model.eval()
    images = x.clone().detach()
    labels = y.clone().detach()
    momentum = torch.zeros_like(images).detach()
    loss = nn.CrossEntropyLoss()
    adv_images = images.clone().detach()
    if random_start:
        adv_images = adv_images + torch.empty_like(adv_images).uniform_(-eps, eps)
        adv_images = torch.clamp(adv_images, min=0, max=1).detach()
    dims = tuple(range(1, images.dim()))  # torchattacks has (1, 2, 3): images only
    for _ in range(steps):
        adv_images.requires_grad = True
        outputs = model(adv_images)
        cost = -loss(outputs, labels) if targeted else loss(outputs, labels)
        grad = torch.autograd.grad(cost, adv_images, retain_graph=False, create_graph=False)[0]
        grad = grad / torch.mean(torch.abs(grad), dim=dims, keepdim=True)
        grad = grad + momentum * decay
        momentum = grad
        adv_images = adv_images.detach() + alpha * grad.sign()
        delta = torch.clamp(adv_images - images, min=-eps, max=eps)
        adv_images = torch.clamp(images + delta, min=0, max=1).detach()
    model.train(given_mode)
    return adv_images
""",
        (),
    ),
    Wrong(
        "fd_unit_vectors",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    units = torch.eye(x.numel(), dtype=x.dtype, device=x.device)
    estimates = [(float(f(x + h * e.reshape(x.shape))) - float(f(x - h * e.reshape(x.shape)))) / (2 * h) for e in units]
    return torch.tensor(estimates, dtype=x.dtype, device=x.device).reshape(x.shape)
""",
        (),
    ),
    Wrong(
        "step_zero_grad_set_to_none_and_mode_kept",
        "adversarial_training_step",
        """
def adversarial_training_step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
    labels = y
    if use_predicted_labels:
        model.eval()
        with torch.inference_mode():
            labels = model(x).argmax(1)
        labels = labels.clone()
    x_adv = pgd(model, x, labels, eps=eps, alpha=alpha, steps=steps, random_start=True, targeted=False)
    model.train()
    optimizer.zero_grad(set_to_none=True)
    clean, adversarial = F.cross_entropy(model(x), y), F.cross_entropy(model(x_adv), y)
    (clean + adversarial).backward()
    optimizer.step()
    return (clean + adversarial).item()
""",
        (),
    ),
    Wrong(
        "fgsm_with_backward_and_sum",
        "fgsm",
        """
def fgsm(model, x, y, eps, targeted=False):
    mode = model.training
    model.eval()
    x_adv = x.detach().clone()
    x_adv.requires_grad = True
    F.cross_entropy(model(x_adv), y, reduction="sum").backward()
    direction = x_adv.grad.sign() * (-1 if targeted else 1)
    result = torch.clamp(x_adv + eps * direction, min=0.0, max=1.0).detach()
    if mode:
        model.train()
    return result
""",
        (),
    ),
    Wrong(
        "pgd_built_on_fgsm",
        "pgd",
        """
def pgd(model, x, y, eps, alpha, steps, random_start=True, targeted=False):
    x = x.detach()
    x_adv = x.clone()
    if random_start:
        x_adv = torch.clamp(x_adv + (torch.rand_like(x) * 2 - 1) * eps, 0, 1)
    for _ in range(steps):
        x_adv = fgsm(model, x_adv, y, alpha, targeted=targeted)
        x_adv = torch.clamp(x_adv, x - eps, x + eps).clamp(0, 1)
    return x_adv
""",
        (),
    ),
    Wrong(
        "mim_mean_abs_normalisation",
        "mim",
        """
def mim(model, x, y, eps, alpha, steps, decay=1.0, random_start=False, targeted=False):
    was_training = model.training
    model.eval()
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start:
        delta = torch.clamp(x + torch.empty_like(x).uniform_(-eps, eps), 0, 1) - x
    g = torch.zeros_like(x)
    reduce_dims = list(range(1, x.dim()))
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y, reduction="sum")
        loss.backward()
        grad = delta.grad.detach()
        g = decay * g + grad / (grad.abs().mean(dim=reduce_dims, keepdim=True) + 1e-12)
        step = alpha * g.sign()
        delta = (delta.detach() - step if targeted else delta.detach() + step).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    model.train(was_training)
    return (x + delta).detach()
""",
        (),
    ),
    Wrong(
        "fd_forward_difference_in_place_restored",
        "finite_difference_gradient",
        """
def finite_difference_gradient(f, x, h=1e-3):
    x = x.clone()
    base = float(f(x))
    grad = torch.empty_like(x)
    for index in np.ndindex(*x.shape):
        original = x[index].item()
        x[index] = original + h
        grad[index] = (float(f(x)) - base) / h
        x[index] = original
    return grad
""",
        (),
    ),
    Wrong(
        "step_sum_over_concatenation",
        "adversarial_training_step",
        """
def adversarial_training_step(model, optimizer, x, y, eps, alpha, steps, use_predicted_labels=True):
    if use_predicted_labels:
        was_training = model.training
        model.eval()
        with torch.no_grad():
            target = model(x).max(dim=1).indices
        model.train(was_training)
    else:
        target = y
    x_adv = pgd(model, x, target, eps, alpha, steps)
    model.train()
    model.zero_grad()
    logits = model(torch.cat([x, x_adv]))
    loss = F.cross_entropy(logits, torch.cat([y, y]), reduction="sum") / len(x)
    loss.backward()
    optimizer.step()
    return float(loss)
""",
        (),
    ),
    # Every correct form: rounded to 3 decimals as the question allows, numpy and torch numbers, a tuple, capitals
    # and spaces around a letter.
    Wrong(
        "questions_other_forms",
        "questions",
        """
q1_answer = np.float64(1.739)
q2_answer = (105, 100.0)
q3_answer = torch.tensor([2 * 28 * 28, 28 * 28 + 1])
q4_answer = "D"
q5_answer = " c "
""",
        (),
    ),
    Wrong(
        "questions_as_arrays",
        "questions",
        """
import math

q1_answer = math.sqrt(3 * 32 * 32 * (8 / 255) ** 2)
q2_answer = np.array([105, 100])
q3_answer = [1568.0, 785.0]
q4_answer = "d"
q5_answer = "C"
""",
        (),
    ),
]
