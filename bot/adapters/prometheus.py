"""The MetricsSource over Prometheus's HTTP API, with prometheus-api-client; its blocking calls run in a thread."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from bot.core.errors import MetricsError
from bot.core.ports import Sample, Series

T = TypeVar("T")
QUERY_SHOWN = 200
"""A failing query is named in the error by its first this many characters."""


class PrometheusSource:
    """Instant and range queries. Every failure (unreachable, refused, timed out, a bad query) is a MetricsError
    naming the query and Prometheus's reason."""

    def __init__(self, url: str, *, timeout_seconds: float = 10, headers: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout_seconds
        # No retries inside the client: a failing query is reported at once and the panel shows the rest.
        self._client = PrometheusConnect(
            url=self.url, headers=dict(headers or {}), retry=Retry(total=0, raise_on_status=False)
        )

    async def instant(self, query: str, at: datetime | None = None) -> list[Sample]:
        params = {"time": f"{at.timestamp():.3f}"} if at is not None else {}
        result = await self._call(query, lambda: self._client.custom_query(query, params, timeout=self._io_timeout))
        try:
            return [Sample(labels=dict(r.get("metric", {})), value=_number(r["value"][1])) for r in result]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise _failed(query, f"unexpected answer ({exc})") from None

    async def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        result = await self._call(
            query,
            lambda: self._client.custom_query_range(
                # Seconds as a bare float: Prometheus parses "0.5" but refuses "0.5s" (durations are whole units).
                query,
                start,
                end,
                f"{step.total_seconds():g}",
                timeout=self._io_timeout,
            ),
        )
        try:
            return [
                Series(
                    labels=dict(r.get("metric", {})),
                    points=tuple((datetime.fromtimestamp(float(t), start.tzinfo), _number(v)) for t, v in r["values"]),
                )
                for r in result
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise _failed(query, f"unexpected answer ({exc})") from None

    def close(self) -> None:
        self._client.close()

    @property
    def _io_timeout(self) -> int:
        return max(1, math.ceil(self.timeout))

    async def _call(self, query: str, call: Callable[[], T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.to_thread(call)
        except TimeoutError:
            raise _failed(query, f"no answer within {self.timeout:g} s") from None
        except PrometheusApiClientException as exc:
            raise _failed(query, _reason(str(exc))) from None
        except OSError as exc:  # requests' errors are OSErrors: refused, reset, DNS, TLS
            raise _failed(query, f"{self.url} unreachable ({_why(exc)})") from None
        except ValueError as exc:  # an answer that isn't JSON
            raise _failed(query, f"unreadable answer ({exc})") from None


def _number(raw: Any) -> float:
    return float(raw)  # Prometheus sends values as strings, "NaN" and "+Inf" included


def _failed(query: str, reason: str) -> MetricsError:
    shown = query if len(query) <= QUERY_SHOWN else query[: QUERY_SHOWN - 1] + "…"
    return MetricsError(f"`{shown}`: {reason}", query=query, reason=reason)


def _reason(text: str) -> str:
    """Prometheus's own error out of the client's "HTTP Status Code 400 (b'{...}')"."""
    status = re.match(r"HTTP Status Code (\d+)", text)
    body = re.search(r"\(b'(.*)'\)\s*$", text, re.S)
    if body:
        try:
            error = json.loads(body.group(1).encode().decode("unicode_escape")).get("error")
        except (ValueError, AttributeError):
            error = None
        if error:
            return f"Prometheus refused it ({status.group(1) if status else '?'}): {error}"
    return f"Prometheus refused it: {_first_line(text)}"


def _why(exc: OSError) -> str:
    """The root of a connection failure, without the URL requests puts in front (so one outage reads the same for
    every query)."""
    text = str(exc)
    if m := re.search(r"\[Errno -?\d+\] ([^'\")]+)", text):
        return m.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__


def _first_line(exc: object) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
