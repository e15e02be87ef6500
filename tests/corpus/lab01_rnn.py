"""lab01_rnn: realistic mistakes (each caught by the named test cell) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out. Some are
public code adapted as a student would paste it: PyTorch's own reference cells
(``benchmarks/fastrnns/cells.py``), the loop of ``nn.RNNCell``'s documentation, d2l.ai's GRU and the
classic "valid parentheses" stack with a dictionary of closing brackets.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab01_rnn"

# Each test cell tests one answer (and the answers USES names; tests/test_lab_namespaces.py checks it), so
# entries of unrelated answer cells are graded together, several to a notebook (tests/grading.py).
TESTED_BY = {
    "elman": ("test_elman",),
    "gated": ("test_gated",),
    "gru": ("test_gru",),
    "lstm": ("test_lstm",),
    "unroll": ("test_unroll",),
    "is_balanced": ("test_is_balanced",),
    "make_parentheses_data": ("test_make_parentheses_data",),
    "elman_bptt": ("test_elman_bptt",),
    "questions": ("test_q1", "test_q2", "test_q3", "test_q4"),
}
USES = {"make_parentheses_data": ("is_balanced",)}  # the reference generator labels words with is_balanced

REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

BPTT = ("test_elman_bptt",)
RECURRENT_STEP = "grad_h = delta @ weight_hh"
BIAS_STEP = "grad_bias_ih += delta.sum(dim=0)\n            grad_bias_hh += delta.sum(dim=0)"
Q1, Q2, Q3, Q4 = ("test_q1",), ("test_q2",), ("test_q3",), ("test_q4",)


def answers(q1="10560", q2="0.6248", q3="6.75", q4='"c"') -> str:
    """The questions cell with typed answers (right ones, unless given)."""
    return f"q1_answer = {q1}\nq2_answer = {q2}\nq3_answer = {q3}\nq4_answer = {q4}\n"


CORPUS = [
    # --- Elman
    edit("elman_tanh", "elman", "return torch.relu(", "return torch.tanh(", ("test_elman",)),
    edit("elman_no_nonlinearity", "elman", "return torch.relu(", "return (", ("test_elman",)),
    Wrong(
        "elman_one_bias",
        "elman",
        REFERENCE["elman"]
        .replace("        self.bias_hh = nn.Parameter(torch.empty(hidden_size).uniform_(-bound, bound))\n", "")
        .replace("F.linear(h, self.weight_hh, self.bias_hh)", "F.linear(h, self.weight_hh)"),
        ("test_elman",),
    ),
    edit(
        "elman_transposed_weight",
        "elman",
        "torch.empty(hidden_size, input_size)",
        "torch.empty(input_size, hidden_size)",
        ("test_elman",),
    ),
    edit(
        "elman_randn_init",
        "elman",
        "nn.Parameter(torch.empty(hidden_size, hidden_size).uniform_(-bound, bound))",
        "nn.Parameter(torch.randn(hidden_size, hidden_size))",
        ("test_elman",),
    ),
    edit(
        "elman_zero_state_float32",
        "elman",
        "h = x.new_zeros(x.shape[0], self.hidden_size)",
        "h = torch.zeros(x.shape[0], self.hidden_size)",
        ("test_elman",),
    ),
    edit(
        "elman_zero_state_on_cpu",  # right dtype, but made on the CPU: fails on a GPU
        "elman",
        "h = x.new_zeros(x.shape[0], self.hidden_size)",
        "h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)",
        ("test_elman",),
    ),
    edit(
        "elman_squeezes_output",  # batch 1 loses its batch axis
        "elman",
        "return torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))",
        "return torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))"
        ".squeeze()",
        ("test_elman",),
    ),
    edit(
        "elman_returns_float32",  # a float64 cell returns float32
        "elman",
        "return torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))",
        "out = torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))\n"
        "        return out.float()",
        ("test_elman",),
    ),
    edit(
        "elman_remembers_last_state",  # a "stateful" cell: h=None continues from the previous call
        "elman",
        """        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))""",
        """        if h is None:
            last = getattr(self, "last_h", None)
            h = last if last is not None and last.shape[0] == x.shape[0] else x.new_zeros(x.shape[0], self.hidden_size)
        self.last_h = torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))
        return self.last_h""",
        ("test_elman",),
    ),
    edit(
        "elman_torch_rnn_relu_cell",  # PyTorch's function instead of the formula
        "elman",
        "return torch.relu(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))",
        "return torch.rnn_relu_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)",
        ("test_elman",),
    ),
    Wrong(
        "elman_parameters_borrowed_from_rnncell",  # PyTorch's cell made only to copy its initial values
        "elman",
        """
class ElmanCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        template = nn.RNNCell(input_size, hidden_size, nonlinearity="relu")
        for name, value in template.named_parameters():
            setattr(self, name, nn.Parameter(value.detach().clone()))

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return torch.relu(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)
""",
        ("test_elman",),
    ),
    edit(
        "elman_bound_from_input_size",
        "elman",
        "bound = 1 / math.sqrt(hidden_size)",
        "bound = 1 / math.sqrt(input_size)",
        ("test_elman",),
    ),
    edit(
        "elman_seeded_init",  # reproducible, but every cell gets the same weights
        "elman",
        "bound = 1 / math.sqrt(hidden_size)",
        "torch.manual_seed(0)\n        bound = 1 / math.sqrt(hidden_size)",
        ("test_elman",),
    ),
    # --- gated
    edit(
        "gated_mix_swapped",
        "gated",
        "return z * h + (1 - z) * h_bar",
        "return (1 - z) * h + z * h_bar",
        ("test_gated",),
    ),
    edit("gated_tanh_candidate", "gated", "h_bar = torch.relu(", "h_bar = torch.tanh(", ("test_gated",)),
    edit(
        "gated_bias_on_state",
        "gated",
        "self.h2h = nn.Linear(hidden_size, hidden_size, bias=False)",
        "self.h2h = nn.Linear(hidden_size, hidden_size)",
        ("test_gated",),
    ),
    edit(
        "gated_no_sigmoid",
        "gated",
        "z = torch.sigmoid(self.x2z(x) + self.h2z(h))",
        "z = self.x2z(x) + self.h2z(h)",
        ("test_gated",),
    ),
    edit(
        "gated_gate_ignores_state",
        "gated",
        "z = torch.sigmoid(self.x2z(x) + self.h2z(h))",
        "z = torch.sigmoid(self.x2z(x))",
        ("test_gated",),
    ),
    Wrong(
        "gated_one_linear_on_concatenation",  # a common design, but not the submodules asked for
        "gated",
        """
class GatedCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.x2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.x2z = nn.Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        xh = torch.cat([x, h], dim=1)
        z = torch.sigmoid(self.x2z(xh))
        return z * h + (1 - z) * torch.relu(self.x2h(xh))
""",
        ("test_gated",),
    ),
    edit(
        "gated_updates_state_in_place",  # saves memory, but changes the caller's h
        "gated",
        "return z * h + (1 - z) * h_bar",
        "return h.mul_(z).add_((1 - z) * h_bar)",
        ("test_gated",),
    ),
    edit(
        "gated_zero_state_on_cpu",
        "gated",
        "h = x.new_zeros(x.shape[0], self.hidden_size)",
        "h = torch.zeros(x.shape[0], self.hidden_size).to(x.dtype)",
        ("test_gated",),
    ),
    # --- GRU
    edit("gru_update_swapped", "gru", "return (1 - z) * n + z * h", "return z * n + (1 - z) * h", ("test_gru",)),
    edit(
        "gru_gate_order_zrn",
        "gru",
        "r = torch.sigmoid(x_r + h_r)\n        z = torch.sigmoid(x_z + h_z)",
        "r = torch.sigmoid(x_z + h_z)\n        z = torch.sigmoid(x_r + h_r)",
        ("test_gru",),
    ),
    edit(
        "gru_reset_before_product",
        "gru",
        "n = torch.tanh(x_n + r * h_n)",
        "w_hn, b_hn = self.weight_hh[2 * self.hidden_size:], self.bias_hh[2 * self.hidden_size:]\n"
        "        n = torch.tanh(x_n + F.linear(r * h, w_hn, b_hn))",
        ("test_gru",),
    ),
    edit(
        "gru_b_hn_outside_reset",
        "gru",
        "n = torch.tanh(x_n + r * h_n)",
        "b_hn = self.bias_hh[2 * self.hidden_size:]\n        n = torch.tanh(x_n + r * (h_n - b_hn) + b_hn)",
        ("test_gru",),
    ),
    edit("gru_relu_candidate", "gru", "n = torch.tanh(x_n + r * h_n)", "n = torch.relu(x_n + r * h_n)", ("test_gru",)),
    edit(
        "gru_randn_init",
        "gru",
        "nn.Parameter(torch.empty(3 * hidden_size, hidden_size).uniform_(-bound, bound))",
        "nn.Parameter(torch.randn(3 * hidden_size, hidden_size) * 0.1)",
        ("test_gru",),
    ),
    edit(
        "gru_zero_state_like_x",  # shape (N, input_size), not (N, hidden_size)
        "gru",
        "h = x.new_zeros(x.shape[0], self.hidden_size)",
        "h = torch.zeros_like(x)",
        ("test_gru",),
    ),
    Wrong(
        "gru_subclasses_torch",  # PyTorch's cell under the lab's name
        "gru",
        """
class GRUCell(nn.GRUCell):
    pass
""",
        ("test_gru",),
    ),
    edit(
        "gru_zero_biases",  # Keras' habit: biases start at zero
        "gru",
        "self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-bound, bound))\n"
        "        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-bound, bound))",
        "self.bias_ih = nn.Parameter(torch.zeros(3 * hidden_size))\n"
        "        self.bias_hh = nn.Parameter(torch.zeros(3 * hidden_size))",
        ("test_gru",),
    ),
    edit(
        "gru_bound_from_stacked_rows",  # 1/sqrt(3H): the rows of the stacked weight, not H
        "gru",
        "bound = 1 / math.sqrt(hidden_size)",
        "bound = 1 / math.sqrt(3 * hidden_size)",
        ("test_gru",),
    ),
    Wrong(
        "gru_plain_tensors",  # not nn.Parameters: not in the state_dict, never trained
        "gru",
        """
class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1 / math.sqrt(hidden_size)
        self.weight_ih = torch.empty(3 * hidden_size, input_size).uniform_(-bound, bound).requires_grad_()
        self.weight_hh = torch.empty(3 * hidden_size, hidden_size).uniform_(-bound, bound).requires_grad_()
        self.bias_ih = torch.empty(3 * hidden_size).uniform_(-bound, bound).requires_grad_()
        self.bias_hh = torch.empty(3 * hidden_size).uniform_(-bound, bound).requires_grad_()

    def forward(self, x, h=None):
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        return (1 - z) * torch.tanh(x_n + r * h_n) + z * h
""",
        ("test_gru",),
    ),
    Wrong(
        "gru_d2l_reset_before_product",  # d2l.ai's GRU (the original paper): reset applied to h before W_hh
        "gru",
        """
