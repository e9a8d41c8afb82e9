"""The ``dlc`` command line: compile, run, inspect, bench, report.

    dlc compile model.onnx -o model.dlc [--target T] [--opt-level N]
                [--input-shape x=1x3x224x224] [--tuning-log log.jsonl]
    dlc run model.dlc [--input x=x.npy | --input inputs.npz] [--output out.npz]
    dlc inspect model.onnx|model.dlc [--stage graph|fused|loops|llvm]
    dlc bench model.dlc [--compare-onnxruntime model.onnx] [--threads N] [--profile]
    dlc tune model.onnx [more.onnx ...] --log tune.jsonl [--trials N | --time 20m]
             [--target T] [--threads N] [--search model|random] [--seed S]
             [--ray auto|HOST:PORT]
    dlc report tune.jsonl [--model model.onnx] [--html report.html]

Exit codes: 0 success, 2 bad input or usage (a one-line message on stderr), 1 internal
error (a dlc bug). ``--verbose`` (before or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import traceback

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2
ARTIFACT_MAGIC = b"DLCMODEL"


class UsageError(Exception):
    """A command-line mistake (reported with exit code 2)."""


# -- helpers ------------------------------------------------------------------------------
class Progress:
    """Reports long steps on stderr as ``progress(done, total, what)`` calls arrive: on a
    terminal one line per step, rewritten in place (at most 10 times a second); elsewhere
    (when forced on with --progress) one line when each step ends."""

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled
        self.interactive = enabled and _isatty(stream)
        self._what, self._start, self._shown = None, 0.0, 0.0

    def __call__(self, done: int, total: int, what: str) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if what != self._what:
            self._what, self._start, self._shown = what, now, 0.0
        finished = done >= total
        count = f" {done}/{total}" if total > 1 else ""
        if finished:
            line = f"  {what}{count}: done in {now - self._start:.2f} s"
            self.stream.write(("\r\x1b[K" if self.interactive else "") + line + "\n")
        elif self.interactive and (done == 0 or now - self._shown >= 0.1):
            self._shown = now
            self.stream.write(f"\r\x1b[K  {what}{count} ...")
        else:
            return
        self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _progress(args) -> Progress:
    enabled = not getattr(args, "quiet", False) and (getattr(args, "progress", False)
                                                     or _isatty(sys.stderr))
    return Progress(sys.stderr, enabled)


def _parse_shape(text: str) -> tuple[str, tuple]:
    if "=" not in text:
        raise UsageError(f"--input-shape {text!r}: expected NAME=DIMxDIMx... "
                         "(e.g. x=1x3x224x224)")
    name, dims = text.rsplit("=", 1)
    try:
        shape = tuple(int(d) for d in dims.lower().split("x")) if dims else ()
    except ValueError:
        raise UsageError(f"--input-shape {text!r}: dimensions must be integers "
                         "separated by 'x'") from None
    if any(d < 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: dimensions must be non-negative")
    return name, shape


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _positive(text: str, least: int = 1) -> int:
    what = "a positive" if least == 1 else "a non-negative"
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {what} integer, got {text!r}")
    return value


def _nonnegative(text: str) -> int:
    return _positive(text, least=0)


def _check_input_file(path: str) -> bool:
    """The file exists and is readable; True when it is a .dlc artifact."""
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory, not a model file")
    with open(path, "rb") as f:
        return f.read(len(ARTIFACT_MAGIC)) == ARTIFACT_MAGIC


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {directory} is not writable")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a directory")


def _load_any(path: str, args, shapes: dict | None = None):
    """A runnable model from a .dlc artifact or (compiled now) an ONNX model."""
    if _check_input_file(path):
        if getattr(args, "input_shape", None):
            raise UsageError(f"{path} is a compiled artifact with fixed shapes; --input-shape "
                             "applies to ONNX models")
        from dlc.runtime import load

        return load(path)
    import dlc

    shapes = {**(shapes or {}), **dict(_parse_shape(s) for s in args.input_shape or [])}
    return dlc.compile(path, input_shapes=shapes or None, progress=_progress(args))


def _input_specs(model) -> list:
    """[{"name", "shape", "dtype"}] of a loaded, compiled or dynamic model's inputs."""
    executor = getattr(model, "executor", None)
    if executor is not None:
        return executor.inputs
    return [{"name": n, "shape": list(model.graph.types[n].shape),
             "dtype": model.graph.types[n].dtype} for n in model.graph.inputs]


