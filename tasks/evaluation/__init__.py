"""Evaluation: test metrics and plots, bootstrap intervals and paired comparisons, slices,
permutation importance, the promotion policy that weighs a new version against the champion,
the hyper-parameter sweep, and the compact (int8 TFLite, ONNX) variants measured against the
model as trained.

May import: ``tasks.core``, ``tasks.data``, ``tasks.quality``, ``tasks.models``."""
