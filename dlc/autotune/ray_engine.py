"""Tuning over a Ray cluster: one measuring actor per machine, each holding that machine.

    engine = RayEngine("llvm", threads=8, address="auto")    # the cluster this machine is in
    tune("model.onnx", "tune.jsonl", seconds=1200, engine=engine)   # or: dlc tune --ray auto

- Every machine of the cluster (every Ray node offering CPUs) gets one actor, pinned to it
  (``NodeAffinitySchedulingStrategy(node, soft=False)``) and claiming all of its CPUs, so
  Ray schedules nothing else there while the run lasts.
- An actor is a :class:`dlc.autotune.tuner.LocalEngine` on its machine: it builds its
  candidates in a pool of processes, THEN times each alone in one measuring process. A
  candidate that crashes, hangs or computes a wrong value is recorded exactly as on one
  machine (the actor never runs a candidate itself), and the next one is measured.
- A batch is split into one contiguous share per actor; the shares are measured at the same
  time and the results come back in the batch's order. An actor lost with its machine has
  its share measured again by the others (with a warning).
- Records name the tuning target's CPU, so every measuring machine must be that CPU: at
  start each actor reports its host's CPU name and features, and a machine that differs
  (or offers fewer CPUs than a kernel's threads) is refused with an error naming it.

Ray is an optional dependency (``pip install 'dlc[ray]'``), imported when an engine is
made. How to start a cluster: docs/reference/distributed_tuning.md.
"""

from __future__ import annotations

import socket
import warnings

from dlc.errors import DlcError, DlcWarning
from dlc.target import Target

#: Build processes per machine at most (as many as it has CPUs below this).
MAX_BUILD_WORKERS = 8
#: Seconds to wait for a cluster address to accept a connection before giving up.
CONNECT_TIMEOUT = 5.0


class NodeEngine:
    """The actor on one machine (made a Ray actor by :class:`RayEngine`): a LocalEngine
    plus the machine's identity."""

    def __init__(self, target, threads: int, timeout: float, build_workers: int):
        from dlc.autotune.tuner import LocalEngine

        self.engine = LocalEngine(target, threads, timeout, build_workers)

    def identity(self) -> dict:
        """This machine: its host name, and the CPU name and features of its "llvm"."""
        from dlc.autotune.log import target_json

        host = target_json(Target.parse("llvm"))
        return {"host": socket.gethostname(), "cpu": host["cpu"], "features": host["features"]}

    def reference(self, func, inputs, cold: bool = False):
        return self.engine.reference(func, inputs, cold)

    def measure(self, funcs, inputs, reference, slow_after):
        return self.engine.measure(funcs, inputs, reference, slow_after)

    def measure_rounds(self, funcs, inputs, reference, rounds: int):
        return self.engine.measure_rounds(funcs, inputs, reference, rounds)

    def close(self) -> None:
        self.engine.close()