def _read_inputs(specs) -> dict:
    """--input NAME=FILE.npy and --input FILE.npz (arrays named after inputs)."""
    import numpy as np

    feeds = {}
    for spec in specs or []:
        name, path = spec.split("=", 1) if "=" in spec else (None, spec)
        if name is None and not path.endswith(".npz"):
            raise UsageError(f"--input {spec!r}: expected NAME=FILE.npy or FILE.npz")
        try:
            loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise UsageError(f"--input {spec!r}: {path}: no such file") from None
        except (OSError, ValueError) as err:
            raise UsageError(f"--input {spec!r}: {path} is not a .npy/.npz file "
                             f"({_one_line(err)})") from None
        if isinstance(loaded, np.ndarray):
            if name is None:
                raise UsageError(f"--input {spec!r}: a .npy file holds one array; write "
                                 f"--input NAME={path}")
            feeds[name] = loaded
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
            if name is not None:
                if len(arrays) != 1:
                    raise UsageError(f"--input {spec!r}: {path} holds {len(arrays)} arrays; "
                                     f"pass it as --input {path} (arrays named after inputs)")
                arrays = {name: next(iter(arrays.values()))}
            feeds.update(arrays)
    return feeds


def _check_input_names(model, feeds: dict) -> None:
    unknown = sorted(set(feeds) - set(model.input_names))
    if unknown:
        raise UsageError(f"the model has no input(s) {', '.join(map(repr, unknown))} (inputs: "
                         f"{', '.join(model.input_names)})")


def _random_inputs(model, feeds: dict, seed: int = 0) -> dict:
    """``feeds`` completed with random arrays for every input it lacks."""
    import numpy as np

    from dlc.runtime.module import _numpy_dtype

    rng = np.random.default_rng(seed)
    feeds = dict(feeds)
    for spec in _input_specs(model):
        if spec["name"] in feeds:
            continue
        shape = spec["shape"]
        if not all(isinstance(d, int) for d in shape):
            raise UsageError(f"input {spec['name']!r} has a symbolic shape {shape}; give it "
                             f"with --input {spec['name']}=FILE.npy or --input-shape")
        dtype = _numpy_dtype(spec["dtype"])
        if dtype.kind == "f" or spec["dtype"] in ("bfloat16",) or "float8" in spec["dtype"]:
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            value = rng.integers(0, 2, shape).astype(dtype)
        else:
            value = rng.integers(0, 10, shape).astype(dtype)
        feeds[spec["name"]] = value
    return feeds


def _set_threads(model, threads: int | None) -> None:
    if not threads:
        return
    executor = getattr(model, "executor", None)
    module = executor.module if executor is not None else None
    if module is not None:
        module.set_num_threads(threads)


def _write_outputs(path: str, names: list, outputs: list) -> None:
    """Outputs to .npz (named) or .npy (the only output), written atomically."""
    import zipfile

    import numpy as np

    from dlc.runtime.artifact import atomic_write

    buffer = io.BytesIO()
    if path.endswith(".npz"):
        # what np.savez writes, without passing names as keywords: an output named "file"
        # or "allow_pickle" would collide with savez's own parameters
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, value in dict(zip(names, outputs)).items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, value, allow_pickle=False)
    else:
        np.save(buffer, outputs[0])
    atomic_write(path, [buffer.getvalue()])


