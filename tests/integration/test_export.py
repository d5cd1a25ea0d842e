"""`mlops export` as a user runs it: the file it writes loads in its own runtime, in a fresh
process, and predicts what the registered model predicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_mlops
from mlflow import MlflowClient

from tasks.models import training
from tasks.platform.settings import load_settings
from tasks.registry import packaging

pytestmark = pytest.mark.slow

# Run in a fresh interpreter: the file and its runtime alone, none of the platform's code.
PREDICT = {
    "onnx": """
import onnxruntime
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
out = session.run(["probabilities"], {session.get_inputs()[0].name: rows})[0]
""",
    "tflite": """
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=path)
given, made = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
interpreter.resize_tensor_input(given["index"], rows.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(given["index"], rows)
interpreter.invoke()
out = interpreter.get_tensor(made["index"])
""",
    "keras": """
import keras
out = keras.saving.load_model(path).predict(rows, verbose=0)
""",
}


def mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_mlops(*args, env={**os.environ, **(env or {})})


def export(*args: str) -> dict:
    done = mlops("export", *args, "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_process_outputs(kind: str, path: str, rows: np.ndarray, folder: Path) -> np.ndarray:
    """The exported file's outputs of ``rows``, computed in a new Python process."""
    np.save(folder / "rows.npy", rows)
    script = f"import numpy as np\npath = {path!r}\nrows = np.load({str(folder / 'rows.npy')!r})\n"
    script += PREDICT[kind] + f"np.save({str(folder / 'out.npy')!r}, np.asarray(out))\n"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    return np.load(folder / "out.npy")


def registered_outputs(name: str, version: str, frame) -> tuple[np.ndarray, np.ndarray]:
    """The classes and class probabilities the registered version gives the rows."""
    model = packaging.load_model(load_settings(), f"models:/{name}/{version}")
    return packaging.class_probabilities(model.predict(frame))


@pytest.fixture(scope="module")
def trained(module_home, prefect_api):
    """The default job (an SVM wins on digits), and a job whose only candidate is the
    network (so that a network version is registered)."""
    done = mlops("train", "--epochs", "5", "--json", env={"PREFECT_API_URL": prefect_api})
    assert done.returncode == 0, done.stderr[-3000:]
    from flows.training import training_flow
    from tasks.models.custom import CandidateEntry

    network = training_flow(
        model_name="digits-net",
        suite="digits",
        epochs=8,
        candidates=[CandidateEntry(entry=training.KERAS_FAMILY)],
    )
    return {"default": json.loads(done.stdout.strip().splitlines()[-1]), "network": network}


def test_a_scikit_learn_champion_exports_to_onnx_that_predicts_as_registered(
    trained, digits, tmp_path
):
    assert trained["default"]["family"] != training.KERAS_FAMILY
    out = tmp_path / "digits.onnx"
    result = export("digits", "--out", str(out))
    assert (result["format"], result["path"], result["version"]) == ("onnx", str(out), "1")
    assert result["size_bytes"] == out.stat().st_size > 0 and result["float_size_bytes"] > 0
    assert result["float_test_accuracy"] == pytest.approx(
        trained["default"]["metrics"]["test_accuracy"], abs=1e-5
    )
    assert abs(result["test_accuracy"] - result["float_test_accuracy"]) <= 0.01
    assert result["latency_ms_per_1k"] > 0
    card = Path(
        MlflowClient(load_settings().resolved_tracking_uri).download_artifacts(
            trained["default"]["run_id"], "model_card/model_card.md", str(tmp_path)
        )
    ).read_text()
    assert "## Compressed for efficient inference\n\n- onnx test_accuracy" in card
    assert "kept, test_accuracy changes 0" in card
    columns = result["inputs"]["columns"]
    assert result["inputs"]["encoded"] is False and len(columns) == 61  # blank pixels left out
    outputs = fresh_process_outputs("onnx", str(out), digits[columns].to_numpy("float32"), tmp_path)
    classes, probabilities = registered_outputs("digits", "1", digits)
    np.testing.assert_allclose(outputs, probabilities, atol=1e-4)
    assert (classes[outputs.argmax(axis=1)] == classes[probabilities.argmax(axis=1)]).all()


def test_a_network_exports_its_int8_variant_that_predicts_as_registered(trained, digits, tmp_path):
    version = trained["network"]["version"]
    out = tmp_path / "net.tflite"
    result = export("digits-net@champion", "--out", str(out))
    assert result["format"] == "tflite" and result["version"] == version
    assert result["size_bytes"] < result["float_size_bytes"] / 2
    tags = (
        MlflowClient(load_settings().resolved_tracking_uri)
        .get_model_version("digits-net", version)
        .tags
    )
    tolerance = float(tags["compression_tolerance"])
    assert tags["compression_kept"] == "true" and tolerance == 0.01
    assert abs(result["test_accuracy"] - result["float_test_accuracy"]) <= tolerance
    rows = digits[result["inputs"]["columns"]].to_numpy("float32")
    outputs = fresh_process_outputs("tflite", str(out), rows, tmp_path)
    classes, probabilities = registered_outputs("digits-net", version, digits)
    agree = classes[outputs.argmax(axis=1)] == classes[probabilities.argmax(axis=1)]
    assert agree.mean() >= 1 - tolerance


def test_a_network_exports_its_float32_network_on_request(trained, digits, tmp_path):
    version = trained["network"]["version"]
    out = tmp_path / "net.keras"
    result = export("digits-net", "--version", version, "--format", "keras", "--out", str(out))
    assert result["format"] == "keras" and result["size_bytes"] == result["float_size_bytes"]
    assert result["test_accuracy"] == result["float_test_accuracy"]
    rows = digits[result["inputs"]["columns"]].to_numpy("float32")
    outputs = fresh_process_outputs("keras", str(out), rows, tmp_path)
    _, probabilities = registered_outputs("digits-net", version, digits)
    np.testing.assert_allclose(outputs, probabilities, atol=1e-5)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("digits", "--format", "tflite"), "error: {family} models export as onnx, not as"),
        (("digits-net", "--format", "onnx"), "keras_mlp models export as tflite or keras, not"),
        (("nope",), "error: no registered model named 'nope'"),
        (("digits@challenger",), "error: no version of digits holds the alias 'challenger'"),
        (("digits", "--version", "9"), "error: digits has no version 9 (versions: 1)"),
    ],
)
def test_what_cannot_be_exported_is_refused_in_one_line(trained, tmp_path, args, words):
    out = tmp_path / "refused.bin"
    done = mlops("export", *args, "--out", str(out))
    assert done.returncode == 1
    assert words.format(family=trained["default"]["family"]) in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
