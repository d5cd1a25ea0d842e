"""The training flow's steps, a module per stage (data, models, evaluation, registry): thin
Prefect tasks around the plain functions of `tasks/`, each recording what it did on the MLflow
run; and the candidates' fan-out.

Two kinds of step. A `step` passes DataFrames and fitted models in memory (hashing them for a
cache key would be waste). A `job_step` (fitting, cross-validation) persists its result under
the artifact root, keyed by the job and the candidate, so that a rerun of an identical job
(after a crash, say) reuses it instead of training again (see flows/results.py).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

step = task(cache_policy=NO_CACHE)


def _job_step_key(context, parameters: dict[str, Any]) -> str:
    candidate = parameters.get("candidate")
    family = candidate.family if candidate is not None else parameters["family"]
    return f"{context.task.fn.__name__}-{family}-{parameters['job_key']}"


job_step = task(cache_key_fn=_job_step_key, persist_result=True)


def persisted(step_task, results, force: bool):
    """A job step storing its result in `results` (see `result_storage`); --force recomputes."""
    return step_task.with_options(result_storage=results, refresh_cache=force)
