"""What makes two training jobs the same: the data, the parameters and the code, as one key."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from tasks.models import custom
from tasks.models.custom import CandidateEntry
from tasks.platform.project import PromotionDeclaration
from tasks.platform.settings import PROJECT_ROOT, Settings

# Libraries whose version changes what a fit produces.
_LIBRARIES = ("keras", "scikit-learn", "tensorflow-cpu", "tensorflow", "jax", "torch", "numpy")


@cache
def code_fingerprint() -> str:
    """sha256 of the platform's own source and the versions of the libraries that train.

    Unlike a git commit it also holds for an installed package and for uncommitted edits, and
    it does not change when only the README does.
    """
    digest = hashlib.sha256()
    for package in ("tasks", "flows"):
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes())
    for name in _LIBRARIES:
        try:
            digest.update(f"{name}=={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            continue
    return digest.hexdigest()


def job_key(data_sha256: str, suite_path: Path, parameters: dict[str, Any]) -> str:
    """The identity of a training job: same key, same model (up to the seeded randomness)."""
    identity = {
        "data_sha256": data_sha256,
        "suite_sha256": hashlib.sha256(suite_path.read_bytes()).hexdigest(),
        "parameters": parameters,
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def check_inputs(
    settings: Settings,
    data_uri: str,
    model_name: str,
    suite: str | None,
    candidates: list[CandidateEntry] | None = None,
    sweep: str = "none",
) -> Path:
    """Refuse a training job's malformed inputs before any work; return its suite's path.

    The flow checks them first thing, for runs started from the UI or a schedule; the
    command checks them before it starts the flow, so a typo costs no Prefect start-up.
    """
    from tasks.data import sources
    from tasks.quality import validation
    from tasks.registry import versions

    sources.check_uri(data_uri)
    versions.check_model_name(model_name)
    if candidates:
        custom.check_entries(candidates)
        if sweep != "none":
            raise custom.CandidateError(custom.SWEEP_REFUSES)
    return validation.resolve_suite(suite or model_name, settings.suites_dir)


def declared_parts(
    candidates: list[CandidateEntry] | None, promotion: PromotionDeclaration | None
) -> dict[str, Any]:
    """What a job's declared candidates and promotion policy add to its identity (nothing when
    it has neither, so its key stays what it was): a candidate's code by its sha256."""
    parts: dict[str, Any] = {}
    if candidates:
        parts["candidates"] = [entry.fingerprint() for entry in candidates]
    if promotion is not None:
        parts["promotion"] = promotion.model_dump(exclude_none=True)
    return parts


def code_version() -> str | None:
    """The git commit of the platform's code, where it runs from a checkout."""
    try:
        done = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None
