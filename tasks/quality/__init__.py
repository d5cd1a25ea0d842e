"""Data quality: Great Expectations suites and their reports, suites suggested from good
data, the profile of a version's training data, drift of new data against it, and the
monitoring of prediction batches.

May import: ``tasks.core``, ``tasks.data``."""
