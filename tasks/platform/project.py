"""The project file (`mlops.yaml`): a team's models declared in one place, each with its data,
label, suite, schedule, promotion policy and candidates, validated whole before any work.

Relative paths in it (data, suites, candidates' files) are relative to the file; they are
resolved when it is read, so what a deployment or a flow run receives is absolute, whichever
folder the process that runs it started in.
"""

from __future__ import annotations

import re
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasks.core.errors import PlatformError
from tasks.core.parameters import MODEL_NAME_RULE, DriftMode, Epochs, ModelName, TaskChoice
from tasks.models.custom import (
    SWEEP_REFUSES,
    CandidateEntry,
    CandidateError,
    checked_entries,
    parse_entries,
)
from tasks.platform.settings import Settings

FILE_NAME = "mlops.yaml"


class ProjectError(PlatformError):
    """A project file that cannot be used: its message names the file, the model and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleEntry(_Strict):
    """One schedule of a model's retraining: a cron string in a time zone (default UTC)."""

    cron: str
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from tasks.platform.events import checked_cron

        return checked_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class PromotionDeclaration(_Strict):
    """A model's promotion policy; what is left out comes from the environment
    (MLOPS_PROMOTION_METRIC and the rest)."""

    metric: str | None = None
    margin: float | None = Field(default=None, ge=0)
    test: Literal["point", "non_inferior", "superior"] | None = None
    guards: list[str] | None = None
    tolerance: float | None = Field(default=None, ge=0)
    slice_min_rows: int | None = Field(default=None, ge=1)
    slice_tolerance: float | None = Field(default=None, ge=0)

    def settings_update(self) -> dict[str, Any]:
        """The settings it changes, by their names in `Settings`."""
        names = {
            "metric": "promotion_metric",
            "margin": "promotion_margin",
            "test": "promotion_test",
            "guards": "guard_metrics",
            "tolerance": "guard_tolerance",
            "slice_min_rows": "slice_min_rows",
            "slice_tolerance": "slice_tolerance",
        }
        given = self.model_dump(exclude_none=True)
        if "guards" in given:
            given["guards"] = tuple(given["guards"])
        return {names[key]: value for key, value in given.items()}


def applied(settings: Settings, promotion: PromotionDeclaration | None) -> Settings:
    """The settings with a model's declared promotion policy in place of the environment's."""
    if promotion is None:
        return settings
    return settings.model_copy(update=promotion.settings_update())


class RetrainOnDrift(_Strict):
    """Whether drift in the model's predictions starts its retraining, and at most how often
    (seconds; default MLOPS_RETRAIN_COOLDOWN)."""

    enabled: bool = True
    cooldown: int | None = Field(default=None, ge=0)


class ModelDeclaration(_Strict):
    """One model of the project: `mlops train`'s options, its schedule and its policies."""

    data: str = Field(min_length=1)
    target: str = Field(min_length=1)
    task: TaskChoice = "auto"
    suite: str | None = None
    exclude: list[str] = Field(default_factory=list)
    epochs: Epochs = 60
    schedule: str | list[ScheduleEntry] | None = None
    drift: DriftMode = "warn"
    require_approval: bool = False
    promotion: PromotionDeclaration | None = None
    candidates: list[str | CandidateEntry] | None = None
    retrain_on_drift: bool | RetrainOnDrift = True
    sweep: Literal["none", "grid", "random"] = "none"
    cv: bool = False

    @model_validator(mode="after")
    def _sweep(self):
        if self.candidates and self.sweep != "none":
            raise ValueError(SWEEP_REFUSES)
        return self

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value):
        return [ScheduleEntry(cron=value)] if isinstance(value, str) else value

    @property
    def drift_retraining(self) -> RetrainOnDrift:
        found = self.retrain_on_drift
        return found if isinstance(found, RetrainOnDrift) else RetrainOnDrift(enabled=found)

    def schedules(self, default_cron: str) -> list[ScheduleEntry]:
        """Its schedules: as declared (an empty list: none), else MLOPS_RETRAIN_CRON's."""
        return [ScheduleEntry(cron=default_cron)] if self.schedule is None else self.schedule

    def flow_parameters(self, name: str) -> dict[str, Any]:
        """The training flow's parameters that train this model (its deployment's defaults)."""
        return {
            "data_uri": self.data,
            "target": self.target,
            "task": self.task,
            "exclude": self.exclude,
            "suite": self.suite,
            "model_name": name,
            "epochs": self.epochs,
            "drift_mode": self.drift,
            "require_approval": self.require_approval,
            "sweep": self.sweep,
            "cv": self.cv,
            "candidates": (
                None
                if self.candidates is None
                else [c.model_dump() for c in parse_entries(self.candidates)]
            ),
            "promotion": self.promotion.model_dump(exclude_none=True) if self.promotion else None,
        }


