"""The archive store: the only module that knows whether the archive is a local directory or
an S3-compatible bucket. Everything else speaks in archive keys such as
``crawls/{crawl_id}/warc/{name}.warc.gz``.

Both backends have the same key layout and the same small interface: ``put_file`` (atomic: a
reader never sees a partial object), ``stat``, ``open`` (a streaming reader), ``read_range`` and
``list``; small shared state files are updated with ``get_versioned`` + ``put_bytes_if`` (a
compare-and-swap on the object's ETag, so concurrent writers never lose each other's updates).
"""

from __future__ import annotations

import configparser
import fcntl
import hashlib
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from crawler.config import ArchiveConfig
from crawler.errors import PreconditionFailed, StoreError
from crawler.files import fsync_dir, write_durably


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None


class ArchiveStore(Protocol):
    uri: str

    def put_file(self, path: Path, key: str, sha256: str) -> ObjectInfo: ...
    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...
    def stat(self, key: str) -> ObjectInfo | None: ...
    def open(self, key: str) -> IO[bytes]: ...
    def read_range(self, key: str, offset: int, length: int) -> bytes: ...
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...
    def get_versioned(self, key: str) -> tuple[bytes, str] | None: ...
    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str: ...


def update_object(store: ArchiveStore, key: str, change: Callable[[bytes], bytes],
                  attempts: int = 12) -> None:
    """Read-modify-write of a small shared object: `change` maps its bytes (b"" when missing) to
    the new bytes; a concurrent writer makes us re-read and apply `change` again."""
    for attempt in range(attempts):
        current = store.get_versioned(key)
        data, etag = current if current else (b"", None)
        try:
            store.put_bytes_if(key, change(data), etag)
            return
        except PreconditionFailed:
            time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 5)))
    raise StoreError(f"{key}: still changing after {attempts} attempts; update lost")


class LocalStore:
    """An archive in a local directory; objects appear by atomic rename."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.uri = str(self.root)

    def path(self, key: str) -> Path:
        target = (self.root / key).resolve()
        if self.root not in target.parents:
            raise StoreError(f"archive key {key!r} leaves the archive directory")
        return target

    def put_file(self, path: Path, key: str, sha256: str) -> ObjectInfo:
        target = self.path(key)
        partial = target.with_name(target.name + ".part")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._place(path, partial)
            os.replace(partial, target)
            fsync_dir(target.parent)
        except OSError as exc:  # a full or read-only disk: the store refused, as S3 may
            partial.unlink(missing_ok=True)
            raise StoreError(f"write {target}: {exc.strerror or exc}") from exc
        return ObjectInfo(key, target.stat().st_size, sha256)

    @staticmethod
    def _place(path: Path, partial: Path) -> None:
        """`path`'s bytes at `partial`, durably: a hard link on the same filesystem (the default
        spool), else a copy."""
        partial.unlink(missing_ok=True)  # left by an interrupted put
        try:
            os.link(path, partial)
            return
        except OSError:  # another filesystem
            pass
        with open(path, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_durably(target, data)
        except OSError as exc:  # a full or read-only disk: the store refused, as S3 may
            raise StoreError(f"write {target}: {exc.strerror or exc}") from exc
        return ObjectInfo(key, len(data), hashlib.sha256(data).hexdigest())

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo(key, self.path(key).stat().st_size)
        except FileNotFoundError:
            return None

    def open(self, key: str) -> IO[bytes]:
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise StoreError(f"{key}: no such object in {self.uri}") from None

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        with self.open(key) as f:
            f.seek(offset)
            return f.read(length)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.endswith(".part"):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield ObjectInfo(key, full.stat().st_size)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """A small object and its ETag (the md5 of its bytes, as S3 gives for a simple put)."""
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.md5(data).hexdigest()

    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str:
        """Replace `key` only if its ETag is still `etag` (None: only if it does not exist).

        Writers serialise on a lock file under ``.locks/`` (hidden from ``list``); the object
        itself still appears by atomic rename, so readers never wait."""
        lock = self.root / ".locks" / (key + ".lock")
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            held = open(lock, "a")
        except OSError as exc:
            raise StoreError(f"write {lock}: {exc.strerror or exc}") from exc
        with held:
            fcntl.flock(held, fcntl.LOCK_EX)
            current = self.get_versioned(key)
            if (current[1] if current else None) != etag:
                raise PreconditionFailed(f"{key}: changed since it was read")
            self.put_bytes(key, data)
        return hashlib.md5(data).hexdigest()


class S3Store:
    """An archive under an S3 prefix, through boto3 with explicit retry and transfer settings.

    Uploads carry a SHA-256 checksum that the server verifies (per part for multipart uploads)
    and the whole file's sha256 as object metadata, for fixity checks without a download.
    """

    def __init__(self, uri: str, config: ArchiveConfig) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config as BotoConfig

        parts = urlsplit(uri)
        self.uri = uri
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        if not self.bucket:
            raise StoreError(f"{uri}: an S3 archive URI is s3://bucket/prefix")
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=s3_region(config),
            config=BotoConfig(
                s3={"addressing_style": config.addressing_style},
                retries={"total_max_attempts": config.max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self.transfer = TransferConfig(
            multipart_threshold=config.multipart_threshold,
            multipart_chunksize=max(config.multipart_threshold // 4, 8 * 1024 * 1024),
            max_concurrency=4,
            use_threads=True,
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn, *args, **kwargs):  # noqa: ANN001, ANN202
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StoreError(f"{what}: {error.get('Code')}: {error.get('Message')}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{what}: {exc}") from exc

    def put_file(self, path: Path, key: str, sha256: str) -> ObjectInfo:
        from boto3.exceptions import S3UploadFailedError

        extra = {"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": sha256}}
        try:
            self._call(f"upload s3://{self.bucket}/{self._key(key)}", self.client.upload_file,
                       str(path), self.bucket, self._key(key), ExtraArgs=extra,
                       Config=self.transfer)
        except S3UploadFailedError as exc:
            raise StoreError(f"upload s3://{self.bucket}/{self._key(key)}: {exc}") from exc
        info = self.stat(key)
        size = path.stat().st_size
        if info is None or info.size != size:
            raise StoreError(f"upload of {key} not confirmed: expected {size} bytes, store has "
                             f"{info.size if info else 'nothing'}")
        return ObjectInfo(key, size, sha256)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        import base64

        sha = hashlib.sha256(data)
        self._call(f"put s3://{self.bucket}/{self._key(key)}", self.client.put_object,
                   Bucket=self.bucket, Key=self._key(key), Body=data,
                   ChecksumSHA256=base64.b64encode(sha.digest()).decode(),
                   Metadata={"sha256": sha.hexdigest()})
        return ObjectInfo(key, len(data), sha.hexdigest())

    def _unless_missing(self, what: str, fn, key: str) -> Any:  # noqa: ANN001
        """``fn(Bucket, Key)``, or None when the object does not exist."""
        from botocore.exceptions import ClientError

        try:
            return fn(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError(f"{what} {key}: {exc}") from exc
        except Exception as exc:  # botocore connection errors
            raise StoreError(f"{what} {key}: {exc}") from exc

    def stat(self, key: str) -> ObjectInfo | None:
        head = self._unless_missing("stat", self.client.head_object, key)
        if head is None:
            return None
        return ObjectInfo(key, head["ContentLength"], head.get("Metadata", {}).get("sha256"))

    def open(self, key: str) -> IO[bytes]:
        obj = self._call(f"get {key}", self.client.get_object, Bucket=self.bucket,
                         Key=self._key(key))
        return obj["Body"]

    def read_range(self, key: str, offset: int, length: int) -> bytes:
        obj = self._call(f"get {key}", self.client.get_object, Bucket=self.bucket,
                         Key=self._key(key), Range=f"bytes={offset}-{offset + length - 1}")
        return obj["Body"].read()

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """A small object and its ETag, for a later ``put_bytes_if``."""
        obj = self._unless_missing("get", self.client.get_object, key)
        if obj is None:
            return None
        try:
            return obj["Body"].read(), obj["ETag"]
        except Exception as exc:  # the connection broke while reading
            raise StoreError(f"get {key}: {exc}") from exc

    def put_bytes_if(self, key: str, data: bytes, etag: str | None) -> str:
        """Replace `key` only if its ETag is still `etag` (None: only if it does not exist):
        S3's conditional write (If-Match / If-None-Match), answered 412 or 409 on a conflict."""
        import base64

        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        sha = hashlib.sha256(data)
        try:
            put = self._call(f"put s3://{self.bucket}/{self._key(key)}", self.client.put_object,
                             Bucket=self.bucket, Key=self._key(key), Body=data,
                             ChecksumSHA256=base64.b64encode(sha.digest()).decode(),
                             Metadata={"sha256": sha.hexdigest()}, **condition)
        except StoreError as exc:
            cause = exc.__cause__
            code = (cause.response.get("Error", {}).get("Code")
                    if isinstance(cause, ClientError) else None)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed(f"{key}: changed since it was read") from exc
            raise
        return put["ETag"]

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(obj["Key"][strip:], obj["Size"])
        except Exception as exc:
            raise StoreError(f"list s3://{self.bucket}/{self._key(prefix)}: {exc}") from exc


