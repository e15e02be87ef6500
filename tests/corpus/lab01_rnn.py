"""lab01_rnn: realistic mistakes (each caught by the named test cell) and correct alternatives.

Most entries change one line of the reference answer (``edit``); the rest are written out.
"""

from tests.submissions import WrongImplementation as Wrong
from tests.submissions import reference_answers, reference_editor

LAB = "lab01_rnn"
REFERENCE = reference_answers(LAB)
edit = reference_editor(LAB)

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
        "rng.shuffle(order)\n",
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
    # --- questions
    Wrong(
        "question_reset_before_product",
        "questions",
        'q1_answer = "a"\nq2_answer = "b"\nq3_answer = 4224\n',
        ("test_q1",),
    ),
    Wrong(
        "question_second_block_is_g", "questions", 'q1_answer = "b"\nq2_answer = "c"\nq3_answer = 4224\n', ("test_q2",)
    ),
    Wrong(
        "question_weights_only",
        "questions",
        'q1_answer = "b"\nq2_answer = "b"\nq3_answer = 3 * 32 * 42\n',
        ("test_q3",),
    ),
    Wrong(
        "question_count_as_text", "questions", 'q1_answer = "b"\nq2_answer = "b"\nq3_answer = "4224"\n', ("test_q3",)
    ),
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
]
