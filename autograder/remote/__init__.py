"""Hidden tests outside the student's process.

The student's notebook runs in a sandboxed kernel; a test cell's visible part runs there
as the student sees it, and its hidden part runs in the grader's own process
(:mod:`autograder.execute`), where the notebook's namespace is a
:class:`~autograder.remote.client.RemoteNamespace`: values arrive as copies, functions and
objects as handles whose calls run in the kernel (:mod:`autograder.remote.agent`). Oracles,
comparisons and messages never enter the kernel, and neither does the hidden source.
"""

# Labs whose hidden tests run in the grader's process. The others still import the battery
# inside the kernel until their batteries use only what the remote namespace offers.
HIDDEN_TESTS_OUTSIDE = frozenset({"lab00_setup", "lab02_init"})