class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size).uniform_(-bound, bound))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size).uniform_(-bound, bound))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-bound, bound))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size).uniform_(-bound, bound))

    def forward(self, X, H=None):
        if H is None:
            H = X.new_zeros(X.shape[0], self.hidden_size)
        W_xr, W_xz, W_xh = self.weight_ih.chunk(3)
        W_hr, W_hz, W_hh = self.weight_hh.chunk(3)
        b_xr, b_xz, b_xh = self.bias_ih.chunk(3)
        b_hr, b_hz, b_hh = self.bias_hh.chunk(3)
        Z = torch.sigmoid(X @ W_xz.T + b_xz + H @ W_hz.T + b_hz)
        R = torch.sigmoid(X @ W_xr.T + b_xr + H @ W_hr.T + b_hr)
        H_tilde = torch.tanh(X @ W_xh.T + b_xh + (R * H) @ W_hh.T + b_hh)
        return Z * H + (1 - Z) * H_tilde
""",
        ("test_gru",),
    ),
    # --- LSTM
    edit(
        "lstm_gate_order_ifog",
        "lstm",
        "i, f, g, o = gates.chunk(4, dim=1)",
        "i, f, o, g = gates.chunk(4, dim=1)",
        ("test_lstm",),
    ),
    edit(
        "lstm_no_tanh_on_cell",
        "lstm",
        "h_next = torch.sigmoid(o) * torch.tanh(c_next)",
        "h_next = torch.sigmoid(o) * c_next",
        ("test_lstm",),
    ),
    edit("lstm_returns_c_h", "lstm", "return h_next, c_next", "return c_next, h_next", ("test_lstm",)),
    edit(
        "lstm_sigmoid_candidate",
        "lstm",
        "torch.sigmoid(i) * torch.tanh(g)",
        "torch.sigmoid(i) * torch.sigmoid(g)",
        ("test_lstm",),
    ),
    edit(
        "lstm_no_input_gate",
        "lstm",
        "torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
        "torch.sigmoid(f) * c + torch.tanh(g)",
        ("test_lstm",),
    ),
    edit(
        "lstm_forget_gate_on_candidate",
        "lstm",
        "torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
        "torch.sigmoid(i) * c + torch.sigmoid(f) * torch.tanh(g)",
        ("test_lstm",),
    ),
    edit(
        "lstm_cell_state_on_cpu",  # h on x's device, c forgotten on the CPU
        "lstm",
        """            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)""",
        """            h0 = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
            c0 = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype)
            state = (h0, c0)""",
        ("test_lstm",),
    ),
    edit(
        "lstm_updates_cell_state_in_place",
        "lstm",
        "c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)",
        "c_next = c.mul_(torch.sigmoid(f)).add_(torch.sigmoid(i) * torch.tanh(g))",
        ("test_lstm",),
    ),
    edit(
        "lstm_torch_lstm_cell",
        "lstm",
        """        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_next = torch.sigmoid(o) * torch.tanh(c_next)
        return h_next, c_next""",
        "        return torch._VF.lstm_cell(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)",
        ("test_lstm",),
    ),
    edit(
        "lstm_forget_bias_one",  # a known training trick, but not the initialisation asked for
        "lstm",
        "self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))",
        "self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))\n"
        "        with torch.no_grad():\n"
        "            self.bias_hh[hidden_size:2 * hidden_size] = 1.0",
        ("test_lstm",),
    ),
    Wrong(
        "lstm_xavier_init",
        "lstm",
        REFERENCE["lstm"].replace(
            "        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))\n",
            "        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound))\n"
            "        nn.init.xavier_uniform_(self.weight_ih)\n"
            "        nn.init.xavier_uniform_(self.weight_hh)\n",
        ),
        ("test_lstm",),
    ),
    edit("lstm_returns_list", "lstm", "return h_next, c_next", "return [h_next, c_next]", ("test_lstm",)),
    Wrong("lstm_alias_of_torch", "lstm", "LSTMCell = nn.LSTMCell\n", ("test_lstm",)),  # PyTorch's cell renamed
    # --- unroll
    edit(
        "unroll_batch_first",
        "unroll",
        "return torch.stack(outputs), state",
        "return torch.stack(outputs, dim=1), state",
        ("test_unroll",),
    ),
    edit("unroll_state_reset", "unroll", "state = cell(x, state)", "state = cell(x)", ("test_unroll",)),
    edit(
        "unroll_truncated_bptt",
        "unroll",
        "state = cell(x, state)",
        "if state is not None:\n"
        "            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()\n"
        "        state = cell(x, state)",
        ("test_unroll",),
    ),
    edit(
        "unroll_lstm_drops_cell_state",
        "unroll",
        "state = cell(x, state)\n        outputs.append(state[0] if isinstance(state, tuple) else state)",
        "out = cell(x, state)\n"
        "        state = out[0] if isinstance(out, tuple) else out\n"
        "        outputs.append(state)",
        ("test_unroll",),
    ),
    edit(
        "unroll_returns_first_state",
        "unroll",
        "return torch.stack(outputs), state",
        "return torch.stack(outputs), outputs[0]",
        ("test_unroll",),
    ),
    Wrong(
        "unroll_preallocated_float32",  # torch.zeros defaults to float32: float64 inputs lose precision
        "unroll",
        """
def unroll(cell, xs, state=None):
    outputs = torch.zeros(xs.shape[0], xs.shape[1], cell.hidden_size, device=xs.device)
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        outputs[t] = state[0] if isinstance(state, tuple) else state
    return outputs, state
""",
        ("test_unroll",),
    ),
    Wrong(
        "unroll_preallocated_on_cpu",  # right dtype, but the outputs live on the CPU
        "unroll",
        """
def unroll(cell, xs, state=None):
    outputs = torch.zeros(xs.shape[0], xs.shape[1], cell.hidden_size, dtype=xs.dtype)
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        outputs[t] = state[0] if isinstance(state, tuple) else state
    return outputs, state
