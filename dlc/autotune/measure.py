"""Measurement that no candidate can kill: parallel builds, one isolated measuring process.

    builder = Builder("llvm", workers=2)
    runner = Runner(threads=2, timeout=10.0)
    results = measure(funcs, inputs, reference, builder, runner)
    results[0].median        # seconds, or None for an error (results[0].error says which)

- :class:`Builder` compiles candidates in a reused pool of worker processes (spawn-started,
  so none inherits this process's LLVM state). A build that raises gives a ``build_error``
  result; a build process that dies is replaced (the candidates it may have been building are
  built again one at a time, to find the one that kills it); a build that takes longer than
  ``timeout`` is stopped, with its process.
- :class:`Runner` runs candidates one at a time in ONE reused child process, started with
  "spawn" (no inherited OpenMP threads) and ``threads`` threads. For each candidate the
  child loads the library, runs the kernel once on outputs filled with NaN (or a byte
  pattern for integers), compares them with the reference (``wrong_result``, naming the
  worst element), stops if that first run is slower than ``slow_after``
  (``stopped_early``), then times warm-ups and repeats. A child killed by a signal
  (``runtime_crash``) or silent for ``timeout`` seconds (``timeout``: it is killed) is
  replaced before the next candidate.
- :func:`measure` builds all candidates first, then times each alone: the build processes
  are idle while a candidate runs, so a timed run never shares its cores with a build or with
  another timed run, and its numbers can be reproduced on a quiet machine.

Because the processes are spawned, a script that tunes must guard its top level with
``if __name__ == "__main__":`` (Python re-imports the main module in spawned children).
"""

from __future__ import annotations

import math
import multiprocessing
import signal
import statistics
import time
import weakref
from concurrent import futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np

from dlc import errors
from dlc.autotune import worker
from dlc.errors import ArgumentError, DlcError
from dlc.target import Target

ERROR_CLASSES = ("build_error", "runtime_crash", "timeout", "wrong_result", "stopped_early")


@dataclass
class MeasureResult:
    """The outcome of one candidate: its repeated run times, or an error of a known class.

    ``seconds`` is empty for errors, except ``stopped_early`` (the one run that was too
    slow)."""

    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    message: str = ""
    build_seconds: float = 0.0
    #: the outputs of the first run, when :meth:`Runner.run` was asked to keep them
    outputs: list | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.error is not None and self.error not in ERROR_CLASSES:
            raise DlcError(f"unknown measurement error class {self.error!r}; one of "
                           f"{', '.join(ERROR_CLASSES)}")

    @property
    def median(self) -> float | None:
        """Median of ``seconds`` (None when there are none)."""
        return statistics.median(self.seconds) if self.seconds else None


@dataclass
class Built:
    """A compiled candidate, ready for :meth:`Runner.run`."""

    name: str  # the kernel's function name in the library
    library: bytes
    metadata: dict
    build_seconds: float


# Builds -----------------------------------------------------------------------------------
_POLL = 0.05  # seconds between looks at the builds under way


