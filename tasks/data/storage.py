"""boto3 / S3: reading and writing objects, with bounded retries and errors that say what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from tasks.core.errors import PlatformError

# Transient faults (connection refused or reset, 5xx, throttling) are retried by botocore's
# "standard" mode with exponential backoff; these bound how long that can take.
_ATTEMPTS = 4
_CONNECT_TIMEOUT = 3
_READ_TIMEOUT = 30


class StorageError(PlatformError):
    """S3 refused or could not be reached; the message names the endpoint and the bucket."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, *parts: str) -> S3Location:
        key = "/".join(p.strip("/") for p in (self.key, *parts) if p.strip("/"))
        return S3Location(self.bucket, key)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def local_path(uri: str) -> Path:
    """The file a ``file:`` URI names (its percent-escapes decoded: a home with a space in
    its path is ``my%20home`` in the URI), or a plain path as it is."""
    if uri.startswith("file:"):
        return Path(url2pathname(urlparse(uri).path))
    return Path(uri)


def parse(uri: str) -> S3Location:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an S3 URI: {uri!r} (expected s3://bucket/key)")
    return S3Location(parsed.netloc, parsed.path.lstrip("/"))


def client(endpoint_url: str | None = None):
    """An S3 client from the standard AWS settings (variables, profiles, AWS_ENDPOINT_URL_S3,
    which settings also fill from MLflow's MLFLOW_S3_ENDPOINT_URL)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": _ATTEMPTS, "mode": "standard"},
        connect_timeout=_CONNECT_TIMEOUT,
        read_timeout=_READ_TIMEOUT,
    )
    # A new session each time: the default one caches credentials, and a long-running
    # `mlops serve` must see rotated keys.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _describe(s3, location: S3Location) -> str:
    return f"bucket '{location.bucket}' at {s3.meta.endpoint_url}"


def _explain(s3, location: S3Location, exc: Exception) -> StorageError:
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    where = _describe(s3, location)
    if isinstance(exc, NoCredentialsError):
        return StorageError(f"no AWS credentials for {where}: set AWS_ACCESS_KEY_ID / a profile")
    if isinstance(exc, EndpointConnectionError):
        return StorageError(
            f"cannot reach the S3 endpoint {s3.meta.endpoint_url} for bucket "
            f"'{location.bucket}' after {_ATTEMPTS} attempts: is it running? "
            "(AWS_ENDPOINT_URL_S3 / MLFLOW_S3_ENDPOINT_URL)"
        )
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchBucket", "404") and not location.key:
            return StorageError(f"{where} does not exist: create it or fix MLOPS_ARTIFACT_URI")
        if code in ("NoSuchBucket",):
            return StorageError(f"{where} does not exist: create it or fix the URI")
        if code in ("NoSuchKey", "404"):
            return StorageError(f"no object {location.uri} in {where}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageError(
                f"access to {where} denied ({code}): check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY or the profile"
            )
        return StorageError(f"S3 refused {location.uri} at {s3.meta.endpoint_url}: {code}")
    return StorageError(f"S3 failed for {location.uri} at {s3.meta.endpoint_url}: {exc}")


def check_bucket(uri: str) -> None:
    """Fail fast, before any work, when the bucket is missing, unreachable or forbidden."""
    from botocore.exceptions import BotoCoreError, ClientError

    location = parse(uri)
    s3 = client()
    try:
        s3.head_bucket(Bucket=location.bucket)
    except (BotoCoreError, ClientError) as exc:
        raise _explain(s3, S3Location(location.bucket, ""), exc) from exc


def _transfer(uri: str, call):
    """`call(s3, location)`, with S3 failures explained in one line naming the object."""
    from botocore.exceptions import BotoCoreError, ClientError

    location = parse(uri)
    s3 = client()
    try:
        return call(s3, location)
    except (BotoCoreError, ClientError) as exc:
        raise _explain(s3, location, exc) from exc


def read_bytes(uri: str) -> bytes:
    return _transfer(uri, lambda s3, at: s3.get_object(Bucket=at.bucket, Key=at.key)["Body"].read())


def write_bytes(uri: str, payload: bytes) -> str:
    _transfer(uri, lambda s3, at: s3.put_object(Bucket=at.bucket, Key=at.key, Body=payload))
    return parse(uri).uri


def download(uri: str, path: Path) -> None:
    """Stream an object into a local file, in bounded memory whatever its size."""
    _transfer(uri, lambda s3, at: s3.download_file(at.bucket, at.key, str(path)))


def upload(path: Path, uri: str) -> str:
    """A local file as one object (multipart when large): it appears only once complete."""
    _transfer(uri, lambda s3, at: s3.upload_file(str(path), at.bucket, at.key))
    return parse(uri).uri


def exists(uri: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    location = parse(uri)
    s3 = client()
    try:
        s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
            return False
        raise _explain(s3, location, exc) from exc
    except BotoCoreError as exc:
        raise _explain(s3, location, exc) from exc
    return True


def delete(uri: str) -> None:
    """Remove an object (a missing one is no error: S3 answers a delete of it with success)."""
    _transfer(uri, lambda s3, at: s3.delete_object(Bucket=at.bucket, Key=at.key))
