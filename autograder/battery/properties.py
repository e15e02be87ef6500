"""Property-based cases for oracles that hold for arbitrary inputs (hypothesis, fixed and fast).

``for_all(strategy, check, examples=25)`` calls ``check`` on ``examples`` values drawn from a
hypothesis strategy. Grading must be repeatable and quick, so the draws are derandomized (the same
values on every machine and every run), nothing is stored on disk, and a failing case is reported
as it is, without shrinking: ``check``'s own message names the case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st  # noqa: F401 - re-exported for the lab modules

GRADING = settings(
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
    report_multiple_bugs=False,
)


def for_all(strategy: st.SearchStrategy, check: Callable[[Any], None], examples: int = 25) -> int:
    """Run ``check(value)`` for ``examples`` derandomized draws of ``strategy``; return how many ran."""
    count = [0]

    @settings(GRADING, max_examples=examples)
    @given(strategy)
    def run(value):
        count[0] += 1
        check(value)

    run()
    return count[0]