""",
        ("test_unroll",),
    ),
    edit(
        "unroll_recognises_only_torch_lstm",  # a pair state is recognised by the cell's class
        "unroll",
        "outputs.append(state[0] if isinstance(state, tuple) else state)",
        "outputs.append(state[0] if isinstance(cell, nn.LSTMCell) else state)",
        ("test_unroll",),
    ),
    edit(
        "unroll_state_by_keyword_hx",  # PyTorch's cells call it hx; the lab's cells do not
        "unroll",
        "state = cell(x, state)",
        "state = cell(x, hx=state)",
        ("test_unroll",),
    ),
    Wrong(
        "unroll_mutable_default",  # the list of outputs is shared between calls
        "unroll",
        """
def unroll(cell, xs, state=None, outputs=[]):
    for x in xs:
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs), state
""",
        ("test_unroll",),
    ),
    # --- is_balanced
    Wrong(
        "balanced_ignores_colour",
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    depth = 0
    for symbol in seq:
        depth += 1 if int(symbol) < n_pairs else -1
        if depth < 0:
            return False
    return depth == 0
""",
        ("test_is_balanced",),
    ),
    Wrong(
        "balanced_counts_only",
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    seq = [int(s) for s in seq]
    return all(seq.count(c) == seq.count(2 * n_pairs - 1 - c) for c in range(n_pairs))
""",
        ("test_is_balanced",),
    ),
    edit(
        "balanced_pairing_off_by_one",
        "is_balanced",
        "stack.pop() != 2 * n_pairs - 1 - symbol",
        "stack.pop() != 2 * n_pairs - symbol",
        ("test_is_balanced",),
    ),
    edit("balanced_leftover_accepted", "is_balanced", "return not stack", "return True", ("test_is_balanced",)),
    Wrong(
        "balanced_five_colours_only",
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    stack = []
    for symbol in seq:
        symbol = int(symbol)
        if 0 <= symbol < 5:
            stack.append(symbol)
        elif 5 <= symbol < 10:
            if not stack or stack.pop() != 9 - symbol:
                return False
        else:
            return False
    return not stack
""",
        ("test_is_balanced",),
    ),
    edit("balanced_returns_int", "is_balanced", "return not stack", "return int(not stack)", ("test_is_balanced",)),
    Wrong(
        "balanced_pops_the_input",  # uses the caller's list as a queue
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    stack = []
    while seq:
        symbol = seq.pop(0)
        if 0 <= symbol < n_pairs:
            stack.append(symbol)
        elif n_pairs <= symbol < 2 * n_pairs and stack and stack[-1] == 2 * n_pairs - 1 - symbol:
            stack.pop()
        else:
            return False
    return not stack
""",
        ("test_is_balanced",),
    ),
    Wrong(
        "balanced_no_range_check",  # -1 and 2P "match" without a range check
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    stack = []
    for symbol in seq:
        if symbol < n_pairs:
            stack.append(symbol)
        elif not stack or stack.pop() != 2 * n_pairs - 1 - symbol:
            return False
    return not stack
""",
        ("test_is_balanced",),
    ),
    Wrong(
        "balanced_crashes_on_a_leading_closer",  # stack[-1] of an empty stack
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    stack = []
    for symbol in seq:
        if not 0 <= symbol < 2 * n_pairs:
            return False
        if symbol < n_pairs:
            stack.append(symbol)
        elif stack[-1] == 2 * n_pairs - 1 - symbol:
            stack.pop()
        else:
            return False
    return len(stack) == 0
""",
        ("test_is_balanced",),
    ),
    # --- make_parentheses_data
    edit(
        "data_random_negatives",
        "make_parentheses_data",
        "make = wrong_colour if index % 2 else wrong_order",
        "make = lambda pairs: [rng.randrange(2 * n_pairs) for _ in range(2 * pairs)]",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_colour_negatives_only",
        "make_parentheses_data",
        "make = wrong_colour if index % 2 else wrong_order",
        "make = wrong_colour",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_unchecked_negatives",
        "make_parentheses_data",
        "while is_balanced(word, n_pairs):",
        "while False:",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_not_shuffled",
        "make_parentheses_data",
        "    rng.shuffle(order)\n",
        "",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_only_nested",
        "make_parentheses_data",
        "if stack and (not can_open or rng.random() < 0.5):",
        "if stack and not can_open:",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_labels_swapped",
        "make_parentheses_data",
        "labels.append(1)",
        "labels.append(0)",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_too_long",
        "make_parentheses_data",
        "pairs = rng.randint(1, max_len // 2)",
        "pairs = rng.randint(1, max_len)",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_global_generator",
        "make_parentheses_data",
        "rng = random.Random(seed)",
        "random.seed(seed)\n    rng = random",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_bool_labels",  # True/False are not the class indices 1/0
        "make_parentheses_data",
        "labels.append(1)",
        "labels.append(True)",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_labels_as_tensor",
        "make_parentheses_data",
        "return [sequences[k] for k in order], [labels[k] for k in order]",
        "return [sequences[k] for k in order], torch.tensor([labels[k] for k in order])",
        ("test_make_parentheses_data",),
    ),
    Wrong(
        "data_rng_outside_function",  # one generator for all calls: the same seed gives other data next time
        "make_parentheses_data",
        "rng = random.Random(0)\n\n\n"
        + REFERENCE["make_parentheses_data"].replace("    rng = random.Random(seed)\n", ""),
        ("test_make_parentheses_data",),
    ),
    Wrong(
        "data_numpy_global_seed",  # seeds NumPy's global generator to draw the lengths
        "make_parentheses_data",
        "import numpy as np\n\n\n"
        + REFERENCE["make_parentheses_data"]
        .replace("    rng = random.Random(seed)\n", "    rng = random.Random(seed)\n    np.random.seed(seed)\n")
        .replace("pairs = rng.randint(1, max_len // 2)", "pairs = int(np.random.randint(1, max_len // 2 + 1))"),
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_torch_randperm_shuffle",  # the order comes from PyTorch's global generator
        "make_parentheses_data",
        "    order = list(range(n))\n    rng.shuffle(order)\n",
        "    order = torch.randperm(n).tolist()\n",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_odd_max_len_rounded_up",  # (max_len + 1) // 2 pairs overflow an odd max_len
        "make_parentheses_data",
        "pairs = rng.randint(1, max_len // 2)",
        "pairs = rng.randint(1, (max_len + 1) // 2)",
        ("test_make_parentheses_data",),
    ),
    edit(
        "data_kind_drawn_again_after_rejection",  # rejected wrong orders are replaced by either kind
        "make_parentheses_data",
        """        make = wrong_colour if index % 2 else wrong_order
        word = make(pairs)
        while is_balanced(word, n_pairs):  # a shuffle can land on a balanced word
            word = make(pairs)""",
        """        word = rng.choice([wrong_colour, wrong_order])(pairs)
        while is_balanced(word, n_pairs):
            word = rng.choice([wrong_colour, wrong_order])(pairs)""",
        ("test_make_parentheses_data",),
    ),
    # --- backpropagation through time
    edit("bptt_no_relu_mask", "elman_bptt", "delta = grad_h * (pre_activations[t] > 0)", "delta = grad_h", BPTT),
    edit("bptt_relu_slope_one_at_zero", "elman_bptt", "(pre_activations[t] > 0)", "(pre_activations[t] >= 0)", BPTT),
    edit("bptt_tanh_derivative", "elman_bptt", "(pre_activations[t] > 0)", "(1 - states[t + 1] ** 2)", BPTT),
    edit("bptt_recurrent_weight_transposed", "elman_bptt", RECURRENT_STEP, "grad_h = delta @ weight_hh.T", BPTT),
    edit(
        "bptt_sums_overwritten",  # each step replaces the weight gradients instead of adding to them
        "elman_bptt",
        "grad_weight_ih += delta.T @ xs[t]\n            grad_weight_hh += delta.T @ states[t]",
        "grad_weight_ih = delta.T @ xs[t]\n            grad_weight_hh = delta.T @ states[t]",
        BPTT,
    ),
    edit(
        "bptt_last_step_only",  # no loop over time for the parameters: only the last step's contribution
        "elman_bptt",
        "grad_bias_hh += delta.sum(dim=0)",
        "grad_bias_hh += delta.sum(dim=0) if t == len(xs) - 1 else 0",
        BPTT,
    ),
    edit(
        "bptt_not_through_time",  # dL/dh_T used at every step, the chain through h_{t-1} forgotten
        "elman_bptt",
        "grad_h = delta @ weight_hh\n    return grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh, grad_h",
        "grad_h0 = delta @ weight_hh\n    return grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh, grad_h0",
        BPTT,
    ),
    edit("bptt_current_state", "elman_bptt", "delta.T @ states[t]", "delta.T @ states[t + 1]", BPTT),
    edit(
        "bptt_weight_gradient_transposed",  # x_t^T delta_t, of shape (I, H), where weight_ih is (H, I)
        "elman_bptt",
        "grad_weight_ih += delta.T @ xs[t]",
        "grad_weight_ih += (xs[t].T @ delta).reshape(grad_weight_ih.shape)",
        BPTT,
    ),
    edit("bptt_bias_over_units", "elman_bptt", BIAS_STEP, BIAS_STEP.replace("dim=0", "dim=1"), BPTT),
    edit("bptt_bias_mean", "elman_bptt", BIAS_STEP, BIAS_STEP.replace("sum", "mean"), BPTT),
    edit("bptt_h0_is_delta", "elman_bptt", "grad_bias_hh, grad_h", "grad_bias_hh, delta", BPTT),
    edit(
        "bptt_h0_one_step_short",  # the state's gradient is sent back at the start of the next step only
        "elman_bptt",
        """        for t in reversed(range(len(xs))):
            delta = grad_h * (pre_activations[t] > 0)
            grad_weight_ih += delta.T @ xs[t]
            grad_weight_hh += delta.T @ states[t]  # states[t] is h_{t-1}: states[0] = h0
            grad_bias_ih += delta.sum(dim=0)
            grad_bias_hh += delta.sum(dim=0)
            grad_h = delta @ weight_hh""",
        """        for t in reversed(range(len(xs))):
            if t < len(xs) - 1:
                grad_h = delta @ weight_hh
            delta = grad_h * (pre_activations[t] > 0)
            grad_weight_ih += delta.T @ xs[t]
            grad_weight_hh += delta.T @ states[t]
            grad_bias_ih += delta.sum(dim=0)
            grad_bias_hh += delta.sum(dim=0)""",
        BPTT,
    ),
    edit(
        "bptt_masks_grad_final_in_place",
        "elman_bptt",
        "delta = grad_h * (pre_activations[t] > 0)",
        "delta = grad_h.mul_(pre_activations[t] > 0)",
        BPTT,
    ),
    edit(
        "bptt_accumulators_float32",  # float64 inputs give float32 gradients
        "elman_bptt",
        "torch.zeros_like(weight_ih), torch.zeros_like(weight_hh)",
        "torch.zeros(weight_ih.shape, device=xs.device), torch.zeros(weight_hh.shape, device=xs.device)",
        BPTT,
    ),
    edit(
        "bptt_accumulators_on_cpu",  # right dtype, made on the CPU: fails on a GPU
        "elman_bptt",
        "torch.zeros_like(bias_ih), torch.zeros_like(bias_hh)",
        "torch.zeros(len(bias_ih), dtype=xs.dtype), torch.zeros(len(bias_hh), dtype=xs.dtype)",
        BPTT,
    ),
    Wrong(
        "bptt_keeps_the_graph",  # right values, but from inputs that require grad the results carry a graph
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    states, pre = [h0], []
    for x in xs:
        pre.append(x @ weight_ih.T + bias_ih + states[-1] @ weight_hh.T + bias_hh)
        states.append(pre[-1].clamp(min=0))
    grads = [torch.zeros_like(p) for p in (weight_ih, weight_hh, bias_ih, bias_hh)]
    g = grad_final
    for t in range(len(xs) - 1, -1, -1):
        delta = g * (pre[t] > 0)
        grads[0] = grads[0] + delta.T @ xs[t]
        grads[1] = grads[1] + delta.T @ states[t]
        grads[2] = grads[2] + delta.sum(0)
        grads[3] = grads[3] + delta.sum(0)
        g = delta @ weight_hh
    return (*grads, g)
""",
        BPTT,
    ),
    Wrong(
        "bptt_autograd_grad",  # the gradients asked of autograd instead of written out
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    leaves = [p.detach().requires_grad_() for p in (weight_ih, weight_hh, bias_ih, bias_hh, h0)]
    w_ih, w_hh, b_ih, b_hh, h = leaves
    with torch.enable_grad():
        for x in xs:
            h = torch.relu(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        return tuple(torch.autograd.grad(h, leaves, grad_final))
""",
        BPTT,
    ),
    Wrong(
        "bptt_backward_call",  # autograd through the student's own cell, gradients read from .grad
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    cell = nn.RNNCell(xs.shape[2], h0.shape[1], nonlinearity="relu").to(xs.device, xs.dtype)
    with torch.no_grad():
        for parameter, value in zip(cell.parameters(), [weight_ih, weight_hh, bias_ih, bias_hh]):
            parameter.copy_(value)
    h_start = h0.detach().clone().requires_grad_(True)
    h = h_start
    for x in xs:
        h = cell(x.detach(), h)
    h.backward(grad_final)
    return cell.weight_ih.grad, cell.weight_hh.grad, cell.bias_ih.grad, cell.bias_hh.grad, h_start.grad
""",
        BPTT,
    ),
    # --- questions (each answer checked by its own hidden test)
    Wrong("q1_second_layer_reads_the_input", "questions", answers(q1=2 * 4224), Q1),
    Wrong("q1_one_layer", "questions", answers(q1=4224), Q1),
    Wrong("q1_one_bias_vector", "questions", answers(q1=10560 - 2 * 96), Q1),
    Wrong("q1_lstm_gates", "questions", answers(q1=4 * 32 * 42 + 8 * 32 + 4 * 32 * 64 + 8 * 32), Q1),
    Wrong("q1_as_text", "questions", answers(q1='"10560"'), Q1),
    Wrong("q2_update_gate_flipped", "questions", answers(q2=0.8392), Q2),
    Wrong("q2_reset_before_the_product", "questions", answers(q2=0.6309), Q2),
    Wrong("q2_no_reset_gate", "questions", answers(q2=0.6331), Q2),
    Wrong("q2_gates_read_as_z_r_n", "questions", answers(q2=0.7428), Q2),
    Wrong("q3_last_step_only", "questions", answers(q3=0.75), Q3),
    Wrong("q3_not_through_time", "questions", answers(q3=4.25), Q3),
    Wrong("q3_current_state", "questions", answers(q3=8.875), Q3),
    Wrong("q4_rounding", "questions", answers(q4='"a"'), Q4),
    Wrong("q4_shared_weights", "questions", answers(q4='"b"'), Q4),
    Wrong("q4_norm_bound", "questions", answers(q4='"d"'), Q4),
]

