"""Tuning over Ray (dlc/autotune/ray_engine.py): a real two-machine Ray cluster started on
this machine tunes the small model through ``dlc tune --ray``; a crashing candidate is
recorded as locally and the next one measured; a machine of another CPU is refused; and
without Ray, or without a reachable cluster, ``--ray`` fails with one line.

The cluster tests are marked ``tune`` (starting Ray takes ~10 s) and skipped without Ray
(``pip install 'dlc[ray]'``)."""

import contextlib
import io
import json
import sys
import warnings

import numpy as np
import pytest
from test_measure import scaled, segfault
from tiny_models import small_model, small_reference

import dlc
from dlc import cli
from dlc.autotune.log import read_log, target_json
from dlc.autotune.measure import MeasureResult
from dlc.autotune.ray_engine import RayEngine, check_machines, check_reachable, split
from dlc.autotune.tuner import CONFIRM_ROUNDS
from dlc.errors import DlcError, DlcWarning
from dlc.target import Target


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(str(tmp_path_factory.mktemp("ray") / "small.onnx"))


# Without a cluster ----------------------------------------------------------------------
def test_ray_flag_without_ray_installed_is_one_line(model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = run_cli("tune", model, "--log", tmp_path / "t.jsonl", "--trials", "1",
                             "--ray", "auto")
    assert code == 2 and err.strip() == ("dlc tune: error: tuning over a Ray cluster needs "
                                         "Ray: pip install 'dlc[ray]'"), err
    assert not (tmp_path / "t.jsonl").exists()


def test_unreachable_or_malformed_address_fails_at_once():
    with pytest.raises(DlcError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1: "):
        check_reachable("127.0.0.1:1")  # refused: nothing listens on port 1
    with pytest.raises(DlcError, match="give 'auto' or the head's HOST:PORT"):
        check_reachable("head-without-port")
    check_reachable("auto")  # left to ray.init


def test_unreachable_cluster_from_the_command_line_is_one_line(model, tmp_path):
    pytest.importorskip("ray")
    code, out, err = run_cli("tune", model, "--log", tmp_path / "t.jsonl", "--trials", "1",
                             "--ray", "127.0.0.1:1")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("dlc tune: error: cannot reach the Ray cluster at 127.0.0.1:1")


def test_batches_split_in_contiguous_shares():
    assert split(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split([4, 9], 3) == [[4], [9], []]
    assert sum(split(list(range(8)), 2), []) == list(range(8))


def test_machines_of_another_cpu_or_too_few_cpus_are_refused():
    target = Target.parse("llvm -mcpu=znver4 -mattr=+avx2,+fma")
    good = {"host": "a", "address": "10.0.0.1", "cpu": "znver4", "features": "+fma,+avx2,-sse4a",
            "ray_cpus": 8}
    check_machines(target, 8, [good])  # same enabled features, in another order
    other = dict(good, host="b", address="10.0.0.2", cpu="skylake")
    fewer = dict(good, host="c", address="10.0.0.3", features="+avx2")
    small = dict(good, host="d", address="10.0.0.4", ray_cpus=4)
    with pytest.raises(DlcError) as err:
        check_machines(target, 8, [good, other, fewer, small])
    message = str(err.value)
    assert message.startswith("cannot measure for znver4 on this Ray cluster: b (10.0.0.2) is "
                              "a skylake; c (10.0.0.3) has other CPU features (-fma); d "
                              "(10.0.0.4) offers 4 CPUs to Ray, fewer than the 8 threads")
    assert "a (10.0.0.1)" not in message
    # a target naming a CPU but no features: the CPU name decides
    check_machines(Target.parse("llvm -mcpu=znver4"), 8, [fewer])


# On a real cluster ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """Two Ray nodes ("machines") of one CPU each on this machine; this process joins."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("this process is in another Ray cluster already")
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes.add_node(num_cpus=1)
    try:
        ray.init(address=nodes.address)
        nodes.wait_for_nodes()
        yield nodes.address
    finally:
        ray.shutdown()
        nodes.shutdown()


def _free_cpus(ray, want: int = 2, wait: float = 20.0) -> float:
    """The cluster's free CPUs, once they are ``want`` (actors killed free theirs soon after,
    not at once) or after ``wait`` seconds."""
    import time

    end = time.monotonic() + wait
    while True:
        free = ray.available_resources().get("CPU", 0)
        if free == want or time.monotonic() > end:
            return free
        time.sleep(0.2)


@pytest.mark.tune
def test_dlc_tune_over_ray_logs_like_locally_and_compiles(cluster, model, tmp_path):
    log = tmp_path / "tune.jsonl"
    code, out, err = run_cli("tune", model, "--log", log, "--trials", 8, "--threads", 1,
                             "--ray", cluster)
    assert code == 0, err
    assert "measuring on 2 machine(s) of the Ray cluster" in out
    counts = [int(part.rsplit(" ", 1)[1]) for part in
              out.split("measured on: ")[1].splitlines()[0].split(", ")]
    assert len(counts) == 2 and all(counts), out  # both machines worked
    everything = read_log(log).records
    records = [r for r in everything if not r.get("confirmation")]
    confirmations = len(everything) - len(records)  # each measured in CONFIRM_ROUNDS rounds
    assert len(records) == 8 and confirmations > 0  # the confirmation ran through Ray too
    assert sum(counts) == 8 + CONFIRM_ROUNDS * confirmations, out
    here = target_json(Target.parse("llvm"))
    for record in records:
        assert record["schema"] == 2 and record["threads"] == 1
        assert record["target"]["cpu"] == here["cpu"]
        assert record["target"]["features"] == here["features"]
        assert record["error"] is not None or record["seconds"]
    keys = [(r["task"], json.dumps(r["config"], sort_keys=True)) for r in records]
    assert len(keys) == len(set(keys))  # nothing measured twice
    compiled = dlc.compile(model, tuning_log=log)
    assert all(k.tuned for k in compiled.kernels)
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_allclose(compiled.run(x)[0], small_reference(x)[0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.tune
def test_a_crash_is_recorded_and_the_next_candidate_measured(cluster):
    import ray

    A = np.linspace(-1, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    engine = RayEngine("llvm", threads=1, timeout=20.0)
    try:
        assert ray.available_resources().get("CPU", 0) == 0  # the actors hold every CPU
        reference = engine.reference(scaled(2), [A])
        assert reference.error is None
        np.testing.assert_array_equal(reference.outputs[0], A * 2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DlcWarning)  # no machine lost
            batch = [segfault(), scaled(2, "a"), scaled(3, "b"), segfault(), scaled(2, "c")]
            results = engine.measure(batch, [A], reference.outputs, None)
            again = engine.measure([scaled(2, "d"), scaled(2, "e")], [A], reference.outputs,
                                   None)
        assert all(isinstance(r, MeasureResult) for r in results)
        assert [r.error for r in results] == ["runtime_crash", None, "wrong_result",
                                              "runtime_crash", None]
        assert "SIGSEGV" in results[0].message and "SIGSEGV" in results[3].message
        assert results[1].seconds and results[4].seconds  # after a crash on each machine
        assert [r.error for r in again] == [None, None]
        assert len(engine.actors) == 2
        # turns rotate: the reference on the first machine, 3 + 2 of the batch of five on
        # the second and first, then one each
        assert engine.measured == [1 + 2 + 1, 3 + 1]
    finally:
        engine.close()
    assert ray.is_initialized()  # joined, not started: the cluster stays
    assert _free_cpus(ray) == 2  # released


@pytest.mark.tune
def test_a_machine_of_another_cpu_is_refused(cluster):
    import ray

    here = target_json(Target.parse("llvm"))["cpu"]
    other = "znver4" if here != "znver4" else "skylake"
    with pytest.raises(DlcError, match=f"cannot measure for {other} on this Ray cluster: "
                                       f".* is a {here}; .* is a {here}"):
        RayEngine(f"llvm -mcpu={other}", threads=1)
    assert _free_cpus(ray) == 2  # its actors are gone
    host = Target.parse("llvm")  # the machines' CPU named in full (as from another head)
    engine = RayEngine(f"llvm -mcpu={host.mcpu} -mattr={host.mattr}", threads=1)
    try:
        assert len(engine.actors) == 2
    finally:
        engine.close()