# -- commands -----------------------------------------------------------------------------
def cmd_compile(args) -> int:
    import dlc
    from dlc.compiler.model import CompiledModel

    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    if _check_input_file(args.model):
        raise UsageError(f"{args.model} is already a compiled .dlc artifact; run it with "
                         "'dlc run' (compile takes an ONNX model)")
    out = args.output or os.path.splitext(args.model)[0] + ".dlc"
    if os.path.abspath(out) == os.path.abspath(args.model):
        raise UsageError(f"the output {out} would overwrite the model; choose another -o")
    _check_writable(out)
    start = time.perf_counter()
    model = dlc.compile(args.model, target=args.target, input_shapes=shapes or None,
                        tuning_log=args.tuning_log, opt_level=args.opt_level,
                        progress=_progress(args))
    seconds = time.perf_counter() - start
    if not isinstance(model, CompiledModel):
        from dlc.compiler.dynamic import dynamic_causes

        causes = dynamic_causes(model.graph)
        raise UsageError(
            f"{args.model} cannot be saved as an artifact: its shapes depend on input values "
            f"at {'; '.join(causes)}. An artifact has fixed shapes and --input-shape fixes "
            "dimensions, not values: make those values constants in the model (initializers),"
            " or run it from Python, where dlc.compile returns a model that compiles each "
            "distinct shape on first use")
    size = model.save(out)
    ops: dict = {}
    for node in model.source_graph.nodes:
        ops[node.op] = ops.get(node.op, 0) + 1
    top = sorted(ops.items(), key=lambda kv: -kv[1])
    print(f"compiled {args.model} -> {out}")
    print(f"  ops:            {sum(ops.values())} ("
          + ", ".join(f"{k} {v}" for k, v in top[:8]) + (", ..." if len(top) > 8 else "") + ")")
    print(f"  fused kernels:  {len(model.kernels)}")
    if args.tuning_log:
        print(f"  tuned kernels:  {sum(k.tuned for k in model.kernels)} (schedules from "
              f"{args.tuning_log})")
    print(f"  compile time:   {seconds:.2f} s")
    print(f"  artifact size:  {_human(size)}")
    plan = model.memory_plan()
    print(f"  planned memory: {_human(plan['arena_bytes'])} of intermediates "
          f"({_human(plan['without_reuse_bytes'])} without buffer reuse)")
    return EXIT_OK


def cmd_run(args) -> int:
    import hashlib

    import numpy as np

    feeds = _read_inputs(args.input)
    if args.output:
        if not args.output.endswith((".npz", ".npy")):
            raise UsageError(f"--output {args.output}: expected a .npz (or, for one output, "
                             ".npy) file")
        _check_writable(args.output)
    model = _load_any(args.model, args, {k: v.shape for k, v in feeds.items()})
    _check_input_names(model, feeds)
    if args.output and args.output.endswith(".npy") and len(model.output_names) != 1:
        raise UsageError(f"--output {args.output}: the model has {len(model.output_names)} "
                         "outputs; write them to a .npz file")
    feeds = _random_inputs(model, feeds, args.seed)
    outputs = model.run(feeds)
    for name, value in zip(model.output_names, outputs):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        total = float(np.sum(value, dtype=np.float64)) if value.dtype.kind in "biuf" else 0.0
        print(f"{name}: {value.dtype}{list(value.shape)}  sum={total:.6g}  sha256={digest}")
    if args.output:
        _write_outputs(args.output, model.output_names, outputs)
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_inspect(args) -> int:
    if _check_input_file(args.model):
        if args.stage is not None:
            raise UsageError(f"{args.model} is a compiled artifact: only its manifest can be "
                             "shown (--stage applies to ONNX models)")
        print(_describe_artifact(args.model))
        return EXIT_OK
    from dlc.compile import inspect_stage

    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    print(inspect_stage(args.model, args.stage or "graph", shapes or None, args.target,
                        opt_level=args.opt_level, tuning_log=args.tuning_log))
    return EXIT_OK


