"""Promote and roll back: alias moves runnable from the Prefect UI, each with an audit trail."""

from __future__ import annotations

from typing import Literal

from prefect import flow, task

from tasks.platform.settings import Settings, load_settings
from tasks.registry import versions

Alias = Literal["champion", "challenger"]


@task(name="move alias")
def move_alias(
    settings: Settings, model_name: str, version: str, alias: str, reason: str, requested_by: str
) -> dict:
    return versions.assign_alias(settings, model_name, version, alias, requested_by, reason)


@task(name="roll back alias")
def roll_back_alias(
    settings: Settings, model_name: str, alias: str, reason: str, requested_by: str
) -> dict:
    return versions.rollback_alias(settings, model_name, alias, requested_by, reason)


@flow(name="promote")
def promote_flow(
    version: str,
    model_name: str = "digits",
    alias: Alias = "champion",
    reason: str = "promoted by hand",
    requested_by: str = "prefect-ui",
) -> dict:
    """Move an alias to a READY version; the version records who, when, why and the previous.

    Args:
        version: The version to promote, e.g. 3.
        model_name: The registered model.
        alias: The alias to move.
        reason: Why, for the audit trail.
        requested_by: Who asks, for the audit trail.
    """
    return move_alias(load_settings(), model_name, version, alias, reason, requested_by)


@flow(name="rollback")
def rollback_flow(
    model_name: str = "digits",
    alias: Alias = "champion",
    reason: str = "rolled back by hand",
    requested_by: str = "prefect-ui",
) -> dict:
    """Return the alias to the version that held it before the current one.

    Args:
        model_name: The registered model.
        alias: The alias to roll back.
        reason: Why, for the audit trail.
        requested_by: Who asks, for the audit trail.
    """
    return roll_back_alias(load_settings(), model_name, alias, reason, requested_by)
