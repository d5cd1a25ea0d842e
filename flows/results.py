"""Where Prefect keeps task results: under the platform's artifact root, S3 included.

A persisted result is what lets a rerun of the same job pick up the steps a crashed run had
finished. A local root is a folder for Prefect's own file system storage; an S3 root goes
through the platform's boto3 client (its retries, its endpoint, its error messages), not a
second S3 stack.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from prefect.filesystems import WritableFileSystem

from tasks import storage
from tasks.settings import Settings

RESULTS_FOLDER = "prefect-results"


class BucketResults(WritableFileSystem):
    """Prefect result storage in an S3 bucket (any S3-compatible endpoint)."""

    _block_type_name = "MLOps bucket results"
    basepath: str

    def _uri(self, path: str) -> str:
        return storage.parse(self.basepath).child(path).uri

    def read_path(self, path: str, _sync: bool = True) -> bytes:
        return storage.read_bytes(self._uri(path))

    def write_path(self, path: str, content: bytes, _sync: bool = True) -> str:
        return storage.write_bytes(self._uri(path), content)

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


def result_storage(settings: Settings) -> Path | BucketResults:
    """A local folder, or the bucket's block: Prefect wants blocks saved on its server (the
    document holds the location only; credentials stay in the environment)."""
    if not settings.artifacts_on_s3:
        return settings.artifact_root / RESULTS_FOLDER
    basepath = f"{settings.resolved_artifact_uri.rstrip('/')}/{RESULTS_FOLDER}"
    block = BucketResults(basepath=basepath)
    name = f"mlops-results-{hashlib.sha256(basepath.encode()).hexdigest()[:12]}"
    block.save(name, overwrite=True)
    return block
