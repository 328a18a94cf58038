"""Slack's request signature (v0), checked on the raw bytes before anything of the request is parsed or logged."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
MAX_SKEW_SECONDS = 5 * 60
"""Slack's replay window: a request signed more than five minutes ago (or ahead) is refused."""


class SlackSignature:
    def __init__(self, secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self._clock = clock

    def is_valid(self, body: bytes, timestamp: str | None, signature: str | None) -> bool:
        """HMAC-SHA256 over b'v0:<timestamp>:<body>', compared in constant time; malformed headers are invalid."""
        if not timestamp or not signature or not timestamp.isascii() or not timestamp.isdigit():
            return False
        if abs(self._clock() - int(timestamp)) > MAX_SKEW_SECONDS:
            return False
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v0={digest}".encode(), signature.encode("utf-8", "replace"))
