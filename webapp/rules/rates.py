"""How often people may do things: the rate limits, and sign-in throttling's rules."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from webapp.rules.keys import rate_key
from webapp.rules.text import username_key

LOGIN_WINDOW = timedelta(minutes=1)
MAX_FAILURES_PER_NAME = 5  # per name and address, in LOGIN_WINDOW
MAX_FAILURES_PER_ADDRESS = 50  # any names, in LOGIN_WINDOW
TYPING_REPEAT_SECS = 3  # a typing notice repeated sooner than this reaches nobody


def throttle_keys(username: str, address: str) -> tuple[str, str]:
    """The counters a failed sign-in adds to: this name from this address, and the address."""
    return f"name:{username_key(username)}@{address}", f"addr:{address}"


def retry_after(oldest_failure: datetime, now: datetime) -> int:
    """Seconds until the oldest failure in the window stops counting (1 to 60)."""
    remaining = (oldest_failure + LOGIN_WINDOW - now).total_seconds()
    return max(1, min(int(LOGIN_WINDOW.total_seconds()), int(remaining) + 1))


@dataclass(frozen=True)
class Rate:
    """A rate limit by the generic cell rate algorithm: one event every `interval` seconds
    sustained, and up to `burst` at once. All it keeps is one number, the theoretical arrival
    time (tat): when the next event would be due had all so far come evenly spaced."""

    interval: float
    burst: int

    @property
    def tolerance(self) -> float:
        """How far ahead of now the tat may be for one more event to be admitted: burst - 1
        intervals, and a millisecond so that rounding never refuses the last of a burst."""
        return self.interval * (self.burst - 1) + 0.001

    def admit(self, tat: float | None, now: float) -> float | None:
        """The tat after one more event at `now` (None: the first), or None to refuse it."""
        if tat is None or tat < now:
            return now + self.interval
        if tat > now + self.tolerance:
            return None
        return tat + self.interval

    def retry_after(self, tat: float, now: float) -> int:
        """Whole seconds (at least 1) until an event refused at `now` would be admitted."""
        return max(1, math.ceil(tat - self.tolerance - now))

    def scaled(self, factor: float) -> Rate:
        """The same burst, with every interval `factor` times as long."""
        return Rate(self.interval * factor, self.burst)


def typing_quiet_since(at: datetime) -> datetime:
    """A typing notice at `at` goes out only if the last one went out before this."""
    return at - timedelta(seconds=TYPING_REPEAT_SECS)


POSTING = Rate(interval=0.1, burst=30)  # per user: 10 messages a second, 30 at once
ROOM_MAKING = Rate(interval=6.0, burst=10)  # per user: 10 rooms a minute, all 10 at once
ROOM_ADDING = Rate(interval=2.0, burst=30)  # per user who adds: 30 people a minute
LIMITS = {"post": POSTING, "room": ROOM_MAKING, "add": ROOM_ADDING}  # by what they count


def limit_key(what: str, user_id: str) -> str:
    """The counter of `what` by this user (a key of LIMITS)."""
    assert what in LIMITS
    return rate_key(what, user_id)