class RayEngine:
    """Measures batches over a Ray cluster (the module docstring says how); the interface
    of :class:`dlc.autotune.tuner.LocalEngine`.

    ``address``: "auto" (the cluster this machine belongs to), "HOST:PORT" of a cluster's
    head, or None (the cluster this process already joined, else a new one on this machine,
    as ``ray.init()`` decides). ``target`` is what the records name; every machine must be
    that CPU."""

    def __init__(self, target, threads: int, timeout: float = 10.0, address: str | None = None,
                 build_workers: int | None = None):
        ray = import_ray()
        self.target = Target.parse(target).check_available()
        self.threads, self.timeout = threads, timeout
        self.actors: list = []
        self.machines: list[str] = []  # "host (address)" per actor
        self.measured: list[int] = []  # candidates measured per actor
        self._pending: list = []
        self._turn = 0  # which actor takes the first share next (small batches rotate)
        self._started = connect(ray, address)
        try:
            self._start_actors(ray, build_workers)
        except BaseException:
            self.close()
            raise

    def _start_actors(self, ray, build_workers: int | None) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
        if not nodes:
            raise DlcError("the Ray cluster has no machine offering CPUs to measure on (was "
                           "every 'ray start' given --num-cpus=0?)")
        actor_class = ray.remote(max_restarts=0, max_task_retries=0)(NodeEngine)
        for node in nodes:
            cpus = int(node["Resources"]["CPU"])
            workers = build_workers or max(1, min(cpus, MAX_BUILD_WORKERS))
            self.actors.append(actor_class.options(
                num_cpus=cpus, scheduling_strategy=NodeAffinitySchedulingStrategy(
                    node["NodeID"], soft=False)).remote(self.target, self.threads,
                                                        self.timeout, workers))
        reports = self._get([a.identity.remote() for a in self.actors], lost_ok=True)
        for node, report in zip(nodes, reports):
            if report is not None:
                report["ray_cpus"] = int(node["Resources"]["CPU"])
                report["address"] = node.get("NodeManagerAddress", "?")
        check_machines(self.target, self.threads, [r for r in reports if r is not None])
        self.machines = [f"{r['host']} ({r['address']})" if r else
                         f"{node.get('NodeManagerAddress', '?')} (did not start)"
                         for node, r in zip(nodes, reports)]
        self.measured = [0] * len(reports)
        self._drop([k for k, r in enumerate(reports) if r is None])

    # -- the engine interface -----------------------------------------------------------------
    def reference(self, func, inputs, cold: bool = False):
        """The outputs and timing of the default configuration (a MeasureResult), measured
        on one machine (``cold``: each run with cold caches)."""
        import ray

        return self._on_one_machine(
            lambda actor: actor.reference.remote(func, ray.put(inputs), cold),
            lambda result: 1)

    def measure_rounds(self, funcs, inputs, reference, rounds: int):
        """tuner._measure_rounds on ONE machine: the candidates of a confirmation are
        compared under the same conditions, never across machines."""
        return self._on_one_machine(
            lambda actor: actor.measure_rounds.remote(funcs, inputs, reference, rounds),
            lambda per_func: sum(map(len, per_func)))

    def _on_one_machine(self, call, count):
        """``call(actor)``'s answer from the next machine (another one if that machine is
        lost); ``count(answer)`` measurements are credited to it."""
        while True:
            k = self._next()
            (answer,) = self._get([call(self.actors[k])], lost_ok=True)
            if answer is not None:
                self.measured[k] += count(answer)
                return answer
            self._drop([k])  # lost with its machine: another one measures it

    def measure(self, funcs, inputs, reference, slow_after):
        """One MeasureResult per PrimFunc, in order; the batch spread over the machines."""
        import ray

        inputs, reference = ray.put(inputs), ray.put(reference)
        results: list = [None] * len(funcs)
        todo = list(range(len(funcs)))
        while todo:
            first = self._next()  # share j goes to actor (first + j) % n
            n = len(self.actors)
            busy = [((first + j) % n, share) for j, share in enumerate(split(todo, n)) if share]
            refs = [self.actors[k].measure.remote([funcs[i] for i in share], inputs, reference,
                                                  slow_after) for k, share in busy]
            answers = self._get(refs, lost_ok=True)
            todo, lost = [], []
            for (k, share), answer in zip(busy, answers):
                if answer is None:  # the actor died with its machine: the others redo its share
                    todo += share
                    lost.append(k)
                    continue
                for index, result in zip(share, answer):
                    results[index] = result
                self.measured[k] += len(answer)
            self._drop(lost)
        return results

    def close(self) -> None:
        """Stop the actors (and their measuring and build processes); disconnect from the
        cluster if this engine connected (which stops a Ray instance that it started).
        Safe to call twice."""
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        interrupted, self._pending = bool(self._pending), []
        actors, self.actors = self.actors, []
        if actors and not interrupted:  # let each stop its processes; then end it anyway
            ray.wait([a.close.remote() for a in actors], num_returns=len(actors), timeout=10)
        for actor in actors:  # Ray ends an actor's child processes with it (a hung kernel too)
            ray.kill(actor)
        if self._started:
            self._started = False
            ray.shutdown()

    # -- helpers ----------------------------------------------------------------------------
    def _next(self) -> int:
        k = self._turn % len(self.actors)
        self._turn += 1
        return k

    def _get(self, refs: list, lost_ok: bool = False) -> list:
        """ray.get each ref: a dlc error raised in an actor is raised here as it was; an
        actor that died gives None when ``lost_ok``, else a DlcError."""
        import ray

        self._pending = list(refs)  # until all are answered: close() then kills the actors
        answers = []
        for ref in refs:
            try:
                answers.append(ray.get(ref))
            except ray.exceptions.RayTaskError as err:
                if isinstance(err.cause, DlcError):
                    raise err.cause from None
                raise
            except ray.exceptions.RayActorError as err:
                if not lost_ok:
                    raise DlcError(f"a measuring machine of the Ray cluster was lost: "
                                   f"{_first_line(err)}") from None
                answers.append(None)
        self._pending = []
        return answers

    def _drop(self, lost: list) -> None:
        if not lost:
            return
        import ray

        names = [self.machines[k] for k in lost]
        for k in lost:
            ray.kill(self.actors[k])  # dead already, or cut off: let it go
        self.actors = [a for k, a in enumerate(self.actors) if k not in lost]
        self.machines = [m for k, m in enumerate(self.machines) if k not in lost]
        self.measured = [m for k, m in enumerate(self.measured) if k not in lost]
        if not self.actors:
            raise DlcError(f"lost every measuring machine of the Ray cluster "
                           f"({', '.join(names)})")
        warnings.warn(f"lost the measuring machine(s) {', '.join(names)}; measuring on the "
                      f"{len(self.actors)} left", DlcWarning, stacklevel=3)


