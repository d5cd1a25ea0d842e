"""How rows reach the network's fit: tf.data pipelines over in-memory arrays, and seeded
batches streamed from a Parquet file one row group at a time."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from sklearn.utils.multiclass import unique_labels

# Up to this many rows, an in-memory fit on TensorFlow reads them from a tf.data pipeline that
# holds them; above, from chunks of CHUNK_BATCHES batches of the array in NumPy (see
# tf_batches).
HELD_ROWS = 100_000
CHUNK_BATCHES = 64


# Taken by whatever sets the process's global seeds (Keras's, TensorFlow's, NumPy's) and uses
# them before another thread can set them again.
SEEDING = threading.Lock()


def tf_batches(
    X: np.ndarray,
    codes: np.ndarray,
    batch: int,
    shuffle_seed: int | None = None,
    held_rows: int = HELD_ROWS,
):
    """In-memory rows as one pass of tf.data batches, reshuffled every epoch with
    ``shuffle_seed`` (in their order without), and the Keras callbacks the pipeline needs.

    Up to ``held_rows`` rows, TensorFlow holds them (_held_batches); more stay in NumPy and reach
    TensorFlow a chunk at a time (chunked_batches). Keras's own adapter for arrays is neither:
    it sets up a parallel map, prefetching and autotuning threads for every epoch's iterators,
    which cost a fit of this small network much of its time and leave the cores idle at their
    hand-offs, and it converts the whole array into a tensor first, a second copy of the rows
    (figures in docs/decisions.md).
    """
    import tensorflow as tf

    if len(X) <= held_rows:
        rows, callbacks = _held_batches(X, codes, batch, shuffle_seed), []
    else:
        rows, follow = chunked_batches(X, codes, batch, shuffle_seed)
        callbacks = [follow]
    options = tf.data.Options()
    options.autotune.enabled = False  # its threads cost more than they save on this network
    return rows.with_options(options), callbacks


def _held_batches(X: np.ndarray, codes: np.ndarray, batch: int, shuffle_seed: int | None):
    """Slices of the rows held in TensorFlow, shuffled element by element, then batched: an
    epoch runs faster this way than through chunked_batches's generator."""
    import tensorflow as tf

    rows = tf.data.Dataset.from_tensor_slices((X, codes))
    if shuffle_seed is not None:
        # The shuffle's order comes from TensorFlow's global seed as well as its own: set here,
        # under the lock every setter of the process's seeds takes, so that neither an
        # earlier fit of the process nor a fit in another thread (the local sweep's) moves it.
        with SEEDING:
            tf.random.set_seed(shuffle_seed)
            rows = rows.shuffle(len(X), seed=shuffle_seed, reshuffle_each_iteration=True)
    return rows.batch(batch)


def chunked_batches(
    X: np.ndarray,
    codes: np.ndarray,
    batch: int,
    shuffle_seed: int | None,
    chunk_batches: int = CHUNK_BATCHES,
):
    """Chunks of ``chunk_batches`` batches that a generator gathers from the array in NumPy and
    tf.data cuts into batches; and a callback that tells the generator the epoch: epoch k
    reads the rows in an order drawn from (``shuffle_seed``, k) alone (a fit resumed at
    epoch k reads it as the uninterrupted fit did; Keras begins passes it drops, to build the
    model and at each epoch's end, and they change nothing).
    """
    import keras
    import tensorflow as tf

    size = batch * chunk_batches
    epoch = [0]

    def chunks():
        if shuffle_seed is None:
            order = np.arange(len(X))
        else:
            order = np.random.default_rng([shuffle_seed, epoch[0]]).permutation(len(X))
        for start in range(0, len(X), size):
            # Gathered, never sliced: TensorFlow may keep using a chunk's memory after the
            # generator let go of it, and a slice's is the array's own (a validation batch
            # then read other values: caught by the fits in threads test).
            rows = order[start : start + size]
            yield X[rows], codes[rows]

    signature = (
        tf.TensorSpec((None, X.shape[1]), tf.float32),
        tf.TensorSpec((None,), tf.as_dtype(codes.dtype)),
    )
    rows = tf.data.Dataset.from_generator(chunks, output_signature=signature).rebatch(batch)
    # Keras learns the steps of an epoch from the cardinality, which a generator lacks.
    rows = rows.apply(tf.data.experimental.assert_cardinality(-(-len(X) // batch)))
    follow = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda number, logs=None: epoch.__setitem__(0, number)
    )
    return rows, follow


def parquet_classes(path: str | Path, target: str) -> np.ndarray:
    """The sorted distinct labels of ``target``, read one row group of that column at a time."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    return unique_labels(
        *(
            pc.unique(file.read_row_group(group, columns=[target]).column(0)).to_numpy(
                zero_copy_only=False
            )
            for group in range(file.num_row_groups)
        )
    )


def parquet_batches(
    path: str | Path,
    target: str,
    classes: np.ndarray,
    batch_size: int,
    row_groups: Sequence[int],
    seed: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless (features, class codes) batches: every column but ``target`` is a feature.

    Each pass visits ``row_groups`` in a fresh seeded order and shuffles the rows within each,
    so only one row group is in memory at a time. One pass is ``parquet_steps`` batches.
    """
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    features = [name for name in file.schema_arrow.names if name != target]
    rng = np.random.default_rng(seed)
    while True:
        for group in rng.permutation(np.asarray(row_groups)):
            table = file.read_row_group(int(group), columns=[*features, target])
            X = np.column_stack([table[name].to_numpy() for name in features]).astype("float32")
            codes = np.searchsorted(classes, table[target].to_numpy(zero_copy_only=False))
            del table
            order = rng.permutation(len(codes))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                yield X[rows], codes[rows]


def parquet_steps(path: str | Path, row_groups: Sequence[int], batch_size: int) -> int:
    """Batches in one pass of ``parquet_batches`` (a batch never spans two row groups)."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    return sum(math.ceil(metadata.row_group(g).num_rows / batch_size) for g in row_groups)
