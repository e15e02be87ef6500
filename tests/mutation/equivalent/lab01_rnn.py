"""Surviving mutants of lab01_rnn's reference answers that are equivalent to it, and why."""

# The line of make_parentheses_data's wrong_colour that these mutants edit:
#     word[k] = 2 * n_pairs - 1 - rng.choice([c for c in range(n_pairs) if c != 2 * n_pairs - 1 - word[k]])
# Each edit of the excluded colour (the one the closer at k closes) breaks only the exclusion: the new colour
# is then drawn from all n_pairs colours instead of the n_pairs - 1 others, and the while loop redraws the
# whole negative whenever the same colour came back (the word is balanced again). Every candidate word is
# accepted with the same probability (n_pairs - 1) / n_pairs, so the accepted negatives have exactly the
# reference's distribution: uniform over the other colours. Only the consumption of the generator differs.
SAME_COLOUR_REDRAWN = (
    "breaks only the exclusion of the colour being replaced; a negative that gets its own colour back is "
    "balanced and redrawn by the `while is_balanced(word, n_pairs)` loop, and every candidate is accepted with "
    "the same probability, so the negatives have the reference's distribution (the other colours, uniformly)"
)

EQUIVALENT = {
    "is_balanced:8:11 `0` -> `-1`": (
        "-1 then counts as an opener, but no closer can ever match it (a closer s in [P, 2P) matches "
        "2P - 1 - s >= 0), so a word containing -1 is still rejected: at that closer, or at the end with -1 "
        "left on the stack"
    ),
    "is_balanced:10:33 `2` -> `3`": (
        "symbols in [2P, 3P) then count as closers of colour 2P - 1 - s < 0, which no opener has, so the word "
        "is rejected at that symbol, as the reference's range check rejects it"
    ),
    "make_parentheses_data:11:42 `rng.random() < 0.5` -> `rng.random() <= 0.5`": (
        "rng.random() returns exactly 0.5 with probability 2**-53: closing stays a fair coin"
    ),
    "make_parentheses_data:11:57 `0.5` -> `0.25`": (
        "closing with probability 1/4 instead of 1/2 nests balanced words more deeply, but they are still drawn "
        "at random, nested, side by side and mixed: the lab does not fix the distribution of shapes"
    ),
    "make_parentheses_data:23:82 `2 * n_pairs - 1 - word[k]` -> `2 * n_pairs - 1 + word[k]`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:82 `2 * n_pairs - 1` -> `2 * n_pairs + 1`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:82 `2 * n_pairs` -> `2 / n_pairs`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:82 `2` -> `1`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:82 `2` -> `3`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:96 `1` -> `0`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:23:96 `1` -> `2`": SAME_COLOUR_REDRAWN,
    "make_parentheses_data:38:15 `wrong_colour if index % 2 else wrong_order` -> "
    "`wrong_order if index % 2 else wrong_colour`": (
        "the two kinds of negatives still alternate, in equal shares; only which index gets which kind changes"
    ),
}
