"""What the flat layout of tasks/ stored still loads and predicts after the move to stage
packages: a registered model, loaded as a user's service would, and a persisted fit result
whose pickle names `tasks.network.KerasMLPClassifier`. Both were made by the previous layout
(tests/fixtures/legacy: a mixed-type table with a text category), with their predictions."""

import json
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pandas as pd

LEGACY = Path(__file__).resolve().parents[2] / "fixtures" / "legacy"
FEATURES = ["colour", "size", "weight"]


def test_a_version_registered_by_the_flat_layout_still_predicts(tmp_path):
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "rows = pd.read_csv(sys.argv[2])\n"
        "out = mlflow.pyfunc.load_model(sys.argv[1]).predict(rows[sys.argv[3].split(',')])\n"
        "print(json.dumps(out['prediction'].tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(LEGACY / "model"), str(LEGACY / "rows.csv"),
         ",".join(FEATURES)],
        cwd=tmp_path,  # a fresh process in another folder, as a user's service loads it
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    expected = pd.read_csv(LEGACY / "rows.csv")["registered_prediction"].tolist()
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_a_fit_persisted_by_the_flat_layout_still_loads_and_predicts():
    pickled = (LEGACY / "keras_fit.pickle").read_bytes()
    assert b"tasks.network" in pickled  # the module name of the flat layout
    network = cloudpickle.loads(pickled)
    assert type(network).__module__ == "tasks.models.network"
    rows = pd.read_csv(LEGACY / "rows.csv")
    assert network.predict(rows[FEATURES]).tolist() == rows["network_prediction"].tolist()