ALTERNATIVES = [
    Wrong(
        "elman_matmul_and_reset_parameters",
        "elman",
        """
class ElmanCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.Tensor(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.Tensor(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.Tensor(hidden_size))
        self.bias_hh = nn.Parameter(torch.Tensor(hidden_size))
        self.reset_parameters()

    def reset_parameters(self):
        for p in self.parameters():
            nn.init.uniform_(p, -hidden_bound(self.hidden_size), hidden_bound(self.hidden_size))

    def forward(self, x, h=None):
        if h is None:
            h = torch.zeros(x.size(0), self.hidden_size, dtype=x.dtype, device=x.device)
        return (x @ self.weight_ih.t() + self.bias_ih + h @ self.weight_hh.t() + self.bias_hh).clamp(min=0)


def hidden_bound(hidden_size):
    return hidden_size ** -0.5
""",
        (),
    ),
    edit(
        "gated_lerp",
        "gated",
        "return z * h + (1 - z) * h_bar",
        "return torch.lerp(h_bar, h, z)",
        (),
    ),
    edit(
        "gru_slices",
        "gru",
        "x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=1)\n"
        "        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=1)",
        "H = self.hidden_size\n"
        "        gi, gh = x @ self.weight_ih.T + self.bias_ih, h @ self.weight_hh.T + self.bias_hh\n"
        "        x_r, x_z, x_n = gi[:, :H], gi[:, H:2 * H], gi[:, 2 * H:]\n"
        "        h_r, h_z, h_n = gh[:, :H], gh[:, H:2 * H], gh[:, 2 * H:]",
        (),
    ),
    edit(
        "lstm_split",
        "lstm",
        "i, f, g, o = gates.chunk(4, dim=1)",
        "i, f, g, o = torch.split(gates, self.hidden_size, dim=1)",
        (),
    ),
    Wrong(
        "unroll_preallocated",
        "unroll",
        """
def unroll(cell, xs, state=None):
    outputs = None
    for t in range(xs.shape[0]):
        state = cell(xs[t], state)
        h = state[0] if isinstance(state, (tuple, list)) else state
        if outputs is None:
            outputs = xs.new_zeros(xs.shape[0], *h.shape)
        outputs = outputs.index_copy(0, torch.tensor([t], device=xs.device), h[None])
    return outputs, state
""",
        (),
    ),
    Wrong(
        "balanced_by_reduction",
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    word = [int(s) for s in seq]
    if any(s < 0 or s >= 2 * n_pairs for s in word):
        return False
    pairs = {(c, 2 * n_pairs - 1 - c) for c in range(n_pairs)}
    reduced = []
    for symbol in word:
        if reduced and (reduced[-1], symbol) in pairs:
            reduced.pop()
        else:
            reduced.append(symbol)
    return len(reduced) == 0
""",
        (),
    ),
    Wrong(
        "data_by_grammar",
        "make_parentheses_data",
        """
def make_parentheses_data(n, max_len, n_pairs=5, seed=0):
    rng = random.Random(seed)

    def word(pairs):  # S -> c S (2P-1-c) S
        if pairs == 0:
            return []
        inside = rng.randrange(pairs)
        colour = rng.randrange(n_pairs)
        return [colour] + word(inside) + [2 * n_pairs - 1 - colour] + word(pairs - 1 - inside)

    data = []
    while len(data) < n // 2:
        data.append((word(rng.randint(1, max_len // 2)), 1))
    while len(data) < n:
        w = word(rng.randint(1, max_len // 2))
        if len(data) % 2:
            k = rng.choice([k for k, s in enumerate(w) if s >= n_pairs])
            w[k] = rng.choice([s for s in range(n_pairs, 2 * n_pairs) if s != w[k]])
        else:
            rng.shuffle(w)
        if not is_balanced(w, n_pairs):
            data.append((w, 0))
    rng.shuffle(data)
    return [w for w, _ in data], [label for _, label in data]
""",
        (),
    ),
    Wrong(
        "elman_fastrnns_relu_cell",  # PyTorch's benchmarks/fastrnns reference rnn_relu_cell, wrapped in a module
        "elman",
        """
def rnn_relu_cell(input, hidden, w_ih, w_hh, b_ih, b_hh):
    igates = torch.mm(input, w_ih.t()) + b_ih
    hgates = torch.mm(hidden, w_hh.t()) + b_hh
    return torch.relu(igates + hgates)


class ElmanCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        stdv = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        for weight in self.parameters():
            nn.init.uniform_(weight, -stdv, stdv)

    def forward(self, input, hx=None):
        if hx is None:
            hx = torch.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)
        return rnn_relu_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
""",
        (),
    ),
    Wrong(
        "gru_fastrnns_cell",  # PyTorch's benchmarks/fastrnns reference gru_cell: hy = n + z * (h - n)
        "gru",
        """
class GRUCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        stdv = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            weight.data.uniform_(-stdv, stdv)

    def forward(self, input, hidden=None):
        if hidden is None:
            hidden = input.new_zeros(input.size(0), self.hidden_size)
        gi = torch.mm(input, self.weight_ih.t()) + self.bias_ih
        gh = torch.mm(hidden, self.weight_hh.t()) + self.bias_hh
        i_r, i_i, i_n = gi.chunk(3, 1)
        h_r, h_i, h_n = gh.chunk(3, 1)
        resetgate = torch.sigmoid(i_r + h_r)
        inputgate = torch.sigmoid(i_i + h_i)
        newgate = torch.tanh(i_n + resetgate * h_n)
        return newgate + inputgate * (hidden - newgate)
""",
        (),
    ),
    Wrong(
        "lstm_fastrnns_cell",  # PyTorch's benchmarks/fastrnns reference lstm_cell, wrapped in a module
        "lstm",
        """
def lstm_cell(input, hidden, w_ih, w_hh, b_ih, b_hh):
    hx, cx = hidden
    gates = torch.mm(input, w_ih.t()) + torch.mm(hx, w_hh.t()) + b_ih + b_hh
    ingate, forgetgate, cellgate, outgate = gates.chunk(4, 1)
    ingate = torch.sigmoid(ingate)
    forgetgate = torch.sigmoid(forgetgate)
    cellgate = torch.tanh(cellgate)
    outgate = torch.sigmoid(outgate)
    cy = (forgetgate * cx) + (ingate * cellgate)
    hy = outgate * torch.tanh(cy)
    return hy, cy


class LSTMCell(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = nn.Parameter(torch.rand(4 * hidden_size, input_size) * 2 * k - k)
        self.weight_hh = nn.Parameter(torch.rand(4 * hidden_size, hidden_size) * 2 * k - k)
        self.bias_ih = nn.Parameter(torch.rand(4 * hidden_size) * 2 * k - k)
        self.bias_hh = nn.Parameter(torch.rand(4 * hidden_size) * 2 * k - k)

    def forward(self, input, state=None):
        if state is None:
            zeros = torch.zeros_like(input[:, :1]).expand(-1, self.hidden_size)
            state = (zeros, zeros)
        return lstm_cell(input, state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
""",
        (),
    ),
    Wrong(
        "unroll_rnncell_docs_loop",  # the loop of nn.RNNCell's documentation, made general
        "unroll",
        """
def unroll(cell, xs, state=None):
    output = []
    hx = state
    for i in range(xs.size(0)):
        hx = cell(xs[i], hx)
        output.append(hx[0] if isinstance(hx, tuple) else hx)
    output = torch.stack(output, dim=0)
    return output, hx
""",
        (),
    ),
    Wrong(
        "unroll_new_empty_and_setitem",
        "unroll",
        """
def unroll(cell, xs, state=None):
    outputs = None
    for t, x in enumerate(xs.unbind(0)):
        state = cell(x, state)
        h = state[0] if isinstance(state, tuple) else state
        if outputs is None:
            outputs = xs.new_empty(xs.shape[0], *h.shape)
        outputs[t] = h
    return outputs, state
""",
        (),
    ),
    Wrong(
        "balanced_valid_parentheses_dict",  # the classic "valid parentheses" stack with a dict of closers
        "is_balanced",
        """
def is_balanced(seq, n_pairs=5):
    closes = {2 * n_pairs - 1 - colour: colour for colour in range(n_pairs)}
    stack = []
    for symbol in seq:
        if symbol in closes:
            if not stack or stack.pop() != closes[symbol]:
                return False
        elif 0 <= symbol < n_pairs:
            stack.append(symbol)
        else:
            return False
    return len(stack) == 0
""",
        (),
    ),
    Wrong(
        "data_numpy_generator_and_reversed_negatives",  # a local NumPy generator; wrong orders by reversal
        "make_parentheses_data",
        """
import numpy as np


def make_parentheses_data(n, max_len, n_pairs=5, seed=0):
    rng = np.random.default_rng(seed)

    def balanced(pairs):
        if pairs == 0:
            return []
        inside = int(rng.integers(pairs))
        colour = int(rng.integers(n_pairs))
        return [colour, *balanced(inside), 2 * n_pairs - 1 - colour, *balanced(pairs - 1 - inside)]

    def negative(pairs, kind):
        word = balanced(pairs)
        if kind == "order":  # reversed, a balanced word starts with a closing symbol
            return word[::-1]
        k = int(rng.choice([k for k, s in enumerate(word) if s >= n_pairs]))
        others = [c for c in range(n_pairs) if c != 2 * n_pairs - 1 - word[k]]
        word[k] = 2 * n_pairs - 1 - int(rng.choice(others))
        return word

    data = []
    for index in range(n):
        pairs = int(rng.integers(1, max_len // 2 + 1))
        if index < n // 2:
            data.append((balanced(pairs), 1))
        else:
            kind = "colour" if rng.random() < 0.5 else "order"
            word = negative(pairs, kind)
            while is_balanced(word, n_pairs):
                word = negative(pairs, kind)
            data.append((word, 0))
    rng.shuffle(data)
    return [word for word, _ in data], [label for _, label in data]
""",
        (),
    ),
    Wrong(
        "bptt_einsum_stacked",  # the deltas of all steps stacked, every sum over time one einsum
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    inputs = (xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final)
    xs, h0, w_ih, w_hh, b_ih, b_hh, g = (t.detach() for t in inputs)
    hs, masks = [h0], []
    for x in xs:
        a = torch.einsum("ni,hi->nh", x, w_ih) + torch.einsum("nk,hk->nh", hs[-1], w_hh) + b_ih + b_hh
        masks.append((a > 0).to(a.dtype))
        hs.append(torch.relu(a))
    deltas = []
    for mask in reversed(masks):
        deltas.append(g * mask)
        g = torch.einsum("nh,hk->nk", deltas[-1], w_hh)
    deltas = torch.stack(deltas[::-1])
    previous = torch.stack(hs[:-1])
    grad_b = deltas.sum(dim=(0, 1))
    return (torch.einsum("tnh,tni->hi", deltas, xs), torch.einsum("tnh,tnk->hk", deltas, previous), grad_b, grad_b, g)
""",
        (),
    ),
    Wrong(
        "bptt_mask_from_states_and_where",  # relu'(a_t) read from h_t > 0, F.linear, a while loop, a list returned
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    with torch.no_grad():
        hs = [h0]
        for t in range(xs.shape[0]):
            hs.append(F.relu(F.linear(xs[t], weight_ih, bias_ih) + F.linear(hs[t], weight_hh, bias_hh)))
        dW_ih, dW_hh = 0 * weight_ih, 0 * weight_hh
        db = 0 * bias_ih
        g, t = grad_final.clone(), xs.shape[0]
        while t > 0:
            delta = torch.where(hs[t] > 0, g, torch.zeros_like(g))
            dW_ih = dW_ih + delta.t() @ xs[t - 1]
            dW_hh = dW_hh + delta.t().mm(hs[t - 1])
            db = db + delta.sum(0)
            g = delta.mm(weight_hh)
            t -= 1
        return (dW_ih, dW_hh, db, db.clone(), g)
""",
        (),
    ),
    Wrong(
        "bptt_row_by_row",  # one example at a time, outer products, in float64 and cast back at the end
        "elman_bptt",
        """
def elman_bptt(xs, h0, weight_ih, weight_hh, bias_ih, bias_hh, grad_final):
    W_ih, W_hh, b_ih, b_hh = (p.detach().double() for p in (weight_ih, weight_hh, bias_ih, bias_hh))
    grads = [torch.zeros_like(p) for p in (W_ih, W_hh, b_ih)]
    grad_h0 = []
    for n in range(xs.shape[1]):
        x_n = xs[:, n].detach().double()
        h, hs, pres = h0[n].detach().double(), [], []
        for x in x_n:
            hs.append(h)
            pres.append(W_ih @ x + b_ih + W_hh @ h + b_hh)
            h = pres[-1].clamp(min=0)
        g = grad_final[n].detach().double()
        for x, h_prev, pre in reversed(list(zip(x_n, hs, pres))):
            delta = g * (pre > 0)
            grads[0] += torch.outer(delta, x)
            grads[1] += torch.outer(delta, h_prev)
            grads[2] += delta
            g = W_hh.T @ delta
        grad_h0.append(g)
    out = (grads[0], grads[1], grads[2], grads[2], torch.stack(grad_h0))
    return tuple(t.to(xs.dtype) for t in out)
""",
        (),
    ),
    # --- questions: typed numbers (rounded to 3 decimals as the questions allow), other forms
    Wrong("questions_typed", "questions", answers(q1="10560.0", q2="0.625", q3="6.750", q4='"C"'), ()),
    Wrong(
        "questions_counted_and_spaced",
        "questions",
        answers(q1="sum(p.numel() for p in nn.GRU(10, 32, num_layers=2).parameters())", q2="0.6248", q4='" c "'),
        (),
    ),
]
