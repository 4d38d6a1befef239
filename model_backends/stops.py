"""Stop sequences: end the answer where one appears, without ever sending text that is taken back.

A stop sequence can arrive split across pieces ("Вопр" + "ос:"), so text that might be the
beginning of one is held back until the next piece shows whether it is; the stop sequence itself
and everything after it never reach the client. Pure string logic, shared by every local engine.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_STOP_SEQUENCES = 4  # as OpenAI's API allows


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Where the answer ends: the start of the stop sequence completed first in `text` (of two
    completed by the same character, the longer), or None when none occurs.

    "First completed" rather than "first begun" makes the cut independent of how the text was
    split into pieces: a stream stops as soon as a sequence is complete.
    """
    found = [(i + len(stop), i) for stop in stops if (i := text.find(stop)) >= 0]
    return min(found)[1] if found else None


def partial_tail(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of `text` that is a proper beginning of some stop sequence."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class StopMatcher:
    """Feeds streamed text through, releasing only what can no longer turn into a stop sequence."""

    def __init__(self, stops: Sequence[str]) -> None:
        if any(not stop for stop in stops):
            raise ValueError("stop sequences must not be empty")
        self._stops = tuple(stops)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text now safe to send; once a stop sequence has appeared, always ""."""
        if self.stopped:
            return ""
        buffer = self._held + text
        cut = first_stop(buffer, self._stops)
        if cut is not None:
            self.stopped, self._held = True, ""
            return buffer[:cut]
        keep = partial_tail(buffer, self._stops)
        self._held = buffer[len(buffer) - keep:]
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """The answer ended without a stop sequence: what was held back is answer text after all."""
        held, self._held = self._held, ""
        return held
