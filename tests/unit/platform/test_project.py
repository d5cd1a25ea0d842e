"""The project file (mlops.yaml): a team's models read whole, their paths relative to the file;
anything wrong in it is one line naming the file, the model and the key, before any work."""

from __future__ import annotations

import os
import textwrap

import pytest
from conftest import run_mlops
from mlflow import MlflowClient

from tasks.platform.project import ProjectError, ScheduleEntry, read_project
from tasks.platform.settings import Settings

TWO_MODELS = """\
models:
  churn:
    data: data/churn.csv
    target: churned
    suite: churn
    exclude: [customer_id]
    epochs: 5
    schedule: "0 3 * * *"
    drift: fail
    require_approval: true
    promotion: {metric: test_f1_macro, margin: 0.01}
    candidates:
      - logistic_regression
      - {entry: code/project_forest_cand.py:forest, name: forest, params: {trees: 10}}
  digits:
    data: builtin:digits
    target: target
    schedule: [{cron: "0 4 * * 1", timezone: Europe/Paris}]
    retrain_on_drift: {enabled: false, cooldown: 60}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A project's folder, with its data, suite and code; the process runs somewhere else."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "churn.csv").write_text("customer_id,tenure,churned\n1,3,0\n2,40,1\n")
    (project / "expectations").mkdir()
    (project / "expectations" / "churn.json").write_text("{}")
    (project / "code").mkdir()
    (project / "code" / "project_forest_cand.py").write_text(
        "from sklearn.ensemble import RandomForestClassifier\n\n"
        "def forest(spec):\n    return RandomForestClassifier(spec.params['trees'])\n"
    )
    # A file is imported as the module of its stem, once per process: each test its own.
    (project / "code" / "project_no_jungle.py").write_text("def forest(spec):\n    pass\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return project


def write(folder, text: str):
    path = folder / "mlops.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_two_model_file_is_read_with_its_paths_from_its_own_folder(folder, home):
    path = write(folder, TWO_MODELS)
    project = read_project(path, Settings())
    churn, digits = project.models["churn"], project.models["digits"]
    # Relative to the file, not to the folder the process runs in.
    assert churn.data == str(folder / "data" / "churn.csv")
    assert churn.suite == str(folder / "expectations" / "churn.json")
    forest = churn.candidates[1]
    assert forest.entry == f"{folder / 'code' / 'project_forest_cand.py'}:forest"
    assert (forest.family, forest.params) == ("forest", {"trees": 10})
    assert churn.schedule == [ScheduleEntry(cron="0 3 * * *")]
    assert digits.schedule == [ScheduleEntry(cron="0 4 * * 1", timezone="Europe/Paris")]
    # Not in the project's expectations/: the platform's suite of that name.
    assert digits.suite == str(Settings().suites_dir / "digits.json")
    assert not digits.drift_retraining.enabled and digits.drift_retraining.cooldown == 60
    assert project.parameters("churn") == {
        "data_uri": str(folder / "data" / "churn.csv"),
        "target": "churned",
        "task": "auto",
        "exclude": ["customer_id"],
        "suite": str(folder / "expectations" / "churn.json"),
        "model_name": "churn",
        "epochs": 5,
        "drift_mode": "fail",
        "require_approval": True,
        "sweep": "none",
        "cv": False,
        "candidates": [
            {
                "entry": "logistic_regression",
                "name": None,
                "params": {},
                "inputs": "encoded",
                "path": None,
            },
            {
                "entry": forest.entry,
                "name": "forest",
                "params": {"trees": 10},
                "inputs": "encoded",
                "path": None,
            },
        ],
        "promotion": {"metric": "test_f1_macro", "margin": 0.01},
    }
    assert project.parameters("digits")["epochs"] == 60 and project.parameters("other") == {}


MODEL = "models:\n  churn:\n    data: builtin:digits\n    target: target\n    suite: digits\n"
# Each malformed file: the model's extra lines (or the whole file), and what its line says.
MALFORMED = {
    "unknown key": (MODEL + "    epoch: 3\n", "model 'churn', key epoch: unknown key"),
    "missing target": (
        "models:\n  churn:\n    data: builtin:digits\n    suite: digits\n",
        "model 'churn', key target: Field required",
    ),
    "bad cron": (
        MODEL + "    schedule: '61 * * * *'\n",
        "model 'churn', key schedule.cron: Invalid cron string: \"61 * * * *\"",
    ),
    "bad cron in a list": (
        MODEL + "    schedule: [{cron: '0 3 * * *'}, {cron: '61 * * * *'}]\n",
        "model 'churn', key schedule.1.cron: Invalid cron string: \"61 * * * *\"",
    ),
    "bad timezone": (
        MODEL + "    schedule: [{cron: '0 3 * * *', timezone: Mars/Olympus}]\n",
        "model 'churn', key schedule.0.timezone: unknown time zone 'Mars/Olympus'",
    ),
    "unknown family": (
        MODEL + "    candidates: [logistic_regression, random_forest]\n",
        "model 'churn', key candidates: unknown family 'random_forest': choose one of",
    ),
    "unknown key of a candidate": (
        MODEL + "    candidates: [{entry: svm, nmae: fast}]\n",
        "model 'churn', key candidates.0.nmae: unknown key",
    ),
    "missing candidate file": (
        MODEL + "    candidates: [code/nowhere.py:forest]\n",
        "model 'churn', key candidates: candidate file {folder}/code/nowhere.py does not exist",
    ),
    "missing function": (
        MODEL + "    candidates: [code/project_no_jungle.py:jungle]\n",
        "model 'churn', key candidates: candidate {folder}/code/project_no_jungle.py:jungle "
        "cannot be imported: AttributeError: module 'project_no_jungle' has no attribute 'jungle'",
    ),
    "missing module": (
        MODEL + "    candidates: ['project_no_such_module:forest']\n",
        "model 'churn', key candidates: candidate project_no_such_module:forest cannot be "
        "imported: ModuleNotFoundError: No module named 'project_no_such_module'",
    ),
    "missing suite": (
        MODEL.replace("suite: digits", "suite: churn_v2"),
        "model 'churn', key suite: {suites}/churn_v2.json does not exist: write it with",
    ),
    "bad retrain_on_drift": (
        MODEL + "    retrain_on_drift: {cooldown: -5}\n",
        "model 'churn', key retrain_on_drift.cooldown: Input should be greater than or equal",
    ),
    "invalid YAML": (MODEL + "    exclude: [id\n", "not valid YAML: while parsing a flow"),
    "no models mapping": (
        "model:\n  churn: {data: builtin:digits, target: target}\n",
        "expected a top-level `models:` mapping of name -> fields",
    ),
    "models as a list": ("models:\n  - churn\n", "expected a top-level `models:` mapping"),
    "bad model name": (
        MODEL.replace("churn:", "'churn model':"),
        "model 'churn model': not a valid model name (use up to 100 letters, digits, '.', '_' "
        "or '-'",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_file_is_one_line_naming_the_file_the_model_and_the_key(case, folder, home):
    text, expected = MALFORMED[case]
    path = write(folder, text)
    with pytest.raises(ProjectError) as raised:
        read_project(path, Settings())
    message = str(raised.value)
    assert "\n" not in message
    expected = expected.format(folder=folder, suites=Settings().suites_dir)
    assert message.startswith(f"{path}: {expected}"), message


def test_mlops_train_with_a_malformed_project_says_why_in_one_line_and_registers_nothing(
    folder, home
):
    path = write(folder, MODEL + "    schedule: [{cron: '0 3 * * *', timezone: Mars/Olympus}]\n")
    done = run_mlops(
        "train", "--project", str(path), "--model-name", "churn", "--epochs", "3", "--json",
        env=dict(os.environ), cwd=folder,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"error: {path}: model 'churn', key schedule.0.timezone: unknown time zone 'Mars/Olympus'"
    ]
    store = home / "mlflow.db"
    assert not store.exists() or not MlflowClient(f"sqlite:///{store}").search_registered_models()
