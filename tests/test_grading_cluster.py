"""``--cluster``: the same per-notebook jobs on a Dask scheduler (here a local cluster) give the same rows."""

from __future__ import annotations

import pytest

from tests.grading import read_csv, run_grade
from tests.submissions import reference_answers, student_notebook, write_submission

LAB = "lab00_setup"


@pytest.fixture(scope="module")
def cluster_address():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as cluster:
        yield cluster.scheduler_address


def test_cluster_grades_like_this_machine(tmp_path, cluster_address):
    submitted = tmp_path / "submitted"
    submitted.mkdir()
    reference = reference_answers(LAB)
    write_submission(submitted, "reference", student_notebook(LAB, reference))
    zeros = "def one_hot(labels, num_classes):\n    return torch.zeros(len(labels), num_classes)"
    write_submission(submitted, "wrong_one_hot", student_notebook(LAB, {**reference, "one_hot": zeros}))
    (submitted / "broken.ipynb").write_text("{not json")
    result = run_grade(LAB, submitted, tmp_path / "out", "--cluster", cluster_address)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"on {cluster_address}" in result.stdout
    totals = {row["student_id"]: float(row["raw_score"]) for row in read_csv(tmp_path / "out" / "grades.csv")}
    assert totals == {"reference": 8.0, "wrong_one_hot": 7.0, "broken": 0.0}
    problems = {row["student_id"]: row["problem"] for row in read_csv(tmp_path / "out" / "problems.csv")}
    assert set(problems) == {"broken"} and "invalid JSON" in problems["broken"]
    assert (tmp_path / "out" / "feedback" / "wrong_one_hot" / f"{LAB}.html").exists()
    assert not list((tmp_path / "out").glob("dlcourse-grade-*")), "the work folder next to the results was left behind"
