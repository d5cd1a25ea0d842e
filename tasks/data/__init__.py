"""The data path: data URIs read into tables (files, S3 through boto3, the bundled sets),
content-addressed snapshots of the exact rows, feature types and the task a label implies,
and the seeded train / validation / test split.

May import: ``tasks.core``."""
