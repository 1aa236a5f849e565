"""Pacing requests to Segmind: a sliding-window budget and a 429 gate per API key.

Pure: no database and no network. The dispatcher keeps one `KeyGate` per Segmind key,
asks it before every request it counts, and tells it about every 429. `to_state` and
`from_state` carry a gate's history (as wall-clock times) across dispatcher runs.

- The budget: at most `limit` counted requests in any `window` seconds. What was sent is
  kept as send times; a request may go once fewer than `limit` of them are younger than
  `window` (less a small margin for the time a request takes to arrive).
- The pace: requests are also spread at `limit / window` a second, with a small burst
  (a tenth of the limit). A full window's worth sent at once would leave the key idle
  for the rest of the window, and a job that arrives meanwhile (another shop's) would
  wait for the whole window instead of one slot.
- The gate: a 429 closes it until its Retry-After (capped at `retry_after_max`), or for
  an exponential backoff with jitter when Segmind gave none. When it opens again, one
  request goes first (a probe); the rest follow once that one is not refused.
- The adaptive limit: each 429 lowers it (x0.8, never below 1); each window without a
  429 raises it by a twentieth of the configured limit, never above it. A limit set too
  high converges to what the key really allows.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

# A 429 lowers the adaptive limit this much; each clean window gives back this share of
# the configured limit.
DECREASE = 0.8
RECOVER_SHARE = 0.05
# 429s are remembered this long (the admin shows the last hour's).
THROTTLE_MEMORY_SECONDS = 3600.0
# Without Retry-After: the first backoff is one slot of the budget (at least this), then
# doubles with each consecutive 429.
BACKOFF_MIN_SECONDS = 1.0
# Segmind counts a request when it arrives, somewhere between our sending it and its
# answer; a sent request counts from its answer (`settle`), and a slot frees this much
# later again than the window says, for clocks and rounding (half a percent of the
# window, between 0.02 s and a second).
MARGIN_SHARE = 0.005
MARGIN_MIN_SECONDS = 0.02
MARGIN_MAX_SECONDS = 1.0
# Requests that may go at once after an idle spell, as a share of the limit (at least 1).
BURST_SHARE = 0.1

_RATE_RE = re.compile(
    r"^\s*(\d+)\s*/\s*(?:(\d+(?:\.\d+)?)\s*)?(s|sec|second|m|min|minute|h|hour)\s*$"
)
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}
UNLIMITED = ("", "0", "none", "unlimited", "off")


@dataclass(frozen=True)
class Rate:
    """`limit` requests per `window` seconds; `limit` 0 means no limit."""

    limit: int
    window: float

    @property
    def unlimited(self) -> bool:
        return self.limit <= 0

    def __str__(self) -> str:
        if self.unlimited:
            return "unlimited"
        if self.window == 60:
            return f"{self.limit}/min"
        return f"{self.limit}/{self.window:g}s"


def parse_rate(value: str) -> Rate:
    """`50/min`, `2/s`, `20/6s`, `1000/1h` or `unlimited`; ValueError otherwise."""
    text = value.strip().lower()
    if text in UNLIMITED:
        return Rate(0, 60.0)
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError(
            f"{value!r} is not a rate: write N/min, N/s or N/<seconds>s (e.g. 50/min, 20/6s), "
            "or unlimited"
        )
    limit = int(match.group(1))
    window = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
    if limit < 1 or window <= 0:
        raise ValueError(f"{value!r} is not a rate: the count and the window must be positive")
    return Rate(limit, window)


class KeyGate:
    """One key's budget and gate. Times are wall-clock seconds (`time.time()`)."""

    def __init__(self, rate: Rate, *, retry_after_max: float = 300.0) -> None:
        self.rate = rate
        self.retry_after_max = retry_after_max
        self.adaptive = float(rate.limit)
        self.sends: deque[float] = deque()
        self.throttles: deque[float] = deque()
        self.closed_until = 0.0
        self.consecutive = 0
        # After a 429: one request at a time until one is not refused.
        self.probing = False
        self.probe_out = False
        self.recovered_at = 0.0
        # The pace's token bucket (starts full).
        self.tokens = float(self.burst)
        self.refilled_at: float | None = None
        # Requests that want a slot now, by kind: polls go before submissions.
        self.polls_waiting = 0
        self.dirty = False
        # Every 429 the key ever received (carried across runs): /metrics' counter, which
        # any web machine reads from the key's saved state.
        self.throttled_total = 0

    # --- the budget ------------------------------------------------------------------

    @property
    def limit(self) -> int:
        """How many requests the window holds now (the adaptive limit, whole)."""
        return max(1, int(self.adaptive))

    @property
    def burst(self) -> int:
        return max(1, round(self.limit * BURST_SHARE))

    @property
    def pace(self) -> float:
        """Requests a second the key is paced at."""
        return self.limit / self.rate.window

    def _refill(self, now: float) -> None:
        if self.refilled_at is not None and now > self.refilled_at:
            # While the window is full, the bucket fills to one request, not a burst: the
            # burst's slots free together a window after it was sent, and sent together
            # again they would leave the key idle for the burst's length every window
            # (6 s a minute at 120/min), with another shop's job waiting through it.
            cap = 1.0 if len(self.sends) >= self.limit else float(self.burst)
            self.tokens = min(
                max(cap, min(self.tokens, float(self.burst))),
                self.tokens + (now - self.refilled_at) * self.pace,
            )
        if self.refilled_at is None or now > self.refilled_at:
            self.refilled_at = now

    @property
    def margin(self) -> float:
        return min(MARGIN_MAX_SECONDS, max(MARGIN_MIN_SECONDS, self.rate.window * MARGIN_SHARE))

    def _prune(self, now: float) -> None:
        horizon = now - self.rate.window - self.margin
        while self.sends and self.sends[0] <= horizon:
            self.sends.popleft()
        while self.throttles and self.throttles[0] <= now - THROTTLE_MEMORY_SECONDS:
            self.throttles.popleft()
        self._recover(now)

    def _recover(self, now: float) -> None:
        if self.adaptive >= self.rate.limit:
            return
        last = max(self.throttles[-1] if self.throttles else 0.0, self.recovered_at)
        if now - last >= self.rate.window:
            self.adaptive = min(
                float(self.rate.limit),
                self.adaptive + max(1.0, self.rate.limit * RECOVER_SHARE),
            )
            self.recovered_at = now
            self.dirty = True

    def used(self, now: float) -> int:
        """Counted requests sent within the current window."""
        if self.rate.unlimited:
            return 0
        self._prune(now)
        return len(self.sends)

    def available(self, now: float) -> int:
        """How many counted requests may go now."""
        if self.rate.unlimited and not self.probing:
            return 1 << 30
        if now < self.closed_until:
            return 0
        if self.probing:
            return 0 if self.probe_out else 1
        self._prune(now)
        self._refill(now)
        return max(0, min(self.limit - len(self.sends), int(self.tokens)))

    def available_within(self, now: float, horizon: float) -> int:
        """How many counted requests may go from now to `horizon` seconds ahead, if nothing
        is refused (`available` when the horizon is 0). The dispatcher claims that many
        jobs ahead, so that each one is ready at the gate when its slot opens rather than
        a tick after."""
        ready = self.available(now)
        if self.rate.unlimited or horizon <= 0 or self.closed(now) or self.probing:
            return ready
        if now < self.closed_until:
            return ready
        until = now + horizon
        slots = list(self.sends)
        period = self.rate.window + self.margin
        tokens = self.tokens  # refilled to `now` by `available`
        at = now
        count = 0
        while count < self.limit:
            by_window = slots[len(slots) - self.limit] + period if len(slots) >= self.limit else at
            by_pace = at + max(0.0, 1.0 - tokens) / self.pace
            when = max(at, by_window, by_pace)
            if when > until:
                break
            cap = 1.0 if by_window > at else float(self.burst)
            tokens = min(max(cap, min(tokens, float(self.burst))), tokens + (when - at) * self.pace)
            tokens -= 1.0
            at = when
            slots.append(when)
            count += 1
        return max(ready, count)

    def wait(self, now: float) -> float:
        """Seconds until one counted request may go (0: now)."""
        if self.available(now) > 0:
            return 0.0
        if now < self.closed_until:
            return self.closed_until - now
        if self.probing:
            return 0.1  # the probe's answer decides
        # With room in the window, only the pace holds a request back.
        by_window = (
            self.sends[len(self.sends) - self.limit] + self.rate.window + self.margin - now
            if len(self.sends) >= self.limit
            else 0.0
        )
        by_pace = (1.0 - self.tokens) / self.pace
        return max(0.01, by_window, by_pace)

    def closed(self, now: float) -> bool:
        return now < self.closed_until or (self.probing and self.probe_out)

    def take(self, now: float) -> None:
        """A counted request goes now (then `settle` it with the time of its answer)."""
        if self.probing:
            self.probe_out = True
        if not self.rate.unlimited:
            self._refill(now)
            self.tokens -= 1.0
            self.sends.append(now)
            self.dirty = True

    def settle(self, sent_at: float, answered_at: float) -> None:
        """A counted request sent at `sent_at` was answered at `answered_at`: Segmind
        counted it when it arrived, somewhere in between, so it stays in the window until
        a window after the answer (a request held up on its way cannot make the next one
        early)."""
        if self.rate.unlimited or answered_at <= sent_at:
            return
        try:
            self.sends.remove(sent_at)
        except ValueError:
            return  # already out of the window
        # Usually the newest, or nearly: insert from the right.
        index = len(self.sends)
        while index > 0 and self.sends[index - 1] > answered_at:
            index -= 1
        self.sends.insert(index, answered_at)

    def forecast(self, now: float, n: int) -> float:
        """When the n-th next counted request (1-based) may go, if nothing is refused."""
        if self.rate.unlimited:
            return max(now, self.closed_until)
        self._prune(now)
        self._refill(now)
        start = max(now, self.closed_until)
        slots = list(self.sends)
        period = self.rate.window + self.margin
        tokens = min(float(self.burst), self.tokens + (start - now) * self.pace)
        at = when = start
        for _ in range(n):
            by_window = slots[len(slots) - self.limit] + period if len(slots) >= self.limit else at
            by_pace = at + max(0.0, 1.0 - tokens) / self.pace
            when = max(at, by_window, by_pace)
            cap = 1.0 if by_window > at else float(self.burst)
            tokens = min(max(cap, min(tokens, float(self.burst))), tokens + (when - at) * self.pace)
            tokens -= 1.0
            at = when
            slots.append(when)
        return when

    # --- answers ---------------------------------------------------------------------

    def on_success(self) -> None:
        """A counted (or uncounted) request was answered, not with 429."""
        if self.probing or self.consecutive:
            self.dirty = True
        self.probing = self.probe_out = False
        self.consecutive = 0

    def on_error(self) -> None:
        """A request failed otherwise (5xx, timeout): the probe may go again."""
        self.probe_out = False

    def on_429(
        self, now: float, retry_after: float | None, rng: random.Random | None = None
    ) -> tuple[float, bool]:
        """Close the gate; returns (seconds closed, whether Retry-After was capped)."""
        # Several requests refused together are one event, and a refused probe says only
        # that the wait was too short: the limit drops once, for a paced request refused.
        lower = now >= self.closed_until and not self.probing
        self.throttles.append(now)
        self.throttled_total += 1
        self.dirty = True
        self.probe_out = False
        self.probing = True
        capped = False
        if retry_after is not None:
            delay = retry_after
            if delay > self.retry_after_max:
                delay, capped = self.retry_after_max, True
        else:
            slot = self.rate.window / max(1, self.limit) if not self.rate.unlimited else 1.0
            base = max(BACKOFF_MIN_SECONDS, slot)
            ceiling = min(self.retry_after_max, base * 2.0 ** min(self.consecutive, 30))
            delay = ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2)
        if now >= self.closed_until:
            self.consecutive += 1
        if lower and not self.rate.unlimited:
            self.adaptive = max(1.0, self.adaptive * DECREASE)
        self.closed_until = max(self.closed_until, now + delay)
        return self.closed_until - now, capped

    def throttled_within(self, now: float, seconds: float) -> int:
        return sum(1 for t in self.throttles if t > now - seconds)

    # --- persistence ---------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "limit": self.rate.limit,
            "window": self.rate.window,
            "adaptive": round(self.adaptive, 3),
            "sends": [round(t, 3) for t in self.sends],
            "throttles": [round(t, 3) for t in self.throttles],
            "closed_until": round(self.closed_until, 3),
            "consecutive": self.consecutive,
            "probing": self.probing,
            "recovered_at": round(self.recovered_at, 3),
            # The pace's bucket too: a fresh one would be full, and the next dispatcher
            # would send a burst that the window repeats a window later.
            "tokens": round(self.tokens, 3),
            "refilled_at": round(self.refilled_at, 3) if self.refilled_at is not None else None,
            "throttled_total": self.throttled_total,
        }

    @classmethod
    def from_state(
        cls, rate: Rate, state: dict[str, Any] | None, *, retry_after_max: float = 300.0
    ) -> KeyGate:
        """A gate with `rate`, carrying on from a saved state. A changed rate (a new plan,
        a new setting) starts its adaptive limit afresh at the new limit."""
        gate = cls(rate, retry_after_max=retry_after_max)
        if not state:
            return gate
        try:
            adaptive = float(state.get("adaptive", rate.limit))
            if state.get("limit", rate.limit) != rate.limit or (
                float(state.get("window", rate.window)) != rate.window
            ):
                adaptive = float(rate.limit)
            gate.adaptive = min(float(rate.limit), adaptive) if adaptive > 0 else float(rate.limit)
            gate.sends = deque(sorted(float(t) for t in state.get("sends") or []))
            gate.throttles = deque(sorted(float(t) for t in state.get("throttles") or []))
            gate.closed_until = float(state.get("closed_until") or 0.0)
            gate.consecutive = int(state.get("consecutive") or 0)
            gate.probing = bool(state.get("probing"))
            gate.recovered_at = float(state.get("recovered_at") or 0.0)
            gate.throttled_total = max(0, int(state.get("throttled_total") or 0))
            if state.get("refilled_at") is not None and "tokens" in state:
                gate.tokens = min(float(gate.burst), float(state["tokens"]))
                gate.refilled_at = float(state["refilled_at"])
        except (TypeError, ValueError):
            return cls(rate, retry_after_max=retry_after_max)
        if not all(map(math.isfinite, [gate.adaptive, gate.closed_until, gate.tokens])):
            return cls(rate, retry_after_max=retry_after_max)
        if rate.unlimited:
            gate.adaptive = 0.0
        return gate
