"""What a CSV file is before we parse it: text or not, its encoding, its delimiter.

Files that are not UTF-8 (Latin-1/CP1252 from spreadsheets) are transcoded to UTF-8 in
chunks into the work dir, so polars always reads UTF-8 and memory stays bounded.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path

from jobrunner.errors import PermanentError
from jobrunner.pipelines.compressed import decompressed
from jobrunner.pipelines.limits import InputLimits
from jobrunner.pipelines.validation.bounds import check_columns, check_lines

CANDIDATES = (",", ";", "\t", "|")
_PROBE_BYTES = 64 * 1024
_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class Sniffed:
    path: Path  # UTF-8 (possibly a transcoded copy)
    encoding: str  # what the original was
    delimiter: str
    header: list[str]
    estimated_rows: int  # from the size and the first lines: for progress only
    row_bytes: float  # bytes a line, from the first lines: for sizing batches
    lossy: bool = False  # invalid UTF-8 bytes are read as U+FFFD (see body_not_utf8)
    source: Path | None = None  # the file as given (``path`` may be inflated or transcoded)


def sniff(
    source: Path,
    work_dir: Path,
    *,
    encoding: str | None,
    delimiter: str | None,
    limits: InputLimits | None = None,
) -> Sniffed:
    """Decompress (gzip, zip, zstd) if need be, check the bounds, then guess what the file is.

    Raises PermanentError ``csv_empty``, ``csv_not_text``, ``input_too_large``,
    ``line_too_long``, ``too_many_columns``, ``input_unreadable`` or ``input_not_found``."""
    limits = limits or InputLimits()
    if not source.is_file():
        raise PermanentError(f"no such input file: {source.name}", code="input_not_found")
    path = decompressed(source, work_dir, max_bytes=limits.max_decompressed_bytes)
    head = _read_head(path)
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise PermanentError(f"{source.name} is empty", code="csv_empty")
    if b"\x00" in head:
        raise PermanentError(f"{source.name} is not a text file", code="csv_not_text")
    check_lines(path, limits.max_line_bytes)
    found = encoding or _guess_encoding(head)
    text = _first_lines(path, head).decode(found, errors="replace").lstrip("\ufeff")
    sep = delimiter or _guess_delimiter(text)
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=sep), [])
    except csv.Error as exc:
        raise PermanentError(f"cannot read the header: {exc}", code="csv_unreadable") from exc
    check_columns(header, limits.max_columns)
    utf8_path = path if found in ("utf-8", "utf-8-sig") else _transcode(path, work_dir, found)
    per_line = len(head) / max(head.count(b"\n"), 1)
    estimate = max(int(path.stat().st_size / per_line) - 1, 1)
    header = [h.strip() for h in header]
    return Sniffed(utf8_path, found, sep, header, estimate, per_line, source=source)


def _first_lines(path: Path, head: bytes) -> bytes:
    """The head, or the whole first line when the head ends inside it (a very wide header;
    check_lines has bounded it)."""
    if b"\n" in head or len(head) < _PROBE_BYTES:
        return head
    with path.open("rb") as f:
        return f.readline()


def body_not_utf8(sniffed: Sniffed, source: Path, work_dir: Path) -> Sniffed:
    """The head looked like UTF-8 but a later byte is not: decide again on the whole file.

    A spreadsheet export is one encoding throughout, so if nothing before the first bad byte
    was UTF-8 beyond ASCII, the file is Latin-1/CP1252 (its head just had no accents) and is
    transcoded. Otherwise it is UTF-8 with a few bad bytes, read with those replaced.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    ascii_so_far = True
    with source.open("rb") as f:
        while chunk := f.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                ascii_so_far = ascii_so_far and chunk[: exc.start].isascii()
                break
            ascii_so_far = ascii_so_far and chunk.isascii()
        else:  # it decodes after all: let the reader replace whatever it stumbled on
            return replace(sniffed, lossy=True)
    if ascii_so_far:
        path = _transcode(source, work_dir, "cp1252")
        return replace(sniffed, path=path, encoding="cp1252")
    return replace(sniffed, lossy=True)


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(_PROBE_BYTES)
    except OSError as exc:
        raise PermanentError(f"cannot read {path.name}: {exc}", code="input_not_found") from exc


def _guess_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the probe's end
            return "cp1252"
    return "utf-8"


def _guess_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the same, largest number of fields."""
    lines = [line for line in text.splitlines()[:20] if line.strip()] or [text]
    best, best_score = ",", 0
    for sep in CANDIDATES:
        try:
            rows = csv.reader(io.StringIO("\n".join(lines)), delimiter=sep)
            counts = [len(row) for row in rows]
        except csv.Error:  # a "field" past the csv module's limit: not this delimiter
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = consistent * 1000 + counts[0]
        if score > best_score:
            best, best_score = sep, score
    return best


def _transcode(path: Path, work_dir: Path, encoding: str) -> Path:
    target = work_dir / f"{path.stem}.utf8.csv"
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    except LookupError as exc:
        raise PermanentError(f"unknown encoding {encoding!r}", code="csv_encoding") from exc
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return target
