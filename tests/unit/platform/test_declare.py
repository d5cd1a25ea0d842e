"""`mlops init`'s declaration: the suite written beside the project file, the model added to
the file with what it held (comments included) kept, and nothing changed when it fails."""

from __future__ import annotations

import pytest
from conftest import run_mlops

from tasks.core.errors import PlatformError
from tasks.platform.declare import declare_model
from tasks.platform.project import read_project
from tasks.platform.settings import Settings

EXISTING = """\
# The team's models: keep this comment
models:
  digits:  # the demo
    data: builtin:digits
    target: target
"""


@pytest.fixture
def table(tmp_path, digits):
    path = tmp_path / "data" / "rows.csv"
    path.parent.mkdir()
    digits.head(300).to_csv(path, index=False)
    return path


def test_a_model_is_added_beside_the_declared_ones_with_their_comments(tmp_path, table, home):
    project = tmp_path / "team" / "mlops.yaml"
    project.parent.mkdir()
    project.write_text(EXISTING)
    suite = declare_model(Settings(), project, "rows", str(table), "target", None, "0 6 * * *")
    assert suite == project.parent / "expectations" / "rows.json" and suite.is_file()
    text = project.read_text()
    assert text.startswith(EXISTING) and "# the demo" in text
    declared = read_project(project, Settings())
    rows = declared.models["rows"]
    assert rows.data == str(table)  # written relative to the file, read back as the same file
    assert "../data/rows.csv" in text
    assert [s.cron for s in rows.schedules("0 3 * * 1")] == ["0 6 * * *"]
    assert rows.suite == str(suite)


def test_a_name_declared_twice_or_a_bad_schedule_changes_nothing(tmp_path, table, home):
    project = tmp_path / "mlops.yaml"
    project.write_text(EXISTING)
    with pytest.raises(PlatformError, match="'digits' is already declared"):
        declare_model(Settings(), project, "digits", str(table), "target")
    with pytest.raises(PlatformError, match="not a cron string"):
        declare_model(Settings(), project, "other", str(table), "target", None, "61 * * * *")
    assert project.read_text() == EXISTING
    assert not (tmp_path / "expectations").exists()


def test_init_creates_the_file_and_prints_the_next_commands(tmp_path, table, home):
    import os

    done = run_mlops(
        "init", "--data", str(table), "--target", "target", "--name", "rows",
        env={**os.environ}, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mlops train --model-name rows" in done.stdout and "mlops serve" in done.stdout
    assert list(read_project(tmp_path / "mlops.yaml", Settings()).models) == ["rows"]
    listed = run_mlops("models", env={**os.environ}, cwd=tmp_path)
    assert "rows" in listed.stdout and "declared, not trained yet" in listed.stdout