def _describe_artifact(path: str) -> str:
    from dlc.runtime.artifact import read_artifact
    from dlc.runtime.loader import check_manifest

    manifest, sections = read_artifact(path)
    check_manifest(path, manifest, sections)
    target, plan = manifest["target"], manifest["plan"]
    needs = ", ".join(target.get("required_features") or []) or "baseline x86-64"
    lines = [f"artifact format {manifest['format_version']}, written by dlc "
             f"{manifest.get('dlc_version')}, model {manifest.get('name')!r}",
             f"target: {target.get('string')} (cpu {target.get('cpu')}; needs {needs})"]
    for kind in ("inputs", "outputs"):
        for spec in manifest[kind]:
            lines.append(f"{kind[:-1]}: {spec['name']}: {spec['dtype']}{spec['shape']}")
    kernels = manifest.get("kernels", [])
    lines.append(f"kernels ({len(kernels)}): " + ", ".join(kernels[:12])
                 + (", ..." if len(kernels) > 12 else ""))
    lines.append(f"entry: {plan.get('entry')}, arena: {_human(plan['arena_bytes'])}")
    for entry in manifest["sections"]:
        lines.append(f"section {entry['name']}: {_human(entry['size'])} "
                     f"sha256={entry['sha256'][:16]}")
    return "\n".join(lines)


def cmd_bench(args) -> int:
    import numpy as np

    model = _load_any(args.model, args)
    if args.profile:
        _check_profilable(model, args.model)
    _set_threads(model, args.threads)
    threads = args.threads or _model_threads(model)
    feeds = _random_inputs(model, {}, 0)
    progress = _progress(args)
    session = None
    if args.compare_onnxruntime:  # the same threads for both, and the same answers first
        session = _ort_session(args.compare_onnxruntime, threads, _input_specs(model))
        try:
            theirs = session.run(None, feeds)
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise UsageError(f"--compare-onnxruntime {args.compare_onnxruntime}: onnxruntime "
                             f"cannot run it on the dlc model's inputs: {_one_line(err)}") \
                from None
        agreement = _compare_outputs(model.output_names, model.run(feeds), theirs)
        if agreement is None:
            return EXIT_INTERNAL
    rows = [("dlc", _time(lambda: model.run(feeds), args.repeat, args.warmup, progress,
                          "timing dlc"))]
    if session is not None:
        rows.append(("onnxruntime", _time(lambda: session.run(None, feeds), args.repeat,
                                          args.warmup, progress, "timing onnxruntime")))
    shown = f", {threads} thread(s)" if threads else ""
    print(f"{args.model}: {args.repeat} runs after {args.warmup} warm-up runs{shown}")
    if session is not None:
        print(f"  outputs match onnxruntime's ({agreement})")
    for name, times in rows:
        med = float(np.median(times))
        p90 = float(np.percentile(times, 90))
        print(f"  {name:12s} median {med * 1e3:9.3f} ms   p90 {p90 * 1e3:9.3f} ms   "
              f"throughput {1.0 / med:10.1f} runs/s")
    if len(rows) == 2:
        ratio = float(np.median(rows[0][1]) / np.median(rows[1][1]))
        faster = "dlc faster" if ratio < 1 else "onnxruntime faster"
        print(f"  dlc / onnxruntime latency: {ratio:.2f}x ({faster})")
    if args.profile:
        progress(0, 1, "profiling kernels")
        profile = model.executor.profile(feeds, args.repeat, args.warmup)
        progress(1, 1, "profiling kernels")
        print(f"\nkernels, each called on its own ({args.repeat} runs after {args.warmup} "
              "warm-up runs):")
        print(profile.format())
    return EXIT_OK


