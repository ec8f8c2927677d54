"""``blob_store(settings)``: the one place a BlobStore is built, from JOBRUNNER_BLOB_URL.

Unset or ``file://``: files under the data dir (the default, one machine). ``file:///dir``: files
under that directory (a shared mount). ``s3://bucket/prefix``: S3-compatible object storage, what
several machines on one Redis need.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from jobrunner.settings import Settings
from jobrunner.store.blob_cache import BlobCache
from jobrunner.store.blobs import BlobStore, FileBlobStore
from jobrunner.store.s3_blobs import S3BlobStore, S3Options


def blob_store(settings: Settings) -> BlobStore:
    url = urlsplit(settings.blob_url or "file://")
    if url.scheme == "file":
        return FileBlobStore(Path(unquote(url.path)) if url.path else settings.blob_dir)
    return S3BlobStore(s3_options(settings), blob_cache(settings))


def s3_options(settings: Settings) -> S3Options:
    url = urlsplit(settings.blob_url or "")
    s = settings
    secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None
    return S3Options(
        bucket=url.netloc,
        prefix=unquote(url.path).strip("/"),
        endpoint_url=s.s3_endpoint_url,
        region=s.s3_region,
        access_key_id=s.s3_access_key_id,
        secret_access_key=secret,
        virtual_hosted_style=s.s3_virtual_hosted_style,
        part_bytes=s.s3_part_bytes,
        upload_concurrency=s.s3_upload_concurrency,
        retry_seconds=s.s3_retry_seconds,
    )


def blob_cache(settings: Settings) -> BlobCache:
    return BlobCache(
        settings.blob_cache_dir,
        max_bytes=settings.blob_cache_max_bytes,
        keep_seconds=settings.blob_cache_keep_seconds,
    )
