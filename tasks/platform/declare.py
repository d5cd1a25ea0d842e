"""`mlops init`: a model added to the project file, with the suite suggested from its data.

The file is edited round-trip (ruamel.yaml), so what a team wrote in it, comments included,
stays as it was; the result is read back as a project (checked whole) before it replaces the
file, and a declaration that fails leaves neither the file nor a new suite changed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tasks.core.errors import PlatformError
from tasks.platform.project import ProjectError, ScheduleEntry, is_local_path, read_project
from tasks.platform.settings import Settings


def declare_model(
    settings: Settings,
    path: Path,
    name: str,
    data: str,
    target: str,
    task: str | None = None,
    schedule: str | None = None,
) -> Path:
    """Suggest NAME's suite into expectations/ beside the project file (an existing one is
    kept), and add NAME to the file at ``path`` (created if missing); the suite's path."""
    from ruamel.yaml import YAML

    from tasks.data import sources
    from tasks.quality.suggest import write_suite

    path = path.expanduser().resolve()
    yaml = YAML()  # round-trip: comments and order kept
    document = yaml.load(path.read_text()) if path.is_file() else None
    document = document if document is not None else {}
    if not isinstance(document.get("models", {}), dict):
        raise ProjectError(f"{path}: expected a top-level `models:` mapping of name -> fields")
    if name in document.get("models", {}):
        raise ProjectError(f"{path}: model {name!r} is already declared")
    if schedule is not None:
        try:
            ScheduleEntry(cron=schedule)
        except ValueError as exc:
            raise PlatformError(f"--schedule {schedule!r} is not a cron string") from exc
    sources.check_uri(data)
    declared = {
        "data": os.path.relpath(Path(data).resolve(), path.parent) if is_local_path(data) else data,
        "target": target,
        **({"task": task} if task else {}),
        **({"schedule": schedule} if schedule else {}),
    }
    suite = path.parent / "expectations" / f"{name}.json"
    written = not suite.exists()
    if written:
        write_suite(sources.load_frame(data), name, target, task, suite)
    document.setdefault("models", {})[name] = declared
    try:
        _replace(path, document, yaml, settings)
    except BaseException:
        if written:
            suite.unlink(missing_ok=True)
        raise
    return suite


def _replace(path: Path, document, yaml, settings: Settings) -> None:
    """Write ``document`` over ``path`` once it reads back as a project."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=".mlops-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w") as out:
            yaml.dump(document, out)
        read_project(Path(scratch), settings)
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)
