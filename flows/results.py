"""Where Prefect keeps task results: under the platform's artifact root, S3 included, signed.

A persisted result is what lets a rerun of the same job pick up the steps a crashed run had
finished. It is a pickle, and loading a pickle runs whatever code it names: whoever can write
the artifact root could make the next run that resumes from it run theirs. So every record is
stored behind an HMAC-SHA256 of its bytes, keyed by a secret the bucket does not hold
(`Settings.results_signing_key`), and a record whose signature does not verify is never handed
to Prefect to deserialize: Prefect then finds no result, and the step recomputes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from pathlib import Path

from prefect.filesystems import WritableFileSystem
from pydantic import PrivateAttr

from tasks.data import storage
from tasks.platform.settings import Settings

logger = logging.getLogger(__name__)

RESULTS_FOLDER = "prefect-results"
_SIGNED = b"mlops-hmac-sha256:"


class SignatureError(ValueError):
    """A persisted result that this platform did not write, or that changed since."""


def sign(key: bytes, content: bytes) -> bytes:
    """``content`` behind a line holding its HMAC-SHA256 under ``key``."""
    return _SIGNED + hmac.new(key, content, hashlib.sha256).hexdigest().encode() + b"\n" + content


def verified(key: bytes, record: bytes) -> bytes:
    """The content of a signed record; SignatureError when its signature does not verify."""
    header, _, content = record.partition(b"\n")
    expected = sign(key, content).partition(b"\n")[0]
    if not hmac.compare_digest(header, expected):
        raise SignatureError("its signature does not verify")
    return content


class SignedResults(WritableFileSystem):
    """Prefect result storage in a folder or an S3 prefix (any S3-compatible endpoint), each
    record signed; the signing key is read from the settings, never stored in the block."""

    _block_type_name = "MLOps signed results"
    basepath: str
    _signing_key: bytes | None = PrivateAttr(default=None)  # never part of the saved document

    def _key(self) -> bytes:
        """The key the flow gave (`result_storage`); a copy Prefect loaded from its server
        reads it from the settings."""
        return self._signing_key or Settings().results_signing_key()

    def _uri(self, path: str) -> str:
        if storage.is_s3(self.basepath):
            return storage.parse(self.basepath).child(path).uri
        return str(storage.local_path(self.basepath) / path)

    def read_path(self, path: str, _sync: bool = True) -> bytes:
        uri = self._uri(path)
        if storage.is_s3(uri):
            record = storage.read_bytes(uri)
        else:
            with open(uri, "rb") as handle:  # a missing record raises: Prefect has none
                record = handle.read()
        try:
            return verified(self._key(), record)
        except SignatureError:
            logger.warning("Persisted result %s failed its signature: recomputed", uri)
            raise

    def write_path(self, path: str, content: bytes, _sync: bool = True) -> str:
        uri, record = self._uri(path), sign(self._key(), content)
        if storage.is_s3(uri):
            return storage.write_bytes(uri, record)
        target = Path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(record)
        partial.replace(target)  # a reader sees the whole record or none
        return str(target)

    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read_path, path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        return await asyncio.to_thread(self.write_path, path, content)


def result_storage(settings: Settings) -> SignedResults:
    """The block for this artifact root: Prefect wants result storage blocks saved on its
    server (the document holds the location only; credentials and the key stay out of it)."""
    basepath = f"{settings.resolved_artifact_uri.rstrip('/')}/{RESULTS_FOLDER}"
    block = SignedResults(basepath=basepath)
    name = f"mlops-results-{hashlib.sha256(basepath.encode()).hexdigest()[:12]}"
    block.save(name, overwrite=True)
    block._signing_key = settings.results_signing_key()
    return block
