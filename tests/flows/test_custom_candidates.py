"""A team's own model code as candidates, declared in its mlops.yaml and trained by `mlops train`
as a user runs it: the failing ones named, the others scored, the best registered with its code,
and loaded back by MLflow in a fresh process elsewhere, where that code is not importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import run_mlops
from mlflow import MlflowClient

pytestmark = pytest.mark.slow

# The user's files, as they write them. The forest's pipeline holds a class of their own: its
# pickle names their module, so the model loads only where their code travelled with it.
FORESTS = '''\
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline


class Ink(TransformerMixin, BaseEstimator):
    """Pixels as a share of the darkest ink."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return np.asarray(X, dtype="float64") / 16


def forest(spec):
    trees = RandomForestClassifier(n_estimators=spec.params["trees"], random_state=spec.seed)
    return make_pipeline(Ink(), trees)


def explode(spec):
    raise RuntimeError("the GPU quota is spent")


def text(spec):
    return "a forest, trust me"
'''

DENSE = """\
import keras


def dense(spec):
    model = keras.Sequential([
        keras.Input(shape=(spec.n_inputs,)),
        keras.layers.Rescaling(1 / 16),
        keras.layers.Dense(spec.params["units"], activation="relu"),
        keras.layers.Dense(spec.n_outputs, activation="softmax"),
    ])
    # Compiled by the user, with their learning rate and no metric but the loss.
    model.compile(
        optimizer=keras.optimizers.Adam(spec.params["learning_rate"]),
        loss="sparse_categorical_crossentropy",
    )
    return model
"""

PROJECT = """\
models:
  forest:
    data: builtin:digits
    target: target
    suite: digits
    candidates:
      - {entry: code/flow_forests.py:forest, name: my_forest, params: {trees: 40}}
      - {entry: code/flow_forests.py:explode, name: explodes}
      - code/flow_forests.py:text
  dense:
    data: builtin:digits
    target: target
    suite: digits
    epochs: 3
    candidates:
      - {entry: code/flow_dense.py:dense, params: {units: 32, learning_rate: 0.01}}
  broken:
    data: builtin:digits
    target: target
    suite: digits
    candidates: [{entry: code/flow_forests.py:explode, name: explodes}]
"""

# What a fresh Python process loads from the registry, and what it finds in the model.
LOAD = """
import json, sys
import mlflow, pandas as pd

model = mlflow.pyfunc.load_model(f"models:/{sys.argv[1]}@champion")
predicted = model.predict(pd.read_csv(sys.argv[2]))
inner = model.unwrap_python_model()
if inner.network is not None:
    built = [layer.units for layer in inner.network.layers if hasattr(layer, "units")]
else:
    built = [f"{type(s).__module__}.{type(s).__name__}" for s in inner.estimator]
    built.append(inner.estimator[-1].n_estimators)
print(json.dumps({
    "predictions": predicted["prediction"].tolist(),
    "module": sys.modules[sys.argv[3]].__file__,
    "built": built,
}))
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory, module_home, digits):
    folder = tmp_path_factory.mktemp("team")
    (folder / "code").mkdir()
    (folder / "code" / "flow_forests.py").write_text(FORESTS)
    (folder / "code" / "flow_dense.py").write_text(DENSE)
    (folder / "mlops.yaml").write_text(PROJECT)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    rows = elsewhere / "rows.csv"
    digits.drop(columns="target").iloc[:300].to_csv(rows, index=False)
    return {
        "folder": folder,
        "home": module_home,
        "env": dict(os.environ),  # MLOPS_HOME: the module's; no serve check
        "elsewhere": elsewhere,
        "rows": rows,
        "client": MlflowClient(f"sqlite:///{module_home / 'mlflow.db'}"),
    }


@pytest.fixture(scope="module")
def forest(project):
    """`mlops train` in the project's folder: its mlops.yaml is found there."""
    done = run_mlops(
        "train", "--model-name", "forest", "--json", env=project["env"], cwd=project["folder"]
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def dense(project):
    """`mlops train --project FILE` from another folder: its paths are the file's."""
    done = run_mlops(
        "train", "--project", str(project["folder"] / "mlops.yaml"), "--model-name", "dense",
        "--json", env=project["env"], cwd=project["elsewhere"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def load_elsewhere(project, model: str, module: str) -> dict:
    """The champion loaded by mlflow.pyfunc in a fresh process started in another folder,
    with nothing of the project on its path: the registry's address is all it is given."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLOPS_HOME")}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project['home'] / 'mlflow.db'}"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOAD), model, str(project["rows"]), module],
        cwd=project["elsewhere"], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def accuracy(predictions: list, digits) -> float:
    labels = digits["target"].iloc[: len(predictions)].tolist()
    return sum(p == t for p, t in zip(predictions, labels, strict=True)) / len(labels)


def test_failing_candidates_are_named_and_the_users_forest_becomes_champion(
    forest, project, tmp_path
):
    code = project["folder"] / "code" / "flow_forests.py"
    assert (forest["family"], forest["version"], forest["alias"]) == ("my_forest", "1", "champion")
    assert forest["candidates"] == ["my_forest"]
    assert forest["failed_candidates"] == {
        "explodes": f"candidate explodes ({code}:explode) failed: RuntimeError: the GPU quota "
        "is spent",
        "text": f"candidate text ({code}:text) returned str, not a Keras model or an unfitted "
        "scikit-learn estimator",
    }
    assert forest["metrics"]["test_accuracy"] > 0.9
    client = project["client"]
    version = client.get_model_version_by_alias("forest", "champion")
    assert version.tags["model_family"] == "my_forest"
    run = client.get_run(forest["run_id"])
    assert run.data.tags["mlops.failed.explodes"] == forest["failed_candidates"]["explodes"]
    assert run.data.tags["mlops.failed.text"] == forest["failed_candidates"]["text"]
    assert "my_forest.test_accuracy" in run.data.metrics
    card = client.download_artifacts(forest["run_id"], "model_card/model_card.md", str(tmp_path))
    text = Path(card).read_text()
    assert f"`my_forest` is the user's own code: `{code}:forest`." in text
    assert "Candidates whose code failed (not scored):" in text
    assert f"- `text`: {forest['failed_candidates']['text']}" in text


def test_the_forest_loads_in_a_fresh_process_elsewhere_with_its_code(forest, project, digits):
    loaded = load_elsewhere(project, "forest", "flow_forests")
    # Its own class came from the code stored beside the model, not from the project folder.
    assert loaded["module"].startswith(str(project["home"]))
    assert loaded["built"] == [
        "flow_forests.Ink",
        "sklearn.ensemble._forest.RandomForestClassifier",
        40,
    ]
    assert accuracy(loaded["predictions"], digits) > 0.9


def test_a_keras_candidate_alone_is_registered_and_loads_in_a_fresh_process(dense, project, digits):
    assert (dense["family"], dense["version"], dense["alias"]) == ("dense", "1", "champion")
    assert dense["candidates"] == ["dense"] and dense["failed_candidates"] == {}
    history = project["client"].get_metric_history(dense["run_id"], "dense.val_loss")
    assert [m.step for m in history] == [1, 2, 3]  # the declared epochs
    loaded = load_elsewhere(project, "dense", "flow_dense")
    assert loaded["module"].startswith(str(project["home"]))
    assert loaded["built"] == [32, 10]  # the user's layers, with their params
    assert accuracy(loaded["predictions"], digits) > 0.8


def test_a_model_whose_only_candidate_fails_is_refused_in_one_line(project):
    code = project["folder"] / "code" / "flow_forests.py"
    done = run_mlops(
        "train", "--model-name", "broken", "--json", env=project["env"], cwd=project["folder"]
    )
    assert done.returncode == 1 and done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: no candidate could be trained: candidate explodes ({code}:explode) failed: "
        "RuntimeError: the GPU quota is spent"
    ]
    assert done.stderr.rstrip().endswith(errors[0])
    assert project["client"].search_registered_models("name = 'broken'") == []
