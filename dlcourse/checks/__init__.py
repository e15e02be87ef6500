"""Visible checks for labs: each prints its measurement next to the tolerance.

``core`` holds what every lab uses; one module per lab topic holds the contract checks its
visible tests share with the hidden ones. Everything is importable from ``dlcourse.checks``.
"""

from dlcourse.checks.attacks import ModeRecorder, check_attack_contract, check_training_step_contract
from dlcourse.checks.batchnorm import check_batch_norm, check_batch_norm_module
from dlcourse.checks.cnn import (
    check_block_shapes,
    check_conv_output_size,
    check_global_avg_pool,
    check_inception_block,
    check_receptive_field,
    check_residual_block,
    check_resnet18_layout,
    check_state_dict_layout,
)
from dlcourse.checks.core import (
    OutOfTime,
    as_cpu_float64,
    check_close,
    check_true,
    checks_outcome,
    is_close,
    is_real_number,
    one_line,
    quiet,
    run_test,
    time_limit,
)
from dlcourse.checks.init import check_init, check_init_statistics
from dlcourse.checks.recurrent import check_recurrent_cell, check_uniform_init, parameter_shapes
from dlcourse.checks.visualization import check_leaves_model_as_found

__all__ = [
    "OutOfTime",
    "ModeRecorder",
    "as_cpu_float64",
    "check_attack_contract",
    "check_batch_norm",
    "check_batch_norm_module",
    "check_block_shapes",
    "check_close",
    "check_conv_output_size",
    "check_global_avg_pool",
    "check_inception_block",
    "check_init",
    "check_init_statistics",
    "check_leaves_model_as_found",
    "check_receptive_field",
    "check_recurrent_cell",
    "check_residual_block",
    "check_resnet18_layout",
    "check_state_dict_layout",
    "check_training_step_contract",
    "check_true",
    "check_uniform_init",
    "checks_outcome",
    "is_close",
    "is_real_number",
    "one_line",
    "parameter_shapes",
    "quiet",
    "run_test",
    "time_limit",
]
