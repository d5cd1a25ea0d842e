"""The sweep: every candidate on every cross-validation fold, as parallel Prefect tasks.

Locally the tasks run on a thread pool; with MLOPS_DASK_ADDRESS set they run on that Dask
cluster (prefect-dask), whose workers need the platform installed. Each candidate becomes a
nested MLflow run under the training run; the best is refitted on the training rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import unmapped

from flows.runners import task_runner
from tasks.data.splits import Splits
from tasks.evaluation import scoring, sweep
from tasks.models import training
from tasks.platform.settings import Settings
from tasks.registry import tracking

step = task(cache_policy=NO_CACHE)


@dataclass(frozen=True)
class SweepResult:
    """The winner of a sweep, ready for registration, and the record of every candidate."""

    candidate: sweep.Candidate
    estimator: Any  # the best candidate, refitted on the training rows
    scores: dict[str, float]  # its test_* metrics on the test rows
    probabilities: Any  # its class probabilities on the test rows (for the plots)
    cv: dict[str, float]  # its cv_*_mean / cv_*_std over the folds
    candidates: list[dict[str, Any]]  # name, family, params, cv metrics, run_id of each

    @property
    def family(self) -> str:
        return self.candidate.family


@step(name="score fold", task_run_name="{candidate.name} fold {fold}")
def score_fold(
    candidate: sweep.Candidate,
    fold: int,
    epochs: int,
    seed: int,
    X: pd.DataFrame,
    y: pd.Series,
    train_rows: np.ndarray,
    held_out_rows: np.ndarray,
) -> dict[str, float]:
    return sweep.score_fold(candidate, epochs, seed, X, y, train_rows, held_out_rows)


@step(name="log candidates")
def log_candidates(
    settings: Settings,
    run_id: str,
    experiment: str,
    candidates: list[sweep.Candidate],
    fold_scores: list[list[dict[str, float]]],
    summaries: list[dict[str, float]],
    best: int,
) -> list[dict[str, Any]]:
    """One nested MLflow run per candidate: its parameters, metrics per fold and over them."""
    records = []
    for index, (candidate, folds, summary) in enumerate(
        zip(candidates, fold_scores, summaries, strict=True)
    ):
        tags = {
            "mlflow.parentRunId": run_id,
            "mlops.sweep.family": candidate.family,
            "mlops.sweep.best": str(index == best).lower(),
        }
        with tracking.tracking_run(settings, experiment, candidate.name, tags) as child:
            tracking.log_params(settings, child, {"family": candidate.family, **candidate.params})
            per_fold = {k.removeprefix("test_"): [s[k] for s in folds] for k in folds[0]}
            tracking.log_history(settings, child, "fold", per_fold)  # fold.accuracy, step k
            tracking.log_metrics(settings, child, summary)
        records.append(
            {
                "name": candidate.name,
                "family": candidate.family,
                "params": candidate.params,
                "run_id": child,
                **summary,
            }
        )
    return records


@step(name="refit best", task_run_name="refit {candidate.name}")
def refit_best(
    settings: Settings, run_id: str, candidate: sweep.Candidate, splits: Splits, epochs: int
) -> tuple[Any, dict[str, float], Any]:
    """The winner fitted on the training rows (the network's curves on the run, as without a
    sweep); its test scores and test probabilities."""
    estimator = training.fit_candidate(
        candidate.build(epochs, settings.seed),
        splits.X_train,
        splits.y_train,
        splits.X_val,
        splits.y_val,
    )
    tracking.log_fit(settings, run_id, candidate.family, estimator)
    scores, probabilities = scoring.test_scores(estimator, splits.X_test, splits.y_test)
    chosen = {f"sweep.best.{k}": v for k, v in candidate.params.items()}
    tracking.log_params(settings, run_id, {"sweep.best": candidate.name, **chosen})
    return estimator, scores, probabilities


def run_sweep(
    settings: Settings,
    run_id: str,
    experiment: str,
    splits: Splits,
    epochs: int,
    candidates: list[sweep.Candidate],
) -> SweepResult:
    """Cross-validate every candidate in parallel, log each under `run_id`, refit the best.

    Folds come from the training and validation rows together, as in the training flow's
    cross-validation; the test rows stay unseen until the winner is scored on them.
    """
    X = pd.concat([splits.X_train, splits.X_val])
    y = pd.concat([splits.y_train, splits.y_val])
    folds = sweep.fold_indices(y, settings.cv_folds, settings.seed)
    pairs = [(c, f) for c in candidates for f in range(len(folds))]
    with task_runner(settings, settings.sweep_workers) as runner:
        futures = runner.map(
            score_fold,
            {
                "candidate": [c for c, _ in pairs],
                "fold": [f for _, f in pairs],
                "epochs": unmapped(epochs),
                "seed": unmapped(settings.seed),
                "X": unmapped(X),
                "y": unmapped(y),
                "train_rows": [folds[f][0] for _, f in pairs],
                "held_out_rows": [folds[f][1] for _, f in pairs],
            },
        )
        results = futures.result()
    fold_scores = [results[i : i + len(folds)] for i in range(0, len(results), len(folds))]
    summaries = [sweep.summarize(scores) for scores in fold_scores]
    best = sweep.best_index(summaries, settings.promotion_metric)
    # The winner refits on a thread of this process while the candidates' nested runs are
    # logged: the two are independent, and the refit's cores would sit idle during the logging.
    with ThreadPoolTaskRunner(max_workers=1) as beside:
        refit = beside.submit(
            refit_best,
            {
                "settings": settings,
                "run_id": run_id,
                "candidate": candidates[best],
                "splits": splits,
                "epochs": epochs,
            },
        )
        records = log_candidates(
            settings, run_id, experiment, candidates, fold_scores, summaries, best
        )
        tracking.log_metrics(settings, run_id, summaries[best])
        estimator, scores, probabilities = refit.result()
    return SweepResult(candidates[best], estimator, scores, probabilities, summaries[best], records)