class Builder:
    """A reused pool of ``workers`` spawn-started processes compiling PrimFuncs for
    ``target``. ``timeout`` bounds one build (counted from when the pool hands it out)."""

    def __init__(self, target, workers: int = 1, timeout: float = 120.0):
        if not isinstance(workers, int) or workers < 1:
            raise DlcError(f"Builder needs at least one worker process, got {workers!r}")
        self.target = Target.parse(target).check_available()
        self.workers = workers
        self.timeout = timeout
        self._pool: futures.ProcessPoolExecutor | None = None

    def build(self, funcs: list) -> list:
        """One :class:`Built` or ``MeasureResult(error="build_error")`` per PrimFunc."""
        results: list = [None] * len(funcs)
        todo = list(range(len(funcs)))
        suspects: list[int] = []
        try:
            while todo:
                alone = len(todo) == 1
                done, broken, todo = self._batch(funcs, todo)
                done.update({k: _died() for k in broken} if alone else {})
                suspects += [] if alone else broken
                _store(results, done)
            for k in suspects:  # alone, so that a process that dies names its killer
                done, broken, _ = self._batch(funcs, [k])
                done.update({k: _died() for k in broken})
                _store(results, done)
        except BaseException:  # Ctrl-C: leave no build running
            self._kill_pool()
            raise
        return results

    def _batch(self, funcs: list, indices: list) -> tuple[dict, list, list]:
        """Build ``funcs[k]`` for k in ``indices`` in parallel. Returns (results by index,
        suspects: the builds under way when a process died, indices to build again: those
        that were waiting then, or when a build was stopped for its timeout)."""
        pool = self._get_pool()
        pending = {pool.submit(worker.build_one, funcs[k], self.target): k for k in indices}
        started: dict = {}  # future -> when it was first seen handed to a process
        done: dict = {}
        while pending:
            finished, _ = futures.wait(pending, timeout=_POLL,
                                       return_when=futures.FIRST_COMPLETED)
            broken = False
            for future in finished:
                try:
                    done[pending[future]] = _built(future.result(), funcs[pending[future]])
                except BrokenProcessPool:
                    broken = True
                    continue
                except Exception as err:  # noqa: BLE001 - e.g. a PrimFunc that cannot be pickled
                    done[pending[future]] = MeasureResult(error="build_error",
                                                          message=worker.one_line(err))
                del pending[future]
            if broken:  # every pending build fails with the pool; who killed it?
                self._kill_pool()
                suspects = [k for f, k in pending.items() if f in started]
                if not suspects:  # it died before a poll saw any build start
                    return done, list(pending.values()), []
                return done, suspects, [k for f, k in pending.items() if f not in started]
            now = time.monotonic()
            for future in pending:
                if future.running():
                    started.setdefault(future, now)
            late = [f for f in started if f in pending and now - started[f] > self.timeout]
            if late:  # stop it the only way there is: with its process (and the others)
                self._kill_pool()
                for future in late:
                    done[pending.pop(future)] = MeasureResult(error="build_error", message=(
                        f"the build took longer than {self.timeout:g} s and was stopped"))
                return done, [], list(pending.values())
        return done, [], []

    def _get_pool(self) -> futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=worker.init_build_process)
        return self._pool

    def _kill_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # ProcessPoolExecutor has no public way to stop a running task (3.14 adds
        # kill_workers); its processes are listed in _processes.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the build processes (a later build starts new ones)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _store(results: list, done: dict) -> None:
    for k, value in done.items():
        results[k] = value


def _died() -> MeasureResult:
    return MeasureResult(error="build_error",
                         message="the build process died while building it (LLVM crashed?)")


def _built(reply: dict, func) -> Built | MeasureResult:
    if "error" in reply:
        return MeasureResult(error="build_error", message=reply["error"],
                             build_seconds=reply["seconds"])
    return Built(func.name, reply["library"], reply["metadata"], reply["seconds"])


