"""Where Keras trains: the GPUs the active backend sees, and what training does with them (one
pure function of the backend and the count)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

# How the several-GPU case replicates the model, per Keras backend. PyTorch has no entry: Keras's
# own fit() does not distribute on it, so a PyTorch run trains on the first GPU.
_DATA_PARALLEL = {"tensorflow": "mirrored", "jax": "data_parallel"}


# Batches TensorFlow runs per call of the compiled training step (Keras's steps_per_execution).
# A batch of this small network is little arithmetic next to a call of the compiled function,
# so several batches a call make a fold faster, and folds side by side slow each other less
# with fewer hand-offs between Python's thread and TensorFlow's (see docs/decisions.md).
# Keras runs at most an epoch per call; the trained weights are the same. On JAX the steps are
# a Python loop anyway, and PyTorch refuses anything but 1.
_TF_STEPS_PER_EXECUTION = 32


@dataclass(frozen=True)
class DeviceStrategy:
    """Where Keras trains: what is visible, and what the training code does with it."""

    backend: str
    device: str
    accelerators: int
    strategy: str
    precision: str
    replicas: int
    steps_per_execution: int

    def as_params(self) -> dict[str, str | int]:
        return {f"device_{key}": value for key, value in asdict(self).items()}

    def global_batch_size(self, per_replica: int) -> int:
        """The batch fit() is given: each replica takes ``per_replica`` rows of it."""
        return per_replica * self.replicas

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Build and fit inside this: the precision policy and, for several GPUs, the replicas.

        The global dtype policy is restored on the way out; a model built inside keeps its own.
        """
        import keras

        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_dtype_policy(self.precision)
        try:
            with self._replicated():
                yield
        finally:
            keras.mixed_precision.set_dtype_policy(previous)

    def _replicated(self) -> contextlib.AbstractContextManager:
        if self.strategy == "mirrored":
            import tensorflow as tf

            return tf.distribute.MirroredStrategy().scope()
        if self.strategy == "data_parallel":
            import keras

            gpus = keras.distribution.list_devices("gpu")
            return keras.distribution.DataParallel(devices=gpus).scope()
        return contextlib.nullcontext()


def choose_strategy(backend: str, gpus: int) -> DeviceStrategy:
    """What training does with ``gpus`` GPUs on a Keras backend (a pure function of the two).

    None: float32 on the CPU. One: Keras places the work on it; mixed float16 (the output layer
    stays float32). Several: one replica per GPU (``tf.distribute.MirroredStrategy`` on
    TensorFlow, ``keras.distribution.DataParallel`` on JAX), the global batch scaled to match.
    TensorFlow runs several batches per call of its compiled step, on every device.
    """
    parallel = _DATA_PARALLEL.get(backend) if gpus > 1 else None
    return DeviceStrategy(
        backend=backend,
        device="gpu" if gpus else "cpu",
        accelerators=gpus,
        strategy=parallel or "default",
        precision="mixed_float16" if gpus else "float32",
        replicas=gpus if parallel else 1,
        steps_per_execution=_TF_STEPS_PER_EXECUTION if backend == "tensorflow" else 1,
    )


def detect_device() -> DeviceStrategy:
    """The strategy for the GPUs visible to the active Keras backend."""
    import keras

    backend = keras.backend.backend()
    count = 0
    if backend == "tensorflow":
        import tensorflow as tf

        count = len(tf.config.list_physical_devices("GPU"))
    elif backend == "jax":
        import jax

        count = sum(d.platform == "gpu" for d in jax.devices())
    elif backend == "torch":
        import torch

        count = torch.cuda.device_count()
    return choose_strategy(backend, count)
