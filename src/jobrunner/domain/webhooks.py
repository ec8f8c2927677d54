"""Webhook signatures: HMAC-SHA256 over ``"<t>.<body>"``, sent as ``t=<unix>,v1=<hex>``.

The timestamp is inside the signed text, so a receiver that checks it against its own clock
rejects replays of an old delivery. ``verify_signature`` is what a Python receiver calls.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Jobrunner-Signature"
DEFAULT_TOLERANCE_SECONDS = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={signature(secret, body, timestamp)}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` and its time is within tolerance."""
    parts = dict(part.strip().partition("=")[::2] for part in header.split(","))
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(signature(secret, body, int(stamp)), given)
