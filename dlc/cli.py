"""The ``dlc`` command line: compile, run, inspect, bench.

Exit codes: 0 success, 2 bad input or usage (one-line message), 1 internal error. Add
``--verbose`` for a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    """A command-line mistake (reported with exit code 2)."""


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


def _progress(enabled: bool):
    def report(done: int, total: int, what: str) -> None:
        if enabled:
            sys.stderr.write(f"\r  {what} {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return report


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- commands -----------------------------------------------------------------------------
def cmd_compile(args) -> int:
    import dlc
    from dlc.compiler.model import CompiledModel

    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    if not os.path.exists(args.model):
        raise UsageError(f"{args.model}: no such file")
    out = args.output or os.path.splitext(args.model)[0] + ".dlc"
    _check_writable(out)
    start = time.perf_counter()
    model = dlc.compile(args.model, target=args.target, input_shapes=shapes or None,
                        tuning_log=args.tuning_log, opt_level=args.opt_level,
                        progress=_progress(sys.stderr.isatty() and not args.quiet))
    seconds = time.perf_counter() - start
    if not isinstance(model, CompiledModel):
        raise UsageError(f"{args.model}: output shapes depend on input values, so it cannot be "
                         "saved as an artifact; give the shape-like inputs with --input-shape")
    size = model.save(out)
    ops = {}
    for node in model.source_graph.nodes:
        ops[node.op] = ops.get(node.op, 0) + 1
    print(f"compiled {args.model} -> {out}")
    print(f"  ops:            {sum(ops.values())} ("
          + ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1])[:8])
          + (", ..." if len(ops) > 8 else "") + ")")
    print(f"  kernels:        {len(model.kernels)}")
    print(f"  compile time:   {seconds:.2f} s")
    print(f"  artifact size:  {_human(size)}")
    plan = model.memory_plan()
    print(f"  planned memory: {_human(plan['arena_bytes'])} of intermediates "
          f"({_human(plan['without_reuse_bytes'])} without buffer reuse)")
    return EXIT_OK


def _check_writable(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"cannot write {path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory {directory} is not writable")
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a directory")


def _load_any(path: str):
    """A runnable model from a .dlc artifact or an ONNX file."""
    import dlc
    from dlc.runtime import load

    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == b"DLCMODEL":
        return load(path)
    return dlc.compile(path)


def _read_inputs(model, specs) -> dict:
    import numpy as np

    feeds = {}
    for spec in specs or []:
        if "=" not in spec:
            raise UsageError(f"--input {spec!r}: expected NAME=FILE.npy")
        name, path = spec.split("=", 1)
        if name not in model.input_names:
            raise UsageError(f"--input {spec!r}: the model has no input {name!r} (inputs: "
                             f"{', '.join(model.input_names)})")
        try:
            feeds[name] = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise UsageError(f"--input {spec!r}: cannot read {path}: {err}") from None
    return feeds


def _random_inputs(model, feeds: dict, seed: int = 0) -> dict:
    import numpy as np

    from dlc import dtypes

    rng = np.random.default_rng(seed)
    for spec in model.executor.inputs:
        if spec["name"] in feeds:
            continue
        dtype = dtypes.to_numpy(spec["dtype"])
        if dtype.kind == "f":
            value = rng.standard_normal(spec["shape"]).astype(dtype)
        elif dtype.kind == "b":
            value = rng.integers(0, 2, spec["shape"]).astype(dtype)
        else:
            value = rng.integers(0, 10, spec["shape"]).astype(dtype)
        feeds[spec["name"]] = value
    return feeds


def cmd_run(args) -> int:
    import hashlib

    import numpy as np

    model = _load_any(args.model)
    feeds = _random_inputs(model, _read_inputs(model, args.input), args.seed)
    outputs = model.run(feeds)
    for name, value in zip(model.output_names, outputs):
        digest = hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        total = float(np.sum(value, dtype=np.float64))
        print(f"{name}: {value.dtype}{list(value.shape)}  sum={total:.6g}  sha256={digest}")
    if args.output:
        _check_writable(args.output)
        tmp = args.output + ".tmp.npz"
        np.savez(tmp, **dict(zip(model.output_names, outputs)))
        os.replace(tmp, args.output)
        print(f"wrote {args.output}")
    return EXIT_OK


def cmd_inspect(args) -> int:
    if not os.path.exists(args.model):
        raise UsageError(f"{args.model}: no such file")
    with open(args.model, "rb") as f:
        head = f.read(8)
    if head == b"DLCMODEL":
        from dlc.runtime.artifact import read_artifact

        manifest, sections = read_artifact(args.model)
        if args.stage not in (None, "manifest"):
            raise UsageError(f"{args.model} is a compiled artifact: only its manifest can be "
                             "inspected (--stage applies to ONNX models)")
        print(f"artifact format {manifest['format_version']}, dlc {manifest['dlc_version']}")
        print(f"target: {manifest['target']['string']} (cpu {manifest['target']['cpu']}; "
              f"needs {', '.join(manifest['target']['required_features']) or 'baseline x86-64'})")
        for kind in ("inputs", "outputs"):
            for spec in manifest[kind]:
                print(f"{kind[:-1]}: {spec['name']}: {spec['dtype']}{spec['shape']}")
        print(f"kernels: {len(manifest['kernels'])}, arena: "
              f"{_human(manifest['plan']['arena_bytes'])}")
        for entry in manifest["sections"]:
            print(f"section {entry['name']}: {_human(entry['size'])} sha256={entry['sha256'][:16]}")
        return EXIT_OK
    from dlc.compile import inspect_stage

    shapes = dict(_parse_shape(s) for s in args.input_shape or [])
    print(inspect_stage(args.model, args.stage or "graph", shapes or None, args.target))
    return EXIT_OK


def cmd_bench(args) -> int:
    import numpy as np

    model = _load_any(args.model)
    if args.threads:
        model.executor.module.set_num_threads(args.threads)
    feeds = _random_inputs(model, {}, 0)
    lat = _time(lambda: model.run(feeds), args.repeat, args.warmup)
    rows = [("dlc", lat)]
    if args.compare_onnxruntime:
        ort = _ort_session(args.compare_onnxruntime, args.threads)
        lat_ort = _time(lambda: ort.run(None, feeds), args.repeat, args.warmup)
        rows.append(("onnxruntime", lat_ort))
    for name, times in rows:
        med = float(np.median(times))
        p90 = float(np.percentile(times, 90))
        print(f"{name:12s} median {med * 1e3:9.3f} ms   p90 {p90 * 1e3:9.3f} ms   "
              f"throughput {1.0 / med:9.1f} /s")
    if len(rows) == 2:
        ratio = float(np.median(rows[0][1]) / np.median(rows[1][1]))
        print(f"dlc / onnxruntime latency: {ratio:.2f}x")
    return EXIT_OK


def _time(fn, repeat: int, warmup: int) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _ort_session(path: str, threads):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("--compare-onnxruntime needs the onnxruntime package") from None
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


# -- entry --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dlc", description="The dlc deep-learning compiler.")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("compile", help="compile an ONNX model to a .dlc artifact")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("-o", "--output", help="artifact path (default: MODEL.dlc)")
    p.add_argument("--target", default="llvm", help="target, e.g. 'llvm -mcpu=znver4'")
    p.add_argument("--opt-level", type=int, choices=range(0, 4), default=3,
                   help="graph optimization level: 0 none, 1 cleanups, 2 fusion, 3 layouts "
                        "(default 3)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224",
                   help="concrete shape of an input (repeatable)")
    p.add_argument("--tuning-log", help="apply the best schedules from a tuning log (JSONL)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("run", help="run a .dlc artifact (or an ONNX model)")
    p.add_argument("model")
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                   help="an input from a .npy file (others are random)")
    p.add_argument("--output", help="write the outputs to this .npz file")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("inspect", help="show a model at a stage of the pipeline")
    p.add_argument("model", help="ONNX model or .dlc artifact")
    p.add_argument("--stage", choices=["graph", "fused", "loops", "llvm"],
                   help="pipeline stage (ONNX models; default graph)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224")
    p.add_argument("--target", default="llvm")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("bench", help="measure latency and throughput")
    p.add_argument("model", help=".dlc artifact (or ONNX model)")
    p.add_argument("--compare-onnxruntime", metavar="MODEL.onnx",
                   help="also time onnxruntime on this ONNX model and print the ratio")
    p.add_argument("--threads", type=int, help="threads for dlc and onnxruntime")
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None) -> int:
    from dlc.errors import DlcError, InternalError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_BAD_INPUT
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except UsageError as err:
        print(f"dlc {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except InternalError as err:
        if args.verbose:
            raise
        print(f"dlc {args.command}: internal error: {_one_line(err)} (a dlc bug; rerun with "
              "--verbose and report it)", file=sys.stderr)
        return EXIT_INTERNAL
    except DlcError as err:
        if args.verbose:
            raise
        print(f"dlc {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as err:  # noqa: BLE001 - anything else is a dlc bug
        if args.verbose:
            raise
        print(f"dlc {args.command}: internal error: {type(err).__name__}: {_one_line(err)} "
              "(a dlc bug; rerun with --verbose and report it)", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(err) -> str:
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(lines) if len(lines) > 1 else (lines[0] if lines else type(err).__name__)


if __name__ == "__main__":
    sys.exit(main())
