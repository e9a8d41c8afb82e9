"""Progress of a tuning run: per task the trials done and planned, the best latency and
GFLOP/s so far; the estimated whole-model latency, the elapsed and the remaining time.

On a terminal a live table (rich) is redrawn in place; elsewhere (a pipe, a CI log) every
update is one plain line, so the tuner should call ``update`` once per measured batch::

    progress = Progress(total_trials=2000)
    progress.update("dense(64x256, 256x128)", done=64, planned=512, best_seconds=1.2e-4,
                    gflops=27.9, model_seconds=3.1e-3)
    progress.close()

rich is imported only when the live table is drawn.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from dlc.autotune.report import format_duration, format_seconds


@dataclass
class TaskProgress:
    done: int
    planned: int
    best_seconds: float | None
    gflops: float | None
    updated: int  # the number of the update that last changed it


class Progress:
    """Shows tuning progress on ``stream`` (default stdout): a live table when it is a
    terminal (or ``live=True``), one line per update otherwise; nothing when ``enabled``
    is false. ``total_trials`` is the whole run's budget; without it the remaining time
    counts the trials planned for the tasks updated so far."""

    MAX_ROWS = 12  # the live table shows the tasks updated last

    def __init__(self, stream=None, *, live: bool | None = None, enabled: bool = True,
                 total_trials: int | None = None, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        self.live = enabled and (_isatty(self.stream) if live is None else live)
        self.total_trials = total_trials
        self.tasks: dict[str, TaskProgress] = {}
        self.model_seconds: float | None = None
        self._clock = clock
        self._start = clock()
        self._updates = 0
        self._display = None  # rich.live.Live, started by the first update

    # -- state ------------------------------------------------------------------------------
    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    @property
    def done(self) -> int:
        return sum(t.done for t in self.tasks.values())

    @property
    def planned(self) -> int:
        return self.total_trials or sum(t.planned for t in self.tasks.values())

    @property
    def remaining(self) -> float | None:
        """Seconds left at the pace so far (None before the first trial)."""
        done = self.done
        if not done:
            return None
        return max(0.0, self.elapsed * (self.planned - done) / done)

    def update(self, task: str, done: int, planned: int, best_seconds: float | None = None,
               gflops: float | None = None, model_seconds: float | None = None) -> None:
        """Record a task's progress and show it."""
        if not self.enabled:
            return
        self._updates += 1
        self.tasks[task] = TaskProgress(done, planned, best_seconds, gflops, self._updates)
        if model_seconds is not None:
            self.model_seconds = model_seconds
        if self.live:
            self._show_live()
        else:
            self.stream.write(self.line(task) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Stop the live table (leaving its last state on screen)."""
        if self._display is not None:
            self._display.update(self._render(), refresh=True)
            self._display.stop()
            self._display = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- text -------------------------------------------------------------------------------
    def line(self, task: str) -> str:
        """One plain line: this task's state, then the run's."""
        t = self.tasks[task]
        best = format_seconds(t.best_seconds)
        if t.gflops is not None:
            best += f" ({t.gflops:.1f} GFLOP/s)"
        return (f"[{format_duration(self.elapsed)}] {task}: {t.done}/{t.planned} trials, "
                f"best {best}; {self._footer()}")

    def _footer(self) -> str:
        return (f"model {format_seconds(self.model_seconds)}; {self.done}/{self.planned} "
                f"trials, {format_duration(self.elapsed)} elapsed, "
                f"{format_duration(self.remaining)} left")

    # -- live -------------------------------------------------------------------------------
    def _show_live(self) -> None:
        if self._display is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, force_terminal=True)
            self._display = Live(self._render(), console=console, refresh_per_second=4,
                                 transient=False)
            self._display.start()
        else:
            self._display.update(self._render())

    def _render(self):
        from rich.console import Group
        from rich.text import Text

        return Group(self._table(), Text(self._footer()))

    def _table(self):
        from rich.table import Table

        table = Table(title="dlc tune", title_justify="left")
        table.add_column("task", overflow="fold")
        table.add_column("trials", justify="right")
        table.add_column("best", justify="right")
        table.add_column("GFLOP/s", justify="right")
        recent = sorted(self.tasks, key=lambda k: self.tasks[k].updated)[-self.MAX_ROWS:]
        shown = [k for k in self.tasks if k in set(recent)]
        for name in shown:
            t = self.tasks[name]
            style = "bold" if t.updated == self._updates else None
            table.add_row(name, f"{t.done}/{t.planned}", format_seconds(t.best_seconds),
                          "-" if t.gflops is None else f"{t.gflops:.1f}", style=style)
        if len(shown) < len(self.tasks):
            table.add_row(f"... {len(self.tasks) - len(shown)} more tasks", "", "", "")
        return table


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
