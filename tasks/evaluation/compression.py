"""Compact files of a trained model for efficient inference: the network quantized to an int8
TFLite file, a scikit-learn estimator as ONNX; each measured on the test rows against the
model as trained (float32), and kept only when it scores within a tolerance of it."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.errors import PlatformError, first_line
from tasks.evaluation.promotion import improvement
from tasks.evaluation.scoring import score_predictions, score_probabilities
from tasks.models.families import KERAS_FAMILY as NETWORK_FAMILY

logger = logging.getLogger(__name__)

TFLITE, ONNX, KERAS = "tflite", "onnx", "keras"
# Where a kept file lies among the run's artifacts.
ARTIFACT_DIR = "compression"
FILE_NAMES = {TFLITE: "model.tflite", ONNX: "model.onnx"}
# Timed passes over the test rows, after one to warm up (the fastest is reported): one, so
# that the training job pays little for it; the benchmark times a larger batch.
TIMED_PASSES = 1


class ExportRefused(PlatformError):
    """A format the model's family cannot take, or a variant that was not kept."""


def formats(family: str) -> tuple[str, ...]:
    """The formats a family exports to, the default first."""
    return (TFLITE, KERAS) if family == NETWORK_FAMILY else (ONNX,)


def check_format(family: str, chosen: str) -> None:
    if chosen not in formats(family):
        raise ExportRefused(
            f"{family} models export as {' or '.join(formats(family))}, not as {chosen}"
        )