class Project(_Strict):
    """The models a team declared, name -> declaration; ``path``: the file they came from."""

    models: dict[ModelName, ModelDeclaration]
    path: Path = Field(default=Path(FILE_NAME), exclude=True)

    def parameters(self, name: str) -> dict[str, Any]:
        """The training flow's parameters of a declared model; none for another name."""
        declared = self.models.get(name)
        return declared.flow_parameters(name) if declared else {}


def project_file(settings: Settings) -> Path | None:
    """The project file: --project / MLOPS_PROJECT, else mlops.yaml in this folder if any."""
    if settings.project is not None:
        return settings.project.expanduser().resolve()
    found = Path.cwd() / FILE_NAME
    return found.resolve() if found.is_file() else None


def load_project(settings: Settings) -> Project | None:
    """The project file read, checked whole and its paths resolved; None without one."""
    path = project_file(settings)
    return None if path is None else read_project(path, settings)


def read_project(path: Path, settings: Settings) -> Project:
    """The project at ``path``; ProjectError naming the file, the model and the key of the
    first problem: unreadable YAML, an unknown or missing key, a bad cron, an unknown family,
    a candidate that cannot be imported, a suite that does not exist."""
    import yaml

    if not path.is_file():
        raise ProjectError(f"{path}: no such project file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), dict):
        raise ProjectError(f"{path}: expected a top-level `models:` mapping of name -> fields")
    try:
        project = Project(**raw, path=path)
    except ValidationError as exc:
        raise ProjectError(f"{path}: {_where(exc)}") from None
    for name, declared in project.models.items():
        try:
            project.models[name] = _resolved(declared, name, path.parent, settings)
        except ProjectError as exc:
            raise ProjectError(f"{path}: model {name!r}, key {exc.key}: {exc}") from None
    return project


def _where(exc: ValidationError) -> str:
    """The first error of a validation, as `model 'NAME', key KEY: message`.

    A value of a union (a schedule's string or list, retrain_on_drift's bool or mapping, a
    candidate's string or mapping) fails each alternative: the one it was written for goes
    deepest, and says what is wrong; the others only that it is not them."""
    errors = exc.errors()
    field = errors[0]["loc"][:3]
    error = max((e for e in errors if e["loc"][:3] == field), key=lambda e: len(e["loc"]))
    location = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    if location[:1] == ["models"] and len(location) >= 2:
        name, keys = location[1], [k for k in location[2:] if not _UNION_TAG.match(k)]
        if keys == ["[key]"]:
            return f"model {name!r}: not a valid model name (use {MODEL_NAME_RULE})"
        if not keys:
            return f"model {name!r}: {message}"
        return f"model {name!r}, key {'.'.join(keys)}: {message}"
    return f"key {'.'.join(location)}: {message}"


# How pydantic names a union's alternative in an error's location: str, bool, list[...],
# or a model's class (the keys of the file are lower-case).
_UNION_TAG = re.compile(r"^(str|bool|int|float|[A-Z]\w*|\w+\[.*\])$")


def _resolved(declared: ModelDeclaration, name: str, base: Path, settings: Settings):
    """The declaration with its paths made absolute and its suite and candidates found."""
    from tasks.data import sources

    data = declared.data
    if is_local_path(data):
        data = str((base / data).resolve())
    try:
        sources.check_uri(data)
    except PlatformError as exc:
        raise _at("data", str(exc)) from None
    suite = _suite(declared.suite or name, base, settings)
    try:
        candidates = checked_entries(declared.candidates, declared.task, base)
    except CandidateError as exc:
        raise _at("candidates", str(exc)) from None
    return declared.model_copy(update={"data": data, "suite": str(suite), "candidates": candidates})


def is_local_path(data: str) -> bool:
    """Whether a data URI is a local path (a relative one is relative to the project file)."""
    return not data.startswith(("builtin:", "s3://", "file://"))


def _suite(suite: str, base: Path, settings: Settings) -> Path:
    """A declared suite's file: a path (relative to the project file), or a name looked up in
    the project's expectations/, then the platform's."""
    if suite.endswith(".json") or "/" in suite:
        found = (base / suite).resolve()
    else:
        local = base / "expectations" / f"{suite}.json"
        found = local.resolve() if local.is_file() else settings.suites_dir / f"{suite}.json"
    if not found.is_file():
        raise _at(
            "suite",
            f"{found} does not exist: write it with `mlops suite suggest` (or `mlops init`)",
        )
    return found


def _at(key: str, message: str) -> ProjectError:
    error = ProjectError(message)
    error.key = key
    return error