def _check_profilable(model, path: str) -> None:
    """--profile needs one compiled plan whose kernel calls are listed."""
    from dlc.runtime.profile import check_profilable

    executor = getattr(model, "executor", None)
    if executor is None:
        raise UsageError(f"--profile times the kernels of a model compiled for fixed shapes; "
                         f"{path} is compiled anew for each run's shapes and values (its "
                         "types depend on input values)")
    check_profilable(executor.plan)


def cmd_tune(args) -> int:
    from dlc.autotune.tuner import parse_budget, resolve, tune

    for path in args.model:
        if not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        if _check_input_file(path):
            raise UsageError(f"{path} is a compiled .dlc artifact; tune takes ONNX models")
    if args.trials is None and args.time is None:
        raise UsageError("give a budget: --trials N, --time 20m, or both")
    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials must be at least 1, got {args.trials}")
    _check_writable(args.log)
    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    seconds = parse_budget(args.time) if args.time is not None else None
    engine = None
    if args.ray is not None:  # measurements spread over the machines of a Ray cluster
        from dlc.autotune.ray_engine import RayEngine

        engine = RayEngine(*resolve(args.target, args.threads), address=args.ray)
        print(f"measuring on {len(engine.actors)} machine(s) of the Ray cluster: "
              f"{', '.join(engine.machines)}")
    try:
        result = tune(args.model, args.log, target=args.target, trials=args.trials,
                      seconds=seconds, threads=args.threads, seed=args.seed,
                      search=args.search, input_shapes=shapes or None, engine=engine,
                      confirm=args.confirm)
    finally:
        if engine is not None:
            engine.close()
    tuned = sum(1 for r in result.tasks if r.best_seconds is not None)
    print(f"tuned {len(result.tasks)} task(s) ({tuned} with a working schedule) in "
          f"{result.seconds:.0f} s; {sum(r.trials for r in result.tasks)} measurements in "
          f"{args.log}")
    estimate = result.model_seconds()
    if estimate is not None:
        default = sum(r.task.weight * r.default_seconds for r in result.tasks
                      if r.default_seconds is not None)
        print(f"  estimated latency (sum of kernels): {estimate * 1e3:.3f} ms, default "
              f"schedules {default * 1e3:.3f} ms ({default / estimate:.2f}x)")
    if engine is not None:
        print("  measured on: " + ", ".join(f"{machine} {count}" for machine, count in
                                            zip(engine.machines, engine.measured)))
    print(f"  apply with: dlc compile {args.model[0]} --tuning-log {args.log}")
    return EXIT_OK


def cmd_report(args) -> int:
    from dlc.autotune import report

    for path, what in ((args.log, "a tuning log"), (args.model, "an ONNX model")):
        if path and not os.path.exists(path):
            raise UsageError(f"{path}: no such file")
        if path and os.path.isdir(path):
            raise UsageError(f"{path} is a directory, not {what}")
    if args.html:
        _check_writable(args.html)
    records, skipped = report.read_records(args.log)
    if not records:
        raise UsageError(f"{args.log} holds no tuning records" + (
            f" ({len(skipped)} line{'s' * (len(skipped) != 1)} skipped; the first: "
            f"{skipped[0]})" if skipped else ""))
    for line in skipped[:5]:
        print(f"dlc report: warning: skipped {line}", file=sys.stderr)
    if len(skipped) > 5:
        print(f"dlc report: warning: skipped {len(skipped) - 5} more lines", file=sys.stderr)
    weights = report.model_weights(args.model) if args.model else None
    summary = report.summarize(records, weights)
    print(report.format_table(summary, title=args.log), end="")
    if args.html:
        from dlc.runtime.artifact import atomic_write

        page = report.render_html(summary, f"dlc tuning report: {os.path.basename(args.log)}")
        atomic_write(args.html, [page.encode("utf-8")])
        print(f"wrote {args.html}")
    return EXIT_OK


def _model_threads(model) -> int | None:
    """Threads a model's parallel loops use (None for a model compiled per shape)."""
    executor = getattr(model, "executor", None)
    return executor.module.num_threads if executor is not None else None


