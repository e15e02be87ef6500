"""The hidden-test battery: one method for every graded function, shared by every lab.

A hidden test states a function's **contract**, computes what it promises with an **oracle**
(PyTorch where it has the operation, else a reference written differently, in float64), and runs
the student's answer through a **battery** of systematically varied inputs, checking every promise:

- :mod:`~autograder.battery.inputs`: the variations (batch size 1, odd sizes, non-contiguous
  layouts, float32 and float64, large offsets and tiny variances, several seeds);
- :mod:`~autograder.battery.compare`: values against the oracle in float64 with a stated
  tolerance, and shape, dtype, device and Python type exactly as the contract says;
- :mod:`~autograder.battery.snapshot`: side effects (inputs unchanged, in-place updates in the
  very tensor passed, the model's parameters, buffers, mode and hooks restored);
- :mod:`~autograder.battery.devices`: tensors made on the CPU for inputs on the GPU, caught on
  a grader without a GPU;
- :mod:`~autograder.battery.forbidden`: calls of the PyTorch function a task asks to write;
- :mod:`~autograder.battery.models`: small models whose outputs differ in train and eval mode;
- :mod:`~autograder.battery.student`: the student's notebook namespace, read (never rebound)
  and, where a graded function relies on another, lent a correct version for one call.

The lab modules (``recurrent``, ``initialisation``, ``batchnorm``, ``adversarial``) hold the
contracts. A hidden test cell calls one of their ``test_*`` functions with ``globals()``, the
notebook's namespace, and nothing else, so test code never binds a name of the student's.
Each ``test_*`` prints one line per group of cases and raises ``AssertionError`` with a message
that names the case (arguments, shapes, dtypes) and what to fix.
"""
