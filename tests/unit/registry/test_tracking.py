"""What MLflow runs record: the dataset's schema, and whether a run's process still lives."""

from __future__ import annotations

import pandas as pd


def test_the_logged_dataset_schema_is_mlflows_own_with_late_nulls_seen(digits):
    import mlflow.data

    from tasks.registry.tracking import _frame_schema

    frame = pd.concat([digits] * 2, ignore_index=True)
    frame.loc[3000, "pixel_3_3"] = float("nan")  # past the sample the types come from
    inferred = mlflow.data.from_pandas(frame, targets="target").schema
    assert _frame_schema(frame) == inferred
    assert [c.name for c in inferred.inputs if not c.required] == ["pixel_3_3"]


def test_a_run_s_process_counts_as_alive_only_while_that_very_process_runs():
    import os
    import subprocess
    import sys

    import psutil

    from tasks.registry.tracking import _alive

    me = psutil.Process()
    assert _alive(os.getpid(), me.create_time())
    assert not _alive(os.getpid(), me.create_time() - 60)  # the pid reused by another process
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    assert not _alive(int(gone.stdout), me.create_time())
