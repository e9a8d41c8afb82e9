"""Tuning progress (dlc.autotune.progress): one plain line per update off a terminal, a
live rich table on one, the remaining-time estimate, and rich imported only for the table."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from dlc.autotune.progress import Progress


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_off_a_terminal():
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, clock=clock, total_trials=40)
    assert not progress.live                        # a StringIO is not a terminal
    clock.now += 5
    progress.update("dense(64x64)", 4, 20, best_seconds=1.5e-4, gflops=3.5,
                    model_seconds=2e-3)
    clock.now += 15
    progress.update("relu(64)", 6, 20)
    progress.close()
    assert out.getvalue().splitlines() == [
        # 4 of 40 trials in 5 s: 36 more take 45 s
        "[5s] dense(64x64): 4/20 trials, best 150.0 us (3.5 GFLOP/s); model 2.000 ms; "
        "4/40 trials, 5s elapsed, 45s left",
        # 10 of 40 in 20 s: 30 more take 60 s; the model estimate stays
        "[20s] relu(64): 6/20 trials, best -; model 2.000 ms; 10/40 trials, 20s elapsed, "
        "1m00s left",
    ]


def test_remaining_time_without_a_budget_counts_the_tasks_seen():
    clock = Clock()
    progress = Progress(io.StringIO(), clock=clock)
    assert progress.remaining is None
    progress.update("a", 0, 10)
    assert progress.remaining is None               # no trial done yet: no pace
    clock.now += 30
    progress.update("a", 5, 10)
    progress.update("b", 5, 30)
    assert (progress.done, progress.planned) == (10, 40)
    assert progress.remaining == 90.0               # 30 more trials at 3 s each
    progress.update("b", 30, 30)
    progress.update("a", 10, 10)
    assert progress.remaining == 0.0


def test_live_table_on_a_terminal():
    out, clock = Terminal(), Clock()
    with Progress(out, clock=clock, total_trials=64) as progress:
        assert progress.live
        clock.now += 65
        progress.update("dense(64x64)", 16, 32, best_seconds=2.5e-5, gflops=21.0,
                        model_seconds=4.2e-4)
        progress.update("softmax(64)", 16, 32, best_seconds=3e-6)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # no terminal codes
    final = text[text.rindex("dlc tune"):]
    for row in (r"dense\(64x64\)\s*│\s*16/32\s*│\s*25\.0 us\s*│\s*21\.0",
                r"softmax\(64\)\s*│\s*16/32\s*│\s*3\.0 us\s*│\s*-"):
        assert re.search(row, final), final
    assert "model 420.0 us; 32/64 trials, 1m05s elapsed, 1m05s left" in final


def test_live_table_shows_the_tasks_updated_last():
    out = Terminal()
    progress = Progress(out, live=True)
    for k in range(Progress.MAX_ROWS + 3):
        progress.update(f"task{k:02d}", 1, 2)
    progress.update("task00", 2, 2)
    table = progress._table()
    progress.close()
    names = list(table.columns[0].cells)
    assert names[0] == "task00" and "task01" not in names and "task03" not in names
    assert names[-1] == "... 3 more tasks" and len(names) == Progress.MAX_ROWS + 1


def test_disabled_progress_writes_nothing():
    out = Terminal()
    progress = Progress(out, enabled=False)
    progress.update("a", 1, 2, best_seconds=1.0)
    progress.close()
    assert out.getvalue() == "" and not progress.tasks


def test_rich_is_imported_only_for_the_live_table():
    code = ("import io, sys; from dlc.autotune.progress import Progress; "
            "p = Progress(io.StringIO()); p.update('a', 1, 2); p.close(); "
            "print('rich' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
