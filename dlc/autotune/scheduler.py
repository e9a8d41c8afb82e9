"""Which task gets the next batch of trials (Ansor's task scheduler, simplified).

Every tunable task first gets one batch in turn (its default configuration included).
After that the next batch goes to the task whose tuning promises the largest saving of
whole-model time: its weight (occurrences) times its best latency so far, times how much
it improved over its last two batches (a task that stopped improving keeps a small
chance, ``floor``). Ties go to the task listed first, so the same measurements give the
same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TaskState:
    """What the scheduler knows of one task."""

    weight: int
    space_size: int
    measured: int = 0
    best: float | None = None  # seconds
    history: list = field(default_factory=list)  # best seconds after each batch

    @property
    def exhausted(self) -> bool:
        return self.measured >= self.space_size


class TaskScheduler:
    """Picks tasks by expected whole-model gain (see the module docstring)."""

    def __init__(self, states: list[TaskState], floor: float = 0.02):
        self.states = states
        self.floor = floor

    def next_task(self) -> int | None:
        """Index of the task to tune next; None when every space is exhausted."""
        open_ = [k for k, st in enumerate(self.states) if not st.exhausted]
        if not open_:
            return None
        fresh = [k for k in open_ if not self.states[k].history]
        if fresh:
            return fresh[0]
        return max(open_, key=lambda k: (self.gain(self.states[k]), -k))

    def gain(self, st: TaskState) -> float:
        """Expected saving of the next batch (seconds of whole-model time, relative)."""
        if st.best is None:
            return float("inf")  # nothing measured works yet: keep looking
        history = st.history[-3:]
        if len(history) >= 2 and history[0] > 0:
            improvement = max(0.0, (history[0] - history[-1]) / history[0])
        else:
            improvement = 1.0
        return st.weight * st.best * max(improvement, self.floor)

    def record(self, index: int, trials: int, best: float | None) -> None:
        st = self.states[index]
        st.measured += trials
        if best is not None and (st.best is None or best < st.best):
            st.best = best
        st.history.append(st.best if st.best is not None else 0.0)

