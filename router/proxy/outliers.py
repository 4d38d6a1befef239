"""Outlier ejection, as Envoy's outlier detection does it: a colour that keeps failing gets no new requests.

The controller rolls a failing canary back within a tick or two; until then, at 50 %, half the
requests would meet it. The proxy reports every attempt's outcome here. N failures in a row, or a
failure rate over a short window, eject the colour at once, for a base time that doubles with each
repeat (up to a cap). It is readmitted only once that time is over and a probe passes. Only the
canary is ever ejected, never the stable colour and so never both: with both failing, the stable
colour keeps serving and the errors show.

Pure bookkeeping with the clock passed in; the proxy and the prober carry out what it decides.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from router.config import OutlierOptions
from router.weights import Colour

SLICE_S = 0.1  # the failure-rate window is kept as counts per slice, so a request costs O(1)


@dataclass(frozen=True)
class Ejection:
    """A decision to take `colour` out of new traffic until `until` (and a passing probe)."""

    colour: Colour
    reason: str
    kind: str  # "consecutive" | "rate"
    until: float
    count: int  # the how-many-th ejection in a row; the ejection time grows with it


@dataclass
class _ColourRecord:
    consecutive_failures: int = 0
    slices: deque[list[float]] = field(default_factory=deque)  # [slice start, attempts, failures]
    attempts: int = 0  # the totals over `slices`, kept as they change: a request costs O(1)
    failures: int = 0
    ejection: Ejection | None = None
    ejections_in_a_row: int = 0
    readmitted_at: float | None = None


class OutlierDetector:
    def __init__(self, options: OutlierOptions) -> None:
        self.options = options
        self._records = {colour: _ColourRecord() for colour in Colour}

    def ejected(self, colour: Colour) -> Ejection | None:
        return self._records[colour].ejection

    def observe(self, colour: Colour, ok: bool, now: float, may_eject: bool) -> Ejection | None:
        """Count one attempt; an Ejection when this one tips `colour` over a limit.

        `may_eject`: the caller allows it: only the canary is ever ejected (the stable colour is where
        its sessions go), and only while the stable colour is ready."""
        record = self._records[colour]
        record.consecutive_failures = 0 if ok else record.consecutive_failures + 1
        attempts, failures = self._count(record, ok, now)
        if ok or not self.options.enabled or record.ejection is not None or not may_eject:
            return None
        options = self.options
        if record.consecutive_failures >= options.consecutive_failures:
            return self._eject(colour, record, now, "consecutive",
                               f"{record.consecutive_failures} failures in a row")
        if attempts >= options.rate_min_requests and failures * 100 >= options.failure_rate_percent * attempts:
            return self._eject(colour, record, now, "rate",
                               f"{failures} of {attempts} attempts failed in {options.rate_window_s:g} s")
        return None

    def failing(self, colour: Colour) -> bool:
        """Its last attempt failed (or it is ejected): not a colour to pile retries on."""
        record = self._records[colour]
        return record.ejection is not None or record.consecutive_failures > 0

    def due_for_readmission(self, colour: Colour, now: float) -> bool:
        """Ejected and its time is over: a passing probe may readmit it."""
        ejection = self._records[colour].ejection
        return ejection is not None and now >= ejection.until

    def readmit(self, colour: Colour, now: float) -> Ejection | None:
        """Take `colour` back into traffic; the ejection that ended, if there was one."""
        record = self._records[colour]
        ended, record.ejection = record.ejection, None
        record.consecutive_failures = 0
        record.slices.clear()
        record.attempts = record.failures = 0
        record.readmitted_at = now
        return ended

    def _count(self, record: _ColourRecord, ok: bool, now: float) -> tuple[int, int]:
        slices = record.slices
        start = now - now % SLICE_S
        failed = 0 if ok else 1
        if slices and slices[-1][0] == start:
            slices[-1][1] += 1
            slices[-1][2] += failed
        else:
            slices.append([start, 1, failed])
        record.attempts += 1
        record.failures += failed
        while slices and slices[0][0] <= now - self.options.rate_window_s:
            _, attempts, failures = slices.popleft()
            record.attempts -= int(attempts)
            record.failures -= int(failures)
        return record.attempts, record.failures

    def _eject(self, colour: Colour, record: _ColourRecord, now: float, kind: str, why: str) -> Ejection:
        healthy_since = record.readmitted_at
        if healthy_since is not None and now - healthy_since > self.options.max_ejection_s:
            record.ejections_in_a_row = 0  # healthy for long enough: the next ejection starts short again
        record.ejections_in_a_row += 1
        duration = min(self.options.max_ejection_s,
                       self.options.base_ejection_s * 2 ** (record.ejections_in_a_row - 1))
        record.ejection = Ejection(colour, f"{colour.value} ejected for {duration:g} s: {why}", kind, now + duration,
                                   record.ejections_in_a_row)
        return record.ejection
