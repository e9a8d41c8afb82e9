"""The expression printer from several threads at once: each thread prints with the names
of its own shared subexpressions (``%0 = ...``), never with another thread's."""

from __future__ import annotations

from helpers import race

import dlc
from dlc import te


def _shared_subexpressions():
    """A function whose body prints one shared subexpression as ``%0``."""
    A = te.placeholder((64,), name="A")

    def body(i):
        x = A[i] * 2.0 + 1.0
        y = x * x - A[i] / 3.0 + x * 0.5 - 1.25
        return y * y + y * 3.0 - y / 7.0

    B = te.compute((64,), body, name="B")
    return dlc.lower(dlc.Schedule([A, B]))


def test_threads_print_with_their_own_names():
    """Four threads print four equal functions (distinct objects, so distinct names
    tables) with frequent thread switches: with one global table a thread printed part
    of its function with another's names, spelling ``%0`` out in full."""
    funcs = [_shared_subexpressions() for _ in range(4)]
    want = str(funcs[0])
    assert "B[i] = %0 * %0 + %0 * 3.0 - %0 / 7.0" in want
    differ = [0] * len(funcs)

    def work(k):
        for _ in range(400):
            differ[k] += str(funcs[k]) != want

    race(work, len(funcs), switch_interval=1e-5)
    assert differ == [0] * len(funcs)