def _compare_outputs(names: list, ours: list, theirs: list) -> str | None:
    """A summary of how closely dlc's outputs match onnxruntime's (floats within 1e-3
    relative, 1e-4 of the largest magnitude; everything else exactly); None, after one
    line on stderr naming the first output that differs, when they do not."""
    import numpy as np

    worst = 0.0
    for name, a, b in zip(names, ours, theirs):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            problem = f"dlc gives {a.dtype}{list(a.shape)}, onnxruntime {b.dtype}{list(b.shape)}"
        elif a.dtype.kind == "f":
            wide_a, wide_b = a.astype(np.float64), b.astype(np.float64)
            finite = np.isfinite(wide_b)
            scale = float(np.abs(wide_b[finite]).max()) if finite.any() else 1.0
            if np.allclose(wide_a, wide_b, rtol=1e-3, atol=1e-4 * max(scale, 1.0),
                           equal_nan=True):
                diff = np.abs(wide_a - wide_b)[finite & np.isfinite(wide_a)]
                worst = max(worst, float(diff.max()) if diff.size else 0.0)
                continue
            problem = f"max abs difference {float(np.nanmax(np.abs(wide_a - wide_b))):.3g}"
        elif np.array_equal(a, b):
            continue
        else:
            problem = f"{int((a != b).sum())} of {a.size} elements differ"
        print(f"dlc bench: dlc and onnxruntime disagree on output {name!r} ({problem}); if "
              "both files are the same model this is a dlc bug: report it", file=sys.stderr)
        return None
    return f"max abs difference {worst:.3g}"


def _time(fn, repeat: int, warmup: int, progress, what: str) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for k in range(repeat):
        progress(k, repeat, what)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    progress(repeat, repeat, what)
    return times


def _ort_session(path: str, threads, specs: list):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("--compare-onnxruntime needs the onnxruntime package "
                         "(pip install onnxruntime)") from None
    if _check_input_file(path):
        raise UsageError(f"--compare-onnxruntime {path}: expected an ONNX model, not a .dlc "
                         "artifact")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise UsageError(f"--compare-onnxruntime {path}: onnxruntime cannot load it: "
                         f"{_one_line(err)}") from None
    ours = {s["name"]: s["shape"] for s in specs}
    theirs = {i.name: i.shape for i in session.get_inputs()}
    same = set(ours) == set(theirs) and all(
        len(ours[n]) == len(theirs[n]) and all(not isinstance(b, int) or a == b
                                               for a, b in zip(ours[n], theirs[n]))
        for n in ours)
    if not same:
        def show(shapes):
            return ", ".join(f"{n}{list(shape)}" for n, shape in shapes.items())

        raise UsageError(f"--compare-onnxruntime {path}: its inputs ({show(theirs)}) are not "
                         f"the dlc model's ({show(ours)})")
    return session


# -- entry --------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (exit code 2), not argparse's usage block."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} "
                                  "--help')\n")


def build_parser() -> argparse.ArgumentParser:
    from dlc import __version__

    parser = _Parser(prog="dlc", description="The dlc deep-learning compiler: compile ONNX "
                     "models to one-file .dlc artifacts, run, inspect and benchmark them.",
                     epilog="Exit codes: 0 success, 2 bad input or usage, 1 internal error.")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_compile(sub, common)
    _add_run(sub, common)
    _add_inspect(sub, common)
    _add_bench(sub, common)
    _add_tune(sub, common)
    _add_report(sub, common)
    return parser


