"""A job's identity: the same data, suite, parameters and code give the same key."""

from __future__ import annotations

from tasks.registry.jobs import job_key


def test_a_job_key_changes_with_the_data_the_suite_or_a_parameter(tmp_path):
    suite = tmp_path / "digits.json"
    suite.write_text('{"name": "digits", "expectations": []}')
    key = job_key("a" * 64, suite, {"epochs": 60})
    assert job_key("a" * 64, suite, {"epochs": 60}) == key
    assert job_key("b" * 64, suite, {"epochs": 60}) != key
    assert job_key("a" * 64, suite, {"epochs": 61}) != key
    suite.write_text('{"name": "digits", "expectations": [], "meta": {}}')
    assert job_key("a" * 64, suite, {"epochs": 60}) != key
