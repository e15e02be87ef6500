"""What every worker would otherwise do by itself on its first notebook, done once in the fork server.

:mod:`autograder.grade` forks each worker from a server that has imported this module, so a
notebook's grading starts with the grader's libraries imported and their lazy first-use work
done (about 1.5 s per notebook on a 2-core machine): the battery the hidden tests import,
PyTorch's compiler stack (the first optimizer a hidden test builds imports it), the modules
``jupyter_client`` imports to find the kernel, and hypothesis's one-time registration of its
random generator (a full garbage collection) and scan of local modules for constants, and the
feedback page's templates and lexers (:func:`autograder.feedback.warm_up`). Workers
started without the fork server (a Dask worker) do the same work on their own.
"""

import gc
import importlib
import pkgutil

import ipykernel.kernelspec  # noqa: F401
import IPython.paths  # noqa: F401 - jupyter_client imports them to find the kernel spec
import torch._dynamo  # noqa: F401 - torch.optim's first optimizer imports it

import autograder.battery
import autograder.worker  # noqa: F401
from autograder.battery.properties import for_all, st
from autograder.feedback import warm_up

for module in pkgutil.iter_modules(autograder.battery.__path__):
    importlib.import_module(f"{autograder.battery.__name__}.{module.name}")

for_all(st.integers(), lambda _: None, examples=20)  # hypothesis registers its generator, reads constants

warm_up()  # the feedback page's templates compiled, its lexers built

gc.freeze()  # what is loaded by now lives as long as the server: workers' collections skip it