@dataclass(frozen=True)
class Compression:
    """A compact variant of a version against the model as trained, on the same test rows:
    ``metric`` (accuracy; a regressor's primary error), file size and latency per 1,000
    rows. ``kept`` says whether the file was stored; ``reason`` why or why not."""

    format: str
    metric: str
    kept: bool
    reason: str
    encoded: bool = False  # the file reads the encoder's output, not the feature columns
    tolerance: float | None = None  # the most it might lose and still be kept
    score: float | None = None
    float_score: float | None = None
    size_bytes: int | None = None
    float_size_bytes: int | None = None
    latency_ms_per_1k: float | None = None
    float_latency_ms_per_1k: float | None = None

    def tags(self) -> dict[str, str]:
        """The version's tags: compression_format, compression_kept, compression_<metric>..."""
        measured = {
            self.metric: self.score,
            f"float_{self.metric}": self.float_score,
            "size_bytes": self.size_bytes,
            "float_size_bytes": self.float_size_bytes,
            "latency_ms_per_1k": self.latency_ms_per_1k,
            "float_latency_ms_per_1k": self.float_latency_ms_per_1k,
            "tolerance": self.tolerance,
        }
        tags = {
            "format": self.format,
            "kept": str(self.kept).lower(),
            "reason": self.reason[:5000],
            "metric": self.metric,
            "inputs": "encoded" if self.encoded else "features",
        } | {k: f"{v:.6g}" for k, v in measured.items() if v is not None}
        return {f"compression_{k}": v for k, v in tags.items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Compression | None:
        """What a version's tags recorded (None for a version registered before them)."""
        if "compression_format" not in tags:
            return None
        metric = tags["compression_metric"]

        def number(key: str, kind: type = float):
            value = tags.get(f"compression_{key}")
            return None if value is None else kind(float(value))

        return cls(
            tags["compression_format"],
            metric,
            tags["compression_kept"] == "true",
            tags["compression_reason"],
            tags.get("compression_inputs") == "encoded",
            number("tolerance"),
            number(metric),
            number(f"float_{metric}"),
            number("size_bytes", int),
            number("float_size_bytes", int),
            number("latency_ms_per_1k"),
            number("float_latency_ms_per_1k"),
        )

    def summary(self) -> str:
        """One line for the model card."""
        if self.score is None:
            return f"{self.format}: {self.reason}"
        return (
            f"{self.format} {self.metric} {self.score:.4f} against {self.float_score:.4f} as "
            f"trained; {self.size_bytes:,} bytes against {self.float_size_bytes:,}; "
            f"{self.latency_ms_per_1k:.3g} ms per 1,000 rows against "
            f"{self.float_latency_ms_per_1k:.3g}: {'kept' if self.kept else 'not kept'}, "
            f"{self.reason}"
        )


def compress(
    family: str,
    estimator: Any,
    X_test,
    y_test,
    metric: str,
    float_score: float,
    tolerance: float,
    encoded: bool,
    folder: Path,
) -> tuple[Compression, Path | None]:
    """The chosen candidate's compact variant, written into ``folder`` and measured on the
    test rows against the float32 model (whose test score is ``float_score``); the file's
    path when it is kept. Never raises: a runtime that is absent or a converter that fails
    is recorded as the reason compression was skipped.

    With ``encoded`` features (categories, missing numbers) the network's file reads what
    its encoder makes of the rows; a scikit-learn estimator's preprocessing of them is not
    converted, so it gets no ONNX file."""
    chosen = formats(family)[0]
    try:
        if family == NETWORK_FAMILY:
            if (backend := _keras_backend()) != "tensorflow":
                why = f"Keras runs on {backend}; a TFLite file is made from TensorFlow's"
                return skipped(chosen, metric, why), None
            made = _network_variant(estimator, folder)
        elif encoded:
            why = "the preprocessing of mixed-type features is not converted to ONNX"
            return skipped(chosen, metric, why), None
        else:
            made = _onnx_variant(estimator, X_test, folder)
    except ImportError as exc:
        return skipped(chosen, metric, f"{exc.name or 'a runtime'} is not installed"), None
    except Exception as exc:  # a converter's failure must not fail the training run
        logger.warning("No %s variant of the %s model: %s", chosen, family, first_line(exc))
        return skipped(chosen, metric, f"conversion failed: {first_line(exc, 160)}"), None
    path, float_bytes, predict, float_predict = made
    outputs = predict(X_test)
    if hasattr(estimator, "classes_"):
        score = score_probabilities(y_test, outputs, estimator.classes_)[metric]
    else:
        score = score_predictions(y_test, np.ravel(outputs))[metric]
    change = improvement(metric, score, float_score)
    kept = change >= -tolerance
    lost = f"{metric} {'changes' if change >= 0 else 'loses'} {abs(change):.4g}"
    reason = f"{lost}, {'within' if kept else 'more than'} the tolerance of {tolerance:g}"
    found = Compression(
        chosen, metric, kept, reason, encoded, tolerance,
        score=score,
        float_score=float_score,
        size_bytes=path.stat().st_size,
        float_size_bytes=float_bytes,
        latency_ms_per_1k=latency_ms_per_1k(predict, X_test),
        float_latency_ms_per_1k=latency_ms_per_1k(float_predict, X_test),
    )  # fmt: skip
    logger.info("Compressed the %s model: %s", family, found.summary())
    return found, path if kept else None


def _keras_backend() -> str:
    import keras

    return keras.backend.backend()


def skipped(chosen: str, metric: str, why: str) -> Compression:
    return Compression(chosen, metric, False, f"skipped: {why}")


def latency_ms_per_1k(predict: Callable[[Any], Any], X) -> float:
    """Milliseconds ``predict`` takes per 1,000 of the rows, all of them in one call: the
    fastest of TIMED_PASSES after a first, warming call."""
    predict(X)
    fastest = float("inf")
    for _ in range(TIMED_PASSES):
        start = time.perf_counter()
        predict(X)
        fastest = min(fastest, time.perf_counter() - start)
    return fastest * 1000 * 1000 / len(X)


def _network_variant(estimator, folder: Path):
    """The network's int8 TFLite file (post-training dynamic-range quantization: weights in
    int8, activations in float), its interpreter, and the float32 network saved for serving."""
    import tensorflow as tf

    from tasks.models.architecture import serving_network

    served = serving_network(estimator.model_)
    served.save(folder / "network.keras")
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the graph it exports
        converter = tf.lite.TFLiteConverter.from_keras_model(served)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        path = folder / FILE_NAMES[TFLITE]
        path.write_bytes(converter.convert())
    run = tflite_runner(path)

    def float_predict(X):
        return served.predict(estimator._inputs(X), batch_size=4096, verbose=0)

    return (
        path,
        (folder / "network.keras").stat().st_size,
        lambda X: run(estimator._inputs(X)),
        float_predict,
    )


def tflite_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A TFLite file's predictions of float32 rows, by LiteRT where installed, else by
    TensorFlow's interpreter."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter

    interpreter = Interpreter(model_path=str(path))
    given, made = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(rows: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(given["index"], rows.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(given["index"], np.ascontiguousarray(rows, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(made["index"])

    return run


def _onnx_variant(estimator, X_test, folder: Path):
    """The estimator as ONNX (skl2onnx; class probabilities as a plain tensor), its
    onnxruntime session, and the estimator pickled as the registered model keeps it."""
    import joblib
    from skl2onnx import to_onnx

    classifier = hasattr(estimator, "classes_")
    rows = np.asarray(X_test, dtype=np.float32)
    model = to_onnx(estimator, rows[:1], options={"zipmap": False} if classifier else None)
    path = folder / FILE_NAMES[ONNX]
    path.write_bytes(model.SerializeToString())
    joblib.dump(estimator, folder / "estimator.joblib")
    run = onnx_runner(path)
    float_predict = estimator.predict_proba if classifier else estimator.predict
    return (
        path,
        (folder / "estimator.joblib").stat().st_size,
        lambda X: run(np.asarray(X, dtype=np.float32)),
        float_predict,
    )


def onnx_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """An ONNX file's class probabilities (a classifier's) or predictions of float32 rows,
    by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    wanted = "probabilities" if "probabilities" in outputs else outputs[0]

    def run(rows: np.ndarray) -> np.ndarray:
        return session.run([wanted], {name: rows})[0]

    return run
