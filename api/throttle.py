"""Sign-in throttling in the app: per client address, per account, and at most a few at once.

Each sign-in verifies an argon2 hash (64 MiB and a third of a second of CPU), so a flood of
logins, even for names that do not exist, can starve the review app and the capture beside it.
``LoginThrottle.admit`` refuses an attempt (429 with Retry-After, in words a person
understands) when its address or its account has used up its allowance, or when
``LOGIN_CONCURRENCY`` sign-ins are being checked already. The allowances are token buckets kept
in memory, at most ``MAX_KEYS`` of each (the least recently seen is forgotten first), so a flood
of made-up names cannot grow it. The lockout (``web.login_max_failures``) still applies on top:
this only limits how fast anyone can try. The reverse proxy example
(``deploy/nginx/hallmonitor.conf``) applies the same rate per address with ``limit_req``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

LOGIN_BURST = 10
"""Attempts an address (or an account) may make at once before it has to wait."""
LOGIN_INTERVAL_S = 6.0
"""Then one more attempt every this many seconds (10 a minute)."""
LOGIN_CONCURRENCY = 2
"""Sign-ins checked at the same time; more wait outside (429), which bounds the memory the
hashes take (64 MiB each)."""
MAX_KEYS = 10_000
"""Addresses (and account names) remembered; the least recently seen are forgotten first."""
BUSY_RETRY_S = 2
REFUSALS_LOG_INTERVAL_S = 60.0
"""Refused sign-ins are logged at most this often (a flood is one line a minute, not one each)."""

logger = logging.getLogger(__name__)


class TokenBuckets:
    """One token bucket per key: ``burst`` tokens, refilled one every ``interval_s`` seconds."""

    def __init__(
        self,
        burst: int,
        interval_s: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0 when there was one, else the seconds until there is."""
        now = self._clock()
        with self._lock:
            tokens, since = self._buckets.pop(key, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - since) / self._interval_s)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) * self._interval_s
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an attempt was refused, and when to try again."""

    message: str
    retry_after_s: int


class LoginThrottle:
    """The app's sign-in throttle (one per app, on ``app.state.login_throttle``)."""

    def __init__(
        self,
        *,
        burst: int = LOGIN_BURST,
        interval_s: float = LOGIN_INTERVAL_S,
        concurrency: int = LOGIN_CONCURRENCY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.by_address = TokenBuckets(burst, interval_s, clock=clock)
        self.by_account = TokenBuckets(burst, interval_s, clock=clock)
        self._running = threading.BoundedSemaphore(concurrency)
        self._clock = clock
        self._refused = 0
        self._logged_at: float | None = None
        self._log_lock = threading.Lock()

    def note_refused(self, address: str | None, refusal: Refusal) -> None:
        """Count a refused sign-in; log the count at most once a minute, for the IT technician."""
        with self._log_lock:
            self._refused += 1
            now = self._clock()
            if self._logged_at is not None and now - self._logged_at < REFUSALS_LOG_INTERVAL_S:
                return
            refused, self._refused, self._logged_at = self._refused, 0, now
        logger.warning(
            "%d sign-in attempts refused as too many since the last such line (the latest "
            "from %s: %s)", refused, address or "an unknown address", refusal.message,
        )  # fmt: skip

    def refusal(self, address: str | None, username: str) -> Refusal | None:
        """Take this attempt's tokens; a ``Refusal`` when the address or account has none."""
        wait = self.by_address.take(address or "")
        if wait > 0:
            return Refusal(
                "Too many sign-in attempts from this computer. "
                f"Wait {_seconds(wait)} and try again.",
                math.ceil(wait),
            )
        wait = self.by_account.take(username)
        if wait > 0:
            return Refusal(
                f"Too many sign-in attempts for this account. Wait {_seconds(wait)} and try again.",
                math.ceil(wait),
            )
        return None

    @contextmanager
    def slot(self) -> Iterator[Refusal | None]:
        """Hold one of the ``concurrency`` places while a password is checked; yields a
        ``Refusal`` (and holds nothing) when all are taken."""
        if not self._running.acquire(blocking=False):
            yield Refusal(
                "The review app is busy with other sign-ins. "
                f"Wait {_seconds(BUSY_RETRY_S)} and try again.",
                BUSY_RETRY_S,
            )
            return
        try:
            yield None
        finally:
            self._running.release()


def _seconds(seconds: float) -> str:
    whole = max(1, math.ceil(seconds))
    return "1 second" if whole == 1 else f"{whole} seconds"
