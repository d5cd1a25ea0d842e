"""Models: the candidates a job fits (the Keras network and the scikit-learn baselines),
the preprocessing kept inside each, the device Keras trains on, rows streamed to the fit,
and the per-epoch backups a crashed fit resumes from.

May import: ``tasks.core``, ``tasks.data``."""
