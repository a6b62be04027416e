"""Progress reporting: a bar on a terminal, plain log lines otherwise. Called from the host only
(once per chunk, epoch or task), never per grid element inside compiled code."""

from __future__ import annotations

import sys
import time


class Progress:
    """`Progress(total, label)`; call `update(done)` (absolute) or `advance(n)`; `close()`, or
    use it as a context manager. On a terminal the bar's line is ended when `done` reaches
    `total` (or at `close`), once; nothing is written for a bar that was never drawn."""

    def __init__(self, total: int, label: str, *, stream=None, enabled: bool = True):
        self.total, self.label, self.done = max(int(total), 1), label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.monotonic()
        self._last_logged = -1
        self._line_open = False  # a bar is drawn on the current line, not yet ended
        self._finished = False  # the bar reached `total` and its line was ended

    def update(self, done: int):
        self.done = min(int(done), self.total)
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.monotonic() - self.start
        if self.tty:
            if self._finished:
                return
            filled = int(30 * frac)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}% {elapsed:6.1f}s")
            self._line_open = True
            if self.done >= self.total:
                self._end_line()
                self._finished = True
            self.stream.flush()
        else:
            decile = int(10 * frac)
            if decile != self._last_logged:
                self._last_logged = decile
                self.stream.write(f"{self.label}: {100 * frac:.0f}% ({elapsed:.1f}s)\n")
                self.stream.flush()

    def advance(self, n: int = 1):
        self.update(self.done + n)

    def __call__(self, done, total=None):
        """Usable as the `progress(done, total)` callback of `convergence_study`."""
        if total is not None:
            self.total = max(int(total), 1)
        self.update(int(done))

    def _end_line(self):
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False

    def close(self):
        """End the bar's line if it is still open (idempotent)."""
        if self.enabled and self.tty:
            self._end_line()
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def log(message: str, *, stream=None):
    """One plain line on stderr."""
    (stream or sys.stderr).write(message + "\n")
