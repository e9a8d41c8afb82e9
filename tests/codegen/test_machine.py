"""dlc.codegen.llvm.machine from several threads: target machines are created with fd 2
redirected to read LLVM's warnings, so two creations at once must not mix them up."""

from __future__ import annotations

import os
import threading

from dlc.codegen.llvm import machine
from dlc.errors import TargetError


def _create(cpu: str, features: str, start: threading.Barrier, problems: list) -> None:
    """Create a target machine once ``start`` lets every thread go; an unknown CPU must
    raise TargetError and a known one must not."""
    start.wait()
    try:
        machine.target_machine(cpu, features, 3)
        if cpu.startswith("notacpu"):
            problems.append(f"{cpu} was accepted")
    except TargetError as err:
        if not cpu.startswith("notacpu"):
            problems.append(f"{cpu} was refused: {err}")


def test_target_machines_created_in_two_threads_at_once():
    """One thread asks for an unknown CPU (refused from LLVM's warning), the other for
    haswell (accepted), again and again: each gets its own answer, and fd 2 is left
    where it was. Without a lock both threads redirect fd 2 at once: warnings reach the
    wrong thread and fd 2 can stay pointed at a deleted temporary file."""
    stderr = os.fstat(2)
    problems: list = []
    for r in range(200):
        machine.target_machine.cache_clear()
        start = threading.Barrier(2)
        threads = [threading.Thread(target=_create, args=(cpu, features, start, problems))
                   for cpu, features in ((f"notacpu{r}", ""), ("haswell", "+avx2"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (stderr.st_dev, stderr.st_ino), "fd 2 moved"
    assert problems == []
