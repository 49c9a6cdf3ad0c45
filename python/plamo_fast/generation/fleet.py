"""Several OpenAI-compatible servers serving one model (``vllm serve`` on many nodes), used by
the openai backend as one.

- :func:`base_urls` reads ``--base-url`` values: a URL, URLs separated by commas, or
  ``@FILE`` with one URL a line (blank lines and ``#`` comments skipped), or a list of such
  values (the commands' option is :func:`plamo_fast.cli.options.fleet_option`).
- :class:`Fleet` picks a server for each request: the one with the fewest requests
  outstanding, up to ``per_server`` at once each. A server that fails (a connection error or
  timeout at once, 5xx replies :data:`STRIKES_5XX` times in a row) is taken out for a cool-down
  (:data:`COOL_DOWN` seconds, doubled by each failure in a row, at most :data:`COOL_DOWN_MAX`);
  when it ends, the server gets one request at a time (a probe) until one succeeds, which
  brings it back, as does any success. When every server is out, requests wait for the first
  cool-down to end and then all go (a single server behaves as a retry with backoff).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plamo_fast.errors import PlamoFastError, UsageError

COOL_DOWN = 1.0  # seconds a server stays out after its first failure
COOL_DOWN_MAX = 60.0
STRIKES_5XX = 2  # 5xx replies in a row that take a server out
RATE_WINDOW = 30.0  # seconds over which the per-server throughput is measured


def base_urls(values: str | Sequence[str] | None) -> list[str]:
    """The server URLs in ``values`` (see the module's docstring), in order; an error names a
    URL that is not http(s), the FILE:LINE it came from, or a server listed twice."""
    if values is None:
        return []
    urls: list[str] = []
    seen: dict[str, str] = {}
    for value in [values] if isinstance(values, str) else values:
        for url, where in _items(value):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise UsageError(f"{where}: {url!r} is not an http(s) URL")
            key = server_url(url)
            if key in seen:
                raise UsageError(f"{where}: {url} is listed twice (also {seen[key]})")
            seen[key] = where
            urls.append(url)
    return urls


def _items(value: str) -> list[tuple[str, str]]:
    """``(url, where it came from)`` for one option value."""
    value = value.strip()
    if not value.startswith("@"):
        return [(u.strip(), "--base-url") for u in value.split(",") if u.strip()]
    path = Path(value[1:])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--base-url {value}: cannot read {path}: {exc.strerror}") from None
    items = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            items.append((line, f"{path}:{number}"))
    if not items:
        raise UsageError(f"--base-url {value}: {path} lists no URL")
    return items


def server_url(url: str) -> str:
    """``url`` without a trailing slash, ending in ``/v1``."""
    base = url.strip().rstrip("/")
    return base if base.endswith("/v1") else base + "/v1"


@dataclass
class Member:
    """One server of a fleet and what the fleet knows of it (guarded by the fleet's lock)."""

    index: int
    url: str  # ending in /v1
    label: str  # host:port
    outstanding: int = 0
    sent: int = 0
    answered: int = 0
    failed: int = 0
    probes: int = 0
    strikes: int = 0  # 5xx replies in a row
    down_since: float | None = None  # when it was last taken out; None: in service
    down_until: float = 0.0
    cool_down: float = 0.0  # length of the last cool-down
    done: deque = field(default_factory=deque)  # times of recent answers


class Fleet:
    """Picks a server for each request and keeps track of failures (see the module's
    docstring). Thread-safe: :meth:`acquire` blocks until a server can take a request; every
    acquire is followed by exactly one of :meth:`succeeded`, :meth:`failed` or
    :meth:`released`."""

    def __init__(self, urls: Sequence[str], per_server: int):
        if not urls:
            raise UsageError("no server URL")
        full = [server_url(u) for u in urls]
        hosts = [urllib.parse.urlsplit(u).netloc for u in full]
        labels = hosts if len(set(hosts)) == len(hosts) else full  # host:port when that tells
        self.members = [
            Member(i, u, label) for i, (u, label) in enumerate(zip(full, labels, strict=True))
        ]
        self.per_server = max(1, per_server)
        self.cool_down, self.cool_down_max = COOL_DOWN, COOL_DOWN_MAX
        self.started = 0.0  # when the first request was sent
        self._lock = threading.Condition()

    def __len__(self) -> int:
        return len(self.members)

    def acquire(self, avoid: set[int], deadline: float) -> tuple[Member, float]:
        """``(server, when it was sent)`` for one request: the usable server with the fewest
        requests outstanding, one not in ``avoid`` (servers that failed this request) when
        there is one. Waits for one until ``deadline`` (``time.monotonic``), then gives up."""
        with self._lock:
            while True:
                now = time.monotonic()
                member = self._pick(now, avoid)
                if member is not None:
                    self.started = self.started or now
                    member.outstanding += 1
                    member.sent += 1
                    member.probes += member.down_since is not None
                    return member, now
                if now >= deadline:
                    raise PlamoFastError(f"no server could take a request: {self._states(now)}")
                ends = [m.down_until for m in self.members if m.down_until > now]
                self._lock.wait(min([deadline, *ends]) - now)

    def _pick(self, now: float, avoid: set[int]) -> Member | None:
        all_out = all(m.down_since is not None for m in self.members)
        usable = [m for m in self.members if self._usable(m, now, all_out)]
        preferred = [m for m in usable if m.index not in avoid] or usable
        return min(preferred, key=lambda m: (m.outstanding, m.sent, m.index), default=None)

    def _usable(self, m: Member, now: float, all_out: bool) -> bool:
        if m.down_since is None or all_out:
            return now >= m.down_until and m.outstanding < self.per_server
        return now >= m.down_until and m.outstanding == 0  # one probe at a time

    def succeeded(self, m: Member) -> None:
        """A reply: the server is in service (again)."""
        with self._lock:
            now = time.monotonic()
            m.outstanding -= 1
            m.answered += 1
            m.strikes = 0
            m.down_since, m.down_until = None, 0.0
            m.done.append(now)
            while m.done and m.done[0] < now - RATE_WINDOW:
                m.done.popleft()
            self._lock.notify_all()

    def failed(self, m: Member, sent: float, *, hard: bool) -> None:
        """No reply to a request sent at ``sent`` (``hard``: a connection error or timeout),
        or a 5xx reply. Takes the server out (a 5xx: the :data:`STRIKES_5XX`-th in a row), or
        keeps an out server out twice as long, unless the request was sent before the server
        was last taken out (a failure already counted)."""
        with self._lock:
            m.outstanding -= 1
            m.failed += 1
            m.strikes += not hard
            out = hard or m.strikes >= STRIKES_5XX or m.down_since is not None
            if out and (m.down_since is None or sent >= m.down_since):
                now = time.monotonic()
                first = m.down_since is None
                m.cool_down = self.cool_down if first else min(2 * m.cool_down, self.cool_down_max)
                m.down_since, m.down_until = now, now + m.cool_down
            self._lock.notify_all()

    def released(self, m: Member) -> None:
        """A reply that says nothing of the server's health (429, a refused request)."""
        with self._lock:
            m.outstanding -= 1
            self._lock.notify_all()

    def progress_note(self) -> str:
        """Each server's answers per second over the last :data:`RATE_WINDOW` seconds, or how
        long it stays out: ``host:port 3.1/s · host:port out 8s``."""
        with self._lock:
            return self._states(time.monotonic())

    def _states(self, now: float) -> str:
        parts = []
        for m in self.members:
            if m.down_since is not None:
                left = m.down_until - now
                parts.append(f"{m.label} out {left:.0f}s" if left > 0 else f"{m.label} probing")
                continue
            recent = sum(t >= now - RATE_WINDOW for t in m.done)
            span = min(RATE_WINDOW, now - self.started)
            parts.append(f"{m.label} {recent / span if span > 0 else 0.0:.1f}/s")
        return " · ".join(parts)
