"""Compressed inputs (gzip, zip, zstd): inflated to a work file in chunks, counted against a cap.

Nothing downstream (polars, pdfium) is ever handed compressed bytes, so nothing downstream
can inflate a bomb in memory: a 2 MB gzip of 2 GiB of NULs stops here at the cap, with its
own error code, having held one chunk at a time.
"""

from __future__ import annotations

import contextlib
import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol

import zstandard

from jobrunner.errors import PermanentError
from jobrunner.pipelines.limits import too_large

__all__ = ["compression_of", "decompressed"]

_CHUNK = 1024 * 1024
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_SUFFIXES = (".gz", ".gzip", ".zip", ".zst", ".zstd")
Progress = Callable[[float, str], None]


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def compression_of(path: Path) -> str | None:
    """``gzip``, ``zip`` or ``zstd`` when the file starts like one (by content, not name)."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError:
        return None
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


def decompressed(
    path: Path, work_dir: Path, *, max_bytes: int, on_progress: Progress | None = None
) -> Path:
    """``path`` itself when it is not compressed; else its content inflated into ``work_dir``
    (named after the inner file, so that its extension still tells its format).

    Raises PermanentError ``input_too_large`` past ``max_bytes`` inflated bytes (the partial
    file is removed) and ``input_unreadable`` for a broken archive, a zip holding other than
    one file, or content compressed twice.
    """
    kind = compression_of(path)
    if kind is None:
        return path
    try:
        with _opened(path, kind) as (name, source, raw):
            target = work_dir / f"inflated-{name}"  # never one of the outputs' names
            _copy(source, raw, target, path.stat().st_size, max_bytes, on_progress)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, zstandard.ZstdError) as exc:
        raise PermanentError(
            f"cannot decompress {path.name} ({kind}): {exc}", code="input_unreadable"
        ) from exc
    except RuntimeError as exc:  # zipfile: an encrypted entry
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_unreadable") from exc
    if compression_of(target) is not None:
        target.unlink()
        raise PermanentError(f"{path.name} is compressed twice", code="input_unreadable")
    return target


@contextlib.contextmanager
def _opened(path: Path, kind: str) -> Iterator[tuple[str, _Readable, IO[bytes]]]:
    """(inner file name, inflated stream, the compressed file under it for progress)."""
    with path.open("rb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=raw) as source:
                yield _inner_name(path), source, raw
        elif kind == "zstd":
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with reader as source:
                yield _inner_name(path), source, raw
        else:
            with zipfile.ZipFile(raw) as archive, archive.open(_only_member(archive)) as source:
                yield Path(source.name).name or "member", source, raw


def _inner_name(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return f"{name}.inflated"


def _only_member(archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    members = [
        m for m in archive.infolist() if not m.is_dir() and not m.filename.startswith("__MACOSX/")
    ]
    if len(members) != 1:
        raise PermanentError(
            f"a zip input must hold exactly one file, not {len(members)}", code="input_unreadable"
        )
    return members[0]


def _copy(
    source: _Readable,
    raw: IO[bytes],
    target: Path,
    size: int,
    max_bytes: int,
    on_progress: Progress | None,
) -> None:
    copied = 0
    try:
        with target.open("wb") as sink:
            while chunk := source.read(_CHUNK):
                copied += len(chunk)
                if copied > max_bytes:
                    raise too_large("the decompressed input", max_bytes)
                sink.write(chunk)
                if on_progress is not None:
                    on_progress(raw.tell() / max(size, 1), f"{copied:,} bytes decompressed")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
