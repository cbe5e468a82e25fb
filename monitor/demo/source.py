"""A frame source that replays the bundled sample in a loop, paced in real time.

The sample spans a fraction of a second of a busy gateway; each loop spreads it over
``loop_s`` seconds (about a minute), and every frame is stamped with the demo clock
(``monitor.demo.clock.demo_time``) at the moment it is due, so the capture daemon sees a steady
school morning. The same laptops come back every loop, so incidents open in the first loop and
grow in the next ones, as a real person's would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path

from monitor.config.rules import build_calendar
from monitor.config.settings import Settings
from monitor.demo.clock import demo_time
from monitor.policy import SchoolCalendar
from monitor.sources.pcap import read_capture
from monitor.values import Frame

LOOP_S = 60.0
"""How long one pass over the sample takes."""
SAMPLE = "sample.pcap"


def sample_path() -> Path:
    """The bundled sample capture (package data of ``monitor.demo``)."""
    return Path(str(resources.files("monitor.demo") / SAMPLE))


def read_sample(path: Path | None = None) -> list[Frame]:
    """Every frame of the sample, in capture order."""
    with read_capture(str(path or sample_path())) as reader:
        return list(reader)


class DemoSource:
    """The ``FrameSource`` of ``up --demo``: the sample, forever, stamped into the school day."""

    def __init__(
        self,
        frames: Sequence[Frame],
        calendar: SchoolCalendar,
        *,
        loop_s: float = LOOP_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not frames:
            raise ValueError("the demo sample has no frames")
        if loop_s <= 0:
            raise ValueError(f"loop_s must be more than 0, not {loop_s}")
        self._frames = tuple(frames)
        self._calendar = calendar
        self._loop_s = loop_s
        self._clock = clock
        self.sent = 0
        """Frames handed out so far."""
        self.loops = 0
        """Passes over the sample begun so far."""

    @property
    def interfaces(self) -> list[str]:
        return ["the demo sample (replayed)"]

    def now(self) -> float:
        """The demo clock: what the daemon ticks its engine with."""
        return demo_time(self._clock(), self._calendar)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        """The sample again and again, each frame when it is due, until ``stop`` is set."""
        first = self._frames[0].ts
        span = (self._frames[-1].ts - first) or 1.0
        scale = self._loop_s / span
        calendar = self._calendar
        while not stop.is_set():
            self.loops += 1
            start = self._clock()
            for frame in self._frames:
                due = start + (frame.ts - first) * scale
                wait = due - self._clock()
                if (wait > 0 and stop.wait(wait)) or stop.is_set():
                    return
                self.sent += 1
                yield Frame(demo_time(due, calendar), frame.linktype, frame.data)

    def stats(self) -> dict[str, tuple[int, int]]:
        return {"demo": (self.sent, 0)}

    def close(self) -> None:
        """Nothing is held open."""


def open_demo_source(settings: Settings) -> DemoSource:
    """The demo source for these settings' calendar (``CaptureDaemon``'s ``open_source``).

    Fails at once (``NoSchoolDay``) when the calendar has no recent school day.
    """
    calendar = build_calendar(settings)
    source = DemoSource(read_sample(), calendar)
    source.now()
    return source


def demo_clock(settings: Settings) -> Callable[[], float]:
    """The capture daemon's clock in the demo: real time moved into the school day, as the
    frames are. Fails at once (``NoSchoolDay``) when the calendar has no recent school day."""
    calendar = build_calendar(settings)
    demo_time(time.time(), calendar)
    return lambda: demo_time(time.time(), calendar)
