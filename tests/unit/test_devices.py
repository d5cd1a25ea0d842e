"""Where Keras trains: the strategy for no, one and several GPUs."""

from __future__ import annotations

import pytest

from tasks.devices import choose_strategy, detect_device


def test_device_names_what_the_backend_sees():
    device = detect_device()
    assert device.backend == "tensorflow"
    assert device.device == ("gpu" if device.accelerators else "cpu")
    assert device == choose_strategy("tensorflow", device.accelerators)
    assert device.as_params()["device_device"] == device.device


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
