"""Where Keras trains: the strategy for no, one and several GPUs."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tasks.models.devices import choose_strategy, detect_device


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible")
def test_without_a_gpu_training_runs_on_the_cpu_in_float32():
    assert detect_device().as_params() == {
        "device_backend": "tensorflow",
        "device_device": "cpu",
        "device_accelerators": 0,
        "device_strategy": "default",
        "device_precision": "float32",
        "device_replicas": 1,
        "device_steps_per_execution": 32,
    }


@pytest.mark.parametrize(
    ("backend", "gpus", "device", "strategy", "precision", "replicas", "steps"),
    [
        ("tensorflow", 0, "cpu", "default", "float32", 1, 32),
        ("tensorflow", 1, "gpu", "default", "mixed_float16", 1, 32),
        ("tensorflow", 4, "gpu", "mirrored", "mixed_float16", 4, 32),
        ("jax", 0, "cpu", "default", "float32", 1, 1),
        ("jax", 4, "gpu", "data_parallel", "mixed_float16", 4, 1),
        ("torch", 4, "gpu", "default", "mixed_float16", 1, 1),  # Keras's fit() stays on one GPU
    ],
)
def test_strategy_for_no_one_and_several_gpus(
    backend, gpus, device, strategy, precision, replicas, steps
):
    chosen = choose_strategy(backend, gpus)
    assert chosen.as_params() == {
        "device_backend": backend,
        "device_device": device,
        "device_accelerators": gpus,
        "device_strategy": strategy,
        "device_precision": precision,
        "device_replicas": replicas,
        "device_steps_per_execution": steps,
    }
    assert chosen.global_batch_size(64) == 64 * replicas