def s3_client_env(archive: ArchiveConfig, workdir: Path) -> dict[str, str]:
    """The environment another process's boto3 (pywb's, for replay) needs to reach the archive
    as this store does: its S3 endpoint, region and addressing style.

    Credentials come through unchanged: the standard AWS chain, as for every other command.
    """
    env = dict(os.environ)
    if archive.endpoint_url:
        env["AWS_ENDPOINT_URL_S3"] = archive.endpoint_url
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = s3_region(archive)
    if archive.addressing_style != "auto":
        env["AWS_CONFIG_FILE"] = str(_aws_config(archive.addressing_style, workdir))
    return env


def _aws_config(style: str, workdir: Path) -> Path:
    """A copy of the user's AWS config whose active profile sets the S3 addressing style, the
    one client setting botocore reads from no environment variable."""
    parser = configparser.RawConfigParser()
    parser.read(os.path.expanduser(os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")))
    profile = os.environ.get("AWS_PROFILE", "default")
    section = profile if profile == "default" else f"profile {profile}"
    if not parser.has_section(section):
        parser.add_section(section)
    nested = [line.strip() for line in parser.get(section, "s3", fallback="").splitlines()
              if line.strip() and line.split("=")[0].strip() != "addressing_style"]
    parser.set(section, "s3", "\n".join(["", *nested, f"addressing_style = {style}"]))
    path = workdir / "aws-config"
    with open(path, "w", encoding="utf-8") as f:
        parser.write(f)
    return path


def open_store(config: ArchiveConfig, uri: str | None = None) -> ArchiveStore:
    """The store for `uri` (default: the config's): ``s3://bucket/prefix`` or a directory."""
    uri = uri or config.uri
    if uri.startswith("s3://"):
        return S3Store(uri, config)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(f"{uri}: unsupported archive URI (use a directory or s3://bucket/prefix)")
    return LocalStore(uri.removeprefix("file://"))


def s3_region(config: ArchiveConfig) -> str:
    """The config's region, else the AWS environment's, else us-east-1 (what S3-compatible
    servers accept)."""
    return (config.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1")
