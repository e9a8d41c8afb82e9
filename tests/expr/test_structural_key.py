"""structural_key from several threads at once: structurally equal expressions get equal
keys, whichever thread meets their shape first."""

from __future__ import annotations

from helpers import race

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import structural_key


def test_threads_meeting_new_shapes_at_once_agree_on_keys():
    """Four threads build equal expressions (their own objects, over one variable, with
    constants no other test uses) and key them at once, with frequent thread switches:
    each expression gets the same key in every thread."""
    x = n.Var("x", dtypes.INDEX_DTYPE)
    count, threads = 20000, 4
    keys: list = [None] * threads

    def work(k):
        keys[k] = [structural_key(n.Add(x, n.Const(-7_000_000 - i, dtypes.INDEX_DTYPE)))
                   for i in range(count)]

    race(work, threads)
    split = [i for i in range(count) if len({keys[k][i] for k in range(threads)}) > 1]
    assert split == []
