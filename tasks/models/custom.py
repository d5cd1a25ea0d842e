"""A user's own model code as a candidate: the entry that names it (a built-in family, a
``module:function`` or a ``path/to/file.py:function``), the typed spec its function receives,
and what it returns made into a candidate like the built-in ones.

The function gets a `CandidateSpec` and returns a Keras model (compiled or not) or an unfitted
scikit-learn estimator. The platform puts its preprocessing of mixed-type features in front
(unless the entry says ``inputs: raw``), compiles an uncompiled Keras model with the task's
loss, and fits, scores, explains, serves and registers it as it does its own families. Any
error of the user's code becomes a `CandidateError` naming the candidate: the job goes on
with the other candidates.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tasks.core.errors import PlatformError, first_line
from tasks.models.families import BUILT_IN, FAMILIES

SWEEP_REFUSES = "a sweep searches the built-in families: declare no candidates, or no sweep"


class CandidateError(PlatformError):
    """A candidate whose code failed: raised, returned something else, predicted wrongly."""


class CandidateEntry(BaseModel):
    """One candidate of a job: ``entry`` is a built-in family, ``module:function`` or
    ``path/to/file.py:function``; ``name`` what it is registered and reported as (default:
    the family, or the function's name); ``params`` passed to the function in its spec;
    ``inputs`` whether it reads the platform's encoded numbers or the raw feature columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str = Field(min_length=1)
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: Literal["encoded", "raw"] = "encoded"
    # The folder a module:function entry imports from (the project file's): set when the
    # file is read, so a flow run on a worker elsewhere imports it from there too.
    path: str | None = None

    @property
    def builtin(self) -> bool:
        return ":" not in self.entry

    @property
    def family(self) -> str:
        """The name its scores, tags and card go under."""
        return self.name or self.entry.rpartition(":")[2]

    @property
    def file(self) -> Path | None:
        """The Python file of a ``file.py:function`` entry."""
        module = self.entry.rpartition(":")[0]
        return Path(module) if module.endswith(".py") else None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies it in a job's key: the entry, and its code's sha256 (a changed file
        is a new job)."""
        found = {"entry": self.entry, "name": self.family, "params": self.params}
        if not self.builtin and (source := code_path(self)) is not None:
            files = sorted(source.rglob("*.py")) if source.is_dir() else [source]
            digest = hashlib.sha256()
            for file in files:
                digest.update(f"{file.relative_to(source.parent)}\0".encode() + file.read_bytes())
            found["sha256"] = digest.hexdigest()
        return {**found, "inputs": self.inputs}


def parse_entries(values: list[str | dict | CandidateEntry]) -> list[CandidateEntry]:
    """Entries from what a user writes: a family or an entry string, or its mapping."""
    return [
        v if isinstance(v, CandidateEntry)
        else CandidateEntry(entry=v) if isinstance(v, str)
        else CandidateEntry(**v)
        for v in values
    ]  # fmt: skip


def checked_entries(
    values: list[str | dict | CandidateEntry] | None, task: str | None, base: Path
) -> list[CandidateEntry] | None:
    """What a user wrote, as entries (files' paths made absolute from ``base``), checked; None
    for none written (the default candidates)."""
    if not values:
        return None
    entries = [with_file_from(entry, base) for entry in parse_entries(values)]
    check_entries(entries, None if task == "auto" else task)
    return entries


def with_file_from(entry: CandidateEntry, base: Path) -> CandidateEntry:
    """A ``file.py:function`` entry with the file's path absolute (relative ones from
    ``base``); a ``module:function`` one importing from ``base``."""
    if entry.builtin:
        return entry
    if entry.file is None:
        return entry if entry.path else entry.model_copy(update={"path": str(base.resolve())})
    function = entry.entry.rpartition(":")[2]
    return entry.model_copy(update={"entry": f"{(base / entry.file).resolve()}:{function}"})


def check_entries(entries: list[CandidateEntry], task: str | None = None) -> None:
    """Refuse unknown families, names given twice, and functions that cannot be imported."""
    seen: set[str] = set()
    for entry in entries:
        if entry.builtin:
            known = BUILT_IN.get(task, FAMILIES)
            if entry.entry not in known:
                raise CandidateError(
                    f"unknown family {entry.entry!r}: choose one of {', '.join(known)}, or "
                    "name your own as module:function or path/to/file.py:function"
                )
        else:
            load_function(entry)
            if entry.family in FAMILIES:
                raise CandidateError(
                    f"candidate {entry.entry} is named {entry.family!r}, a built-in family: "
                    "give it another name"
                )
        if entry.family in seen:
            raise CandidateError(f"two candidates are named {entry.family!r}: name them apart")
        seen.add(entry.family)


def load_function(entry: CandidateEntry) -> Callable[..., Any]:
    """The user's function. A file is imported as a module of its stem (so what it defines
    pickles by that name, the name it has beside a registered model); a module, from the path
    as it is (the project file's folder is put on it)."""
    module_name, _, function = entry.entry.rpartition(":")
    try:
        if entry.file is not None:
            module = _import_file(entry.file)
        else:
            if entry.path is not None and entry.path not in sys.path:
                sys.path.append(entry.path)
            module = importlib.import_module(module_name)
        found = getattr(module, function)
    except CandidateError:
        raise
    except Exception as exc:
        raise CandidateError(
            f"candidate {entry.entry} cannot be imported: {type(exc).__name__}: {first_line(exc)}"
        ) from exc
    if not callable(found):
        raise CandidateError(f"candidate {entry.entry}: {function} is not a function")
    return found


def _import_file(path: Path):
    if not path.is_file():
        raise CandidateError(f"candidate file {path} does not exist")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
            return loaded
        raise CandidateError(
            f"candidate file {path} is named like the module {name!r} already imported from "
            f"{getattr(loaded, '__file__', 'built in')}: rename the file"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def module_name(entry: CandidateEntry) -> str:
    """The module a model of this entry imports its user's code as."""
    module = entry.entry.rpartition(":")[0]
    return entry.file.stem if entry.file is not None else module


def code_path(entry: CandidateEntry) -> Path | None:
    """The file or package folder that must travel with a model of this entry (none for a
    built-in family, or a module installed as a package of its own)."""
    if entry.builtin:
        return None
    if entry.file is not None:
        return entry.file.resolve()
    top = entry.entry.partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or (spec.origin is None and not spec.submodule_search_locations):
        return None
    where = (
        Path(next(iter(spec.submodule_search_locations)))
        if spec.submodule_search_locations
        else Path(spec.origin)
    )
    return None if "site-packages" in where.parts else where.resolve()


@dataclass(frozen=True)
class CandidateSpec:
    """What a candidate's function is told about the job.

    ``task``: classification or regression; ``classes``: the labels a classifier predicts
    (its output has one probability each, in this order); ``n_inputs`` and ``input_names``:
    the columns the model reads (after the platform's preprocessing, unless ``raw``); ``seed``;
    ``params``: the entry's own; ``n_outputs``: a Keras model's output width (len(classes),
    or 1 for a regressor)."""

    task: str
    classes: list[Any]
    n_inputs: int
    input_names: list[str]
    seed: int
    params: dict[str, Any] = field(default_factory=dict)
    raw: bool = False

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1


def call(entry: CandidateEntry, spec: CandidateSpec) -> Any:
    """The user's function called with the spec; its own errors named as the candidate's."""
    function = load_function(entry)
    try:
        return function(spec)
    except CandidateError:
        raise
    except Exception as exc:
        raise failed(entry, exc) from exc


def failed(entry: CandidateEntry, exc: BaseException) -> CandidateError:
    if isinstance(exc, CandidateError):
        return exc
    return CandidateError(
        f"candidate {entry.family} ({entry.entry}) failed: {type(exc).__name__}: {first_line(exc)}"
    )


def is_keras_model(found: Any) -> bool:
    """Whether ``found`` is a Keras model (told without importing Keras)."""
    return any(
        c.__module__.startswith("keras") and c.__name__ == "Model" for c in type(found).mro()
    )


def check_servable(entry: CandidateEntry, model) -> None:
    """A Keras model must be Sequential or functional: it is saved for serving from its
    layers (a subclassed model has none to save from)."""
    try:
        layered = "layers" in (model.get_config() or {})
    except Exception:
        layered = False
    if not layered:
        raise CandidateError(
            f"candidate {entry.family} ({entry.entry}) returned a subclassed Keras model: "
            "return a Sequential or functional one (it is saved for serving from its layers)"
        )


def is_estimator(found: Any) -> bool:
    return hasattr(found, "fit") and hasattr(found, "predict") and hasattr(found, "get_params")


def compiled(model, task: str, steps_per_execution: int = 1):
    """An uncompiled Keras model compiled for the task (Adam; sparse cross-entropy of class
    probabilities, or mean squared error); a compiled one as it is."""
    if getattr(model, "compiled", False):
        return model
    import keras

    classification = task == "classification"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy" if classification else "mse",
        metrics=["accuracy" if classification else "mae"],
        steps_per_execution=steps_per_execution,
    )
    return model


def check_outputs(entry: CandidateEntry, outputs: np.ndarray, rows: int, width: int) -> None:
    """A fitted candidate's outputs for ``rows`` rows must be ``width`` numbers each (a
    regressor's: one), finite; a classifier's, probabilities."""
    shape = np.shape(outputs)
    expected = (rows,) if width == 1 and len(shape) == 1 else (rows, width)
    if shape != expected:
        raise CandidateError(
            f"candidate {entry.family} ({entry.entry}) predicts the wrong shape: {shape} for "
            f"{rows} rows, expected {expected}"
        )
    values = np.asarray(outputs, dtype="float64")
    if not np.all(np.isfinite(values)):
        raise CandidateError(f"candidate {entry.family} ({entry.entry}) predicts NaN or infinity")
    if len(shape) == 2 and not np.allclose(values.sum(axis=1), 1.0, atol=1e-3):
        raise CandidateError(
            f"candidate {entry.family} ({entry.entry}) gives class scores that are no "
            "probabilities (rows do not sum to 1): end the model with a softmax"
        )
