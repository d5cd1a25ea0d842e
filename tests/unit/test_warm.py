"""The warm runner's pieces that need no running runner: where its socket goes, and that a
forked command masks its own secrets (tests/integration/test_deployments.py runs it for real)."""

from __future__ import annotations

import logging
import stat

from flows import warm
from tasks.settings import Settings


def test_the_socket_sits_in_the_home_or_in_a_private_folder_when_that_path_is_too_long(tmp_path):
    assert warm.socket_path(tmp_path) == tmp_path / "runner.sock"
    deep = tmp_path / ("d" * 120)
    path = warm.socket_path(deep)
    assert len(str(path)) <= 100 and path.name == "runner.sock"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # only this user can reach it
    path.parent.rmdir()


def test_a_command_masks_its_own_secrets_not_those_masked_before(tmp_path, monkeypatch):
    handler = logging.StreamHandler()
    logger = logging.getLogger("tasks.test_warm")
    logger.addHandler(handler)
    records = []
    handler.emit = records.append
    try:
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-runners-own-secret")
        Settings(home=tmp_path).install_redaction()
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-commands-secret")
        Settings(home=tmp_path).install_redaction()
        logger.warning("key is %s", "the-commands-secret")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == ["key is ***"]