def import_ray():
    """The ray module, or a DlcError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DlcError("tuning over a Ray cluster needs Ray: pip install 'dlc[ray]'") from None
    return ray


def connect(ray, address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (see RayEngine). True when this call connected
    (the caller then disconnects with ray.shutdown(), which also stops a Ray instance that
    ray.init started here); False when this process had joined a cluster already."""
    import logging

    if ray.is_initialized():
        return False
    check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except Exception as err:  # noqa: BLE001 - ray.init has no single error class
        raise DlcError(f"cannot join the Ray cluster at {address or 'this machine'}: "
                       f"{_first_line(err)} (is it running, with this Ray version, and does "
                       "this machine have its auth token? see "
                       "docs/reference/distributed_tuning.md)") from None
    return True


def check_reachable(address: str | None) -> None:
    """A DlcError now, rather than minutes of retries inside ray.init, when a HOST:PORT
    address accepts no connection."""
    if address in (None, "auto", "local"):
        return
    text = address.split("://", 1)[-1]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise DlcError(f"--ray {address!r}: give 'auto' or the head's HOST:PORT (e.g. "
                       "10.0.0.1:6379, the address 'ray start --head' prints)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as err:
        raise DlcError(f"cannot reach the Ray cluster at {address}: "
                       f"{err.strerror or err} (is 'ray start --head' running there, and "
                       "the port open?)") from None


def check_machines(target: Target, threads: int, reports: list[dict]) -> None:
    """Refuse the cluster unless every machine is the CPU the records will name (the same
    CPU name, and the same enabled features when the target names features) and offers at
    least ``threads`` CPUs to Ray."""
    from dlc.autotune.log import target_json

    want = target_json(target)
    problems = []
    for r in reports:
        where = f"{r['host']} ({r['address']})"
        if r["cpu"] != want["cpu"]:
            problems.append(f"{where} is a {r['cpu']}")
        elif want["features"] and enabled(r["features"]) != enabled(want["features"]):
            extra = sorted(enabled(r["features"]) - enabled(want["features"]))
            missing = sorted(enabled(want["features"]) - enabled(r["features"]))
            problems.append(f"{where} has other CPU features (" + ", ".join(
                part for part in (_listed("+", extra), _listed("-", missing)) if part) + ")")
        elif r["ray_cpus"] < threads:
            problems.append(f"{where} offers {r['ray_cpus']} CPUs to Ray, fewer than the "
                            f"{threads} threads a kernel runs with")
    if problems:
        raise DlcError(f"cannot measure for {want['cpu']} on this Ray cluster: "
                       + "; ".join(problems) + ". Every measuring machine must be the CPU "
                       "the records name: tune each kind of machine in a cluster of its own, "
                       "or start the others with 'ray start --num-cpus=0' (or pass --threads)")


def enabled(features: str) -> frozenset:
    """The enabled features of an LLVM feature string ("+avx2,-avx512f" -> {"avx2"})."""
    words = (w.strip() for w in features.split(","))
    return frozenset(w.lstrip("+") for w in words if w and not w.startswith("-"))


def split(items: list, parts: int) -> list[list]:
    """``items`` in ``parts`` contiguous shares, sizes differing by at most one."""
    size, extra = divmod(len(items), parts)
    shares, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        shares.append(items[start:end])
        start = end
    return shares


def _listed(sign: str, names: list, shown: int = 4) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return " ".join(sign + n for n in names[:shown]) + more if names else ""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