def _add_tune(sub, common) -> None:
    p = sub.add_parser("tune", parents=[common], help="search schedules for this machine",
                       description="Tune the kernels of one or more ONNX models on this "
                       "machine; every measurement is appended to the log, and a run given "
                       "the same log resumes.")
    p.add_argument("model", nargs="+", help="ONNX model file(s)")
    p.add_argument("--log", required=True, metavar="LOG.jsonl", help="tuning log (appended)")
    p.add_argument("--trials", type=int, help="measurements of the search in all (new ones; "
                   "the confirmation adds up to 12 per task)")
    p.add_argument("--time", metavar="20m", help="wall-time budget: 90s, 20m, 1.5h")
    p.add_argument("--target", default="llvm", help="target (default: llvm, this CPU)")
    p.add_argument("--threads", type=int, help="threads per kernel (default: every core)")
    p.add_argument("--search", choices=("model", "random"), default="model",
                   help="model: evolutionary search guided by the cost model (default); "
                        "random: the baseline")
    p.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    p.add_argument("--no-confirm", dest="confirm", action="store_false",
                   help="skip the confirmation at the end (each task's leaders and default "
                        "measured again side by side, which decides what compile applies)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="concrete shape of an input with symbolic dimensions (repeatable)")
    p.add_argument("--ray", metavar="auto|HOST:PORT",
                   help="measure on every machine of a Ray cluster ('auto': the one this "
                        "machine belongs to; needs dlc[ray]; see "
                        "docs/reference/distributed_tuning.md)")
    p.set_defaults(func=cmd_tune)


def _add_compile(sub, common) -> None:
    p = sub.add_parser("compile", parents=[common], help="compile an ONNX model to a .dlc "
                       "artifact", description="Compile an ONNX model into a one-file .dlc "
                       "artifact and print a summary.")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("-o", "--output", help="artifact path (default: MODEL with .dlc)")
    p.add_argument("--target", default="llvm", help="target, e.g. 'llvm -mcpu=x86-64-v3' "
                   "(default: llvm, this CPU)")
    p.add_argument("--opt-level", type=int, choices=range(0, 4), default=3,
                   help="graph optimization level: 0 none, 1 cleanups, 2 fusion, 3 layouts "
                        "(default 3)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="concrete shape of an input with symbolic dimensions (repeatable)")
    p.add_argument("--tuning-log", metavar="LOG.jsonl",
                   help="use the best schedules of a tuning log")
    _add_progress(p)
    p.set_defaults(func=cmd_compile)


def _add_progress(p) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--progress", action="store_true",
                       help="report long steps on stderr even when it is not a terminal")
    group.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _add_run(sub, common) -> None:
    p = sub.add_parser("run", parents=[common], help="run a .dlc artifact (or an ONNX model)",
                       description="Run a model once and print each output's shape, sum and "
                       "checksum. Inputs not given are random (of the right shape and dtype).")
    p.add_argument("model", help=".dlc artifact (or ONNX model, compiled first)")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy|FILE.npz",
                   help="an input from a .npy file, or inputs from a .npz file whose arrays "
                        "are named after them (repeatable)")
    p.add_argument("--output", metavar="OUT.npz",
                   help="write the outputs to a .npz file (or .npy for one output)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="input shape for an ONNX model with symbolic dimensions")
    _add_progress(p)
    p.set_defaults(func=cmd_run)


def _add_inspect(sub, common) -> None:
    p = sub.add_parser("inspect", parents=[common], help="show a model at a stage of the "
                       "pipeline", description="Show an ONNX model at a stage of the pipeline, "
                       "or the manifest of a .dlc artifact.")
    p.add_argument("model", help="ONNX model or .dlc artifact")
    p.add_argument("--stage", choices=["graph", "fused", "loops", "llvm"],
                   help="graph: imported and typed; fused: after the graph passes; loops: "
                        "loop IR of each kernel; llvm: LLVM IR (ONNX models; default graph)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="concrete shape of an input with symbolic dimensions (repeatable)")
    p.add_argument("--target", default="llvm", help="target for --stage llvm")
    p.add_argument("--opt-level", type=int, choices=range(0, 4), default=3,
                   help="graph optimization level (default 3)")
    p.add_argument("--tuning-log", metavar="LOG.jsonl",
                   help="show the schedules of a tuning log in --stage loops")
    p.set_defaults(func=cmd_inspect)


def _add_bench(sub, common) -> None:
    p = sub.add_parser("bench", parents=[common], help="measure latency and throughput",
                       description="Time a model on random inputs: median and p90 latency, "
                       "throughput; with --compare-onnxruntime, also onnxruntime and the ratio; "
                       "with --profile, each kernel's time, share and GFLOP/s.")
    p.add_argument("model", help=".dlc artifact (or ONNX model, compiled first)")
    p.add_argument("--compare-onnxruntime", metavar="MODEL.onnx",
                   help="also time onnxruntime on this ONNX model and print the latency ratio")
    p.add_argument("--threads", type=_positive, help="threads for dlc's parallel loops and "
                   "onnxruntime's intra-op pool (default: all cores)")
    p.add_argument("--profile", action="store_true",
                   help="also time each kernel on its own: median, share of the total and "
                        "GFLOP/s, the slowest first")
    p.add_argument("--repeat", type=_positive, default=50, help="timed runs (default 50)")
    p.add_argument("--warmup", type=_nonnegative, default=5,
                   help="untimed runs first (default 5)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="input shape for an ONNX model with symbolic dimensions")
    _add_progress(p)
    p.set_defaults(func=cmd_bench)


def _add_report(sub, common) -> None:
    p = sub.add_parser("report", parents=[common], help="summarize a tuning log",
                       description="Summarize a tuning log: per task the trials, errors by "
                       "class, best latency, GFLOP/s and share of this machine's peak, "
                       "speed-up over the default schedule and trials to reach 95%% of the "
                       "best; per model the estimated latency.")
    p.add_argument("log", help="tuning log (JSON lines, as dlc tune writes)")
    p.add_argument("--model", metavar="MODEL.onnx",
                   help="weigh tasks by their occurrences in this model (default: the "
                        "weights the log records)")
    p.add_argument("--html", metavar="REPORT.html",
                   help="also write a self-contained HTML page with plots and the winning "
                        "schedules as code")
    p.set_defaults(func=cmd_report)


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already printed
        return EXIT_OK if not exit_.code else EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    return _run_command(args)


def _run_command(args) -> int:
    import warnings

    prefix = f"dlc {args.command}"
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(prefix, warnings.showwarning)
        return _run_checked(args, prefix)


def _warning_printer(prefix: str, fallback):
    """showwarning that prints a DlcWarning as one line ("dlc compile: warning: ...")."""
    from dlc.errors import DlcWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DlcWarning):
            print(f"{prefix}: warning: {_one_line(message)}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)

    return show


def _run_checked(args, prefix: str) -> int:
    from dlc.errors import DlcError, InternalError

    try:
        return args.func(args)
    except UsageError as err:
        return _report(args, f"{prefix}: error: {_one_line(err)}", EXIT_BAD_INPUT)
    except InternalError as err:
        return _report(args, f"{prefix}: internal error: {_one_line(err)} (a dlc bug; rerun "
                       "with --verbose and report it)", EXIT_INTERNAL)
    except DlcError as err:
        return _report(args, f"{prefix}: error: {_one_line(err)}", EXIT_BAD_INPUT)
    except OSError as err:  # a file the user named cannot be read or written
        where = f"{err.filename}: " if err.filename else ""
        return _report(args, f"{prefix}: error: {where}{err.strerror or err}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        return _report(args, f"{prefix}: interrupted", EXIT_INTERNAL)
    except Exception as err:  # noqa: BLE001 - anything else is a dlc bug
        return _report(args, f"{prefix}: internal error: {type(err).__name__}: "
                       f"{_one_line(err)} (a dlc bug; rerun with --verbose and report it)",
                       EXIT_INTERNAL)


def _report(args, message: str, code: int) -> int:
    if getattr(args, "verbose", False):
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


def _one_line(err) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