# Runs -------------------------------------------------------------------------------------
class Runner:
    """One reused measuring process (spawn-started, ``threads`` threads), replaced after a
    crash or a timeout.

    Per candidate: one checked run, ``warmup - 1`` more untimed runs, then timed runs until
    there are ``min_repeats`` of them summing to at least ``min_seconds`` (at most
    ``max_repeats``, and stopping early when the wall time spent on the candidate would pass
    ``max_seconds``, half the ``timeout`` by default). ``timeout`` is how long the process
    may stay silent on one candidate before it is killed."""

    def __init__(self, threads: int, timeout: float = 10.0, warmup: int = 1,
                 min_repeats: int = 5, min_seconds: float = 0.05, max_repeats: int = 100,
                 max_seconds: float | None = None, start_timeout: float = 60.0):
        if not isinstance(threads, int) or threads < 1:
            raise DlcError(f"Runner needs a positive number of threads, got {threads!r}")
        if warmup < 1:
            raise DlcError(f"warmup must be at least 1 (the first run is checked, not timed), "
                           f"got {warmup}")
        if not 1 <= min_repeats <= max_repeats:
            raise DlcError(f"need 1 <= min_repeats <= max_repeats, got {min_repeats} and "
                           f"{max_repeats}")
        if timeout <= 0:
            raise DlcError(f"timeout must be positive, got {timeout}")
        self.threads = threads
        self.timeout = timeout
        self.warmup = warmup
        self.min_repeats = min_repeats
        self.min_seconds = min_seconds
        self.max_repeats = max_repeats
        self.max_seconds = max_seconds
        self.start_timeout = start_timeout
        self.processes_started = 0
        self._process = None
        self._conn = None
        self._finalizer = None

    def run(self, built, inputs: list, reference: list | None,
            slow_after: float | None = None, keep_outputs: bool = False,
            flush_bytes: int = 0) -> MeasureResult:
        """Check and time one candidate (a build error is returned as it is). ``inputs``
        are the arrays of the kernel's input parameters in order; ``reference`` the expected
        outputs (None: not checked). ``keep_outputs``: return the first run's outputs too
        (``result.outputs``), e.g. to use the default schedule's as the reference.
        ``flush_bytes``: time each run with cold caches (a buffer that large rewritten
        before it)."""
        if isinstance(built, MeasureResult):
            return built
        request = self._request(built, inputs, reference, slow_after)
        request["keep_outputs"] = keep_outputs
        request["flush_bytes"] = flush_bytes
        result = self._run(built, request)
        result.build_seconds = built.build_seconds
        return result

    def _run(self, built: Built, request: dict) -> MeasureResult:
        if self._process is None or not self._process.is_alive():
            self._restart()
        try:
            self._conn.send(request)
            if not self._conn.poll(self.timeout):
                self._stop(kill=True)
                return MeasureResult(error="timeout", message=(
                    f"no answer within {self.timeout:g} s; the measuring process was killed"))
            reply = self._conn.recv()
        except (EOFError, OSError):
            return MeasureResult(error="runtime_crash", message=self._died())
        except BaseException:  # Ctrl-C while a candidate runs: do not leave it running
            self._stop(kill=True)
            raise
        if "raise" in reply:
            raise getattr(errors, reply["raise"], DlcError)(reply["message"])
        return MeasureResult(reply["seconds"], reply["error"], reply["message"],
                             outputs=reply.get("outputs"))

    @property
    def pid(self) -> int | None:
        """The measuring process's id (None before the first run and after a crash)."""
        return self._process.pid if self._process is not None else None

    def _request(self, built: Built, inputs: list, reference, slow_after) -> dict:
        spec = next(f for f in built.metadata["functions"] if f["name"] == built.name)
        n_out = sum(1 for p in spec["params"] if p.get("output"))
        n_in = len(spec["params"]) - n_out
        if len(inputs) != n_in:
            raise ArgumentError(f"{built.name} takes {n_in} input arrays, got {len(inputs)}")
        if reference is not None and len(reference) != n_out:
            raise ArgumentError(f"{built.name} has {n_out} outputs, got {len(reference)} "
                                "reference arrays")
        max_seconds = self.max_seconds if self.max_seconds is not None else self.timeout / 2
        return {"library": built.library, "metadata": built.metadata, "function": built.name,
                "inputs": [np.array(a, order="C") for a in inputs],  # 0-d stays 0-d
                "reference": reference, "slow_after": slow_after, "warmup": self.warmup,
                "min_repeats": self.min_repeats, "min_seconds": self.min_seconds,
                "max_repeats": self.max_repeats, "max_seconds": max_seconds}

    def _restart(self) -> None:
        self._stop(kill=True)
        context = multiprocessing.get_context("spawn")
        conn, child_conn = context.Pipe()
        process = context.Process(target=worker.serve, args=(child_conn, self.threads),
                                  name="dlc-measure", daemon=True)
        process.start()
        child_conn.close()
        self.processes_started += 1
        self._process, self._conn = process, conn
        self._finalizer = weakref.finalize(self, _shut, process, conn)
        try:
            ready = conn.poll(self.start_timeout) and "ready" in conn.recv()
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._stop(kill=True)
            raise DlcError(f"the measuring process did not start within "
                           f"{self.start_timeout:g} s")

    def _died(self) -> str:
        """Reap a dead child; describe how it died."""
        process = self._process
        process.join(5)
        code = process.exitcode
        self._stop(kill=True)
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the kernel crashed the measuring process ({name})"
        return f"the measuring process exited with code {code}"

    def _stop(self, kill: bool) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        process, conn = self._process, self._conn
        self._process = self._conn = self._finalizer = None
        if process is not None:
            _shut(process, conn, kill)

    def close(self) -> None:
        """Stop the measuring process (a later run starts a new one)."""
        self._stop(kill=False)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shut(process, conn, kill: bool = True) -> None:
    """Stop a measuring process: ask it to exit (unless ``kill``), else terminate, then kill."""
    if not kill and process.is_alive():
        try:
            conn.send(None)
        except OSError:
            pass
        process.join(2)
    if process.is_alive():
        process.terminate()
        process.join(1)
    if process.is_alive():
        process.kill()
        process.join()
    conn.close()


def measure(funcs: list, inputs: list, reference: list | None, builder: Builder,
            runner: Runner, slow_after: float | None = None,
            slow_factor: float | None = None) -> list[MeasureResult]:
    """Build every PrimFunc (in parallel), THEN time each alone: the build processes are idle
    while a candidate runs. A candidate stops early when its first run is slower than
    ``slow_after`` seconds, or (``slow_factor``) than that many times the best median so far
    in this batch."""
    builds = builder.build(funcs)
    results = []
    best = math.inf
    for built in builds:
        limit = slow_after
        if slow_factor is not None and best < math.inf:
            limit = min(limit if limit is not None else math.inf, slow_factor * best)
        result = runner.run(built, inputs, reference, limit)
        if result.error is None:
            best = min(best, result.median)
        results.append(result)
    return results
