"""``dlc.build``: Schedule or PrimFunc -> native code loaded as a runtime Module."""

from __future__ import annotations

import json
import math

from dlc import __version__, dtypes
from dlc.errors import DlcError, TargetError
from dlc.target import Target
from dlc.tir import stmt as s
from dlc.tir.lower import lower, run_passes
from dlc.tir.passes.flatten_buffers import flatten_buffers
from dlc.tir.passes.simplify import simplify_func
from dlc.tir.passes.unroll_loops import unroll_loops
from dlc.tir.passes.vectorize_loops import vectorize_loops

#: Passes between the readable loop IR and LLVM code generation.
CODEGEN_PREP = [unroll_loops, simplify_func, flatten_buffers, vectorize_loops, simplify_func]


def _output_params(func: s.PrimFunc) -> set:
    from dlc.tir.functor import walk

    written = set()
    walk(func.body, lambda x: written.add(id(x.buffer)) if isinstance(x, s.BufferStore) else None)
    return written


def prepare(func: s.PrimFunc) -> s.PrimFunc:
    return run_passes(func, CODEGEN_PREP, stage="codegen")


def build(target_obj, target=None, name: str | None = None):
    """Compile a Schedule (or lowered PrimFunc, or a list of them) for ``target``.

    Returns a :class:`dlc.runtime.Module`; call it with NumPy arrays.
    """
    from dlc.tir.schedule import Schedule

    target = Target.parse(target).check_available()
    items = target_obj if isinstance(target_obj, (list, tuple)) else [target_obj]
    funcs = []
    for item in items:
        if isinstance(item, Schedule):
            funcs.append(lower(item, name))
        elif isinstance(item, s.PrimFunc):
            funcs.append(item)
        else:
            raise DlcError(f"build takes a Schedule or a PrimFunc, got {type(item).__name__}")
    names = [f.name for f in funcs]
    if len(set(names)) != len(names):
        raise DlcError(f"functions in one build need distinct names, got {names}")
    return build_funcs(funcs, target)


def kernel_symbol(name: str) -> str:
    return "dlc_" + "".join(c if c.isalnum() else "_" for c in name)


def _check_symbols(named: list) -> None:
    """Each (symbol, what) must be unique and not one of the runtime API's own symbols."""
    from dlc.codegen.llvm.codegen import RUNTIME_SYMBOLS

    seen: dict[str, str] = {}
    for symbol, what in named:
        if symbol in RUNTIME_SYMBOLS:
            raise DlcError(f"{what} would be exported as {symbol}, a name the runtime API "
                           "uses; rename it")
        if symbol in seen:
            raise DlcError(f"{seen[symbol]} and {what} would both be exported as {symbol}; "
                           "rename one of them")
        seen[symbol] = what


def entry_needs(calls: list, specs: list) -> dict:
    """The bytes an entry function touches (see ModuleBuilder.add_entry): past the arena
    and weights bases, and through each input and output pointer (0 for one it never
    touches). A runtime must refuse a plan that gives it less."""
    nbytes = {spec["symbol"]: [math.prod(p["shape"]) * dtypes.itemsize(p["dtype"])
                               for p in spec["params"]] for spec in specs}
    ends = {"arena": 0, "weights": 0}
    pointers: dict = {"input": {}, "output": {}}
    for symbol, locations in calls:
        for (kind, where), size in zip(locations, nbytes[symbol]):
            if kind in pointers:
                pointers[kind][where] = max(pointers[kind].get(where, 0), size)
            else:
                ends[kind] = max(ends[kind], where + size)

    def per_pointer(kind: str) -> list:
        table = pointers[kind]
        return [table.get(k, 0) for k in range(max(table, default=-1) + 1)]

    return {"arena_bytes": ends["arena"], "weights_bytes": ends["weights"],
            "input_bytes": per_pointer("input"), "output_bytes": per_pointer("output")}


def build_funcs(funcs: list, target: Target, entries=(), extra_metadata=None):
    """Compile PrimFuncs (and entry functions: (symbol, calls) pairs, see
    ModuleBuilder.add_entry) into one shared library, loaded as a runtime Module."""
    from dlc.codegen.llvm import machine
    from dlc.codegen.llvm.codegen import ModuleBuilder
    from dlc.runtime.module import METADATA_FORMAT, Module

    triple = target.options.get("mtriple")
    if triple is not None and not (triple.startswith("x86_64") and "linux" in triple):
        raise TargetError(f"-mtriple={triple}: dlc builds libraries that this process loads, "
                          "so only x86_64 Linux triples work; remove -mtriple")
    _check_symbols([(kernel_symbol(f.name), f"function {f.name!r}") for f in funcs]
                   + [(symbol, f"entry {symbol}") for symbol, _ in entries])
    cpu, features = target.mcpu, target.mattr
    mb = ModuleBuilder()
    specs = []
    readable = []
    for func in funcs:
        readable.append(func)
        written = _output_params(func)
        prepped = prepare(func)
        symbol = kernel_symbol(func.name)
        mb.add_primfunc(prepped, symbol)
        params = [{"name": b.name, "shape": list(b.shape), "dtype": b.dtype,
                   "output": id(b) in written} for b in func.params]
        specs.append({"name": func.name, "symbol": symbol, "params": params})
    for symbol, calls in entries:
        mb.add_entry(symbol, calls)
    metadata = {"format": METADATA_FORMAT, "dlc_version": __version__, "target": str(target),
                "cpu": cpu, "features": features, "functions": specs,
                "entries": {symbol: entry_needs(calls, specs) for symbol, calls in entries},
                "num_threads": target.num_threads}
    metadata.update(extra_metadata or {})
    mb.add_runtime_api(json.dumps(metadata))
    tm = machine.target_machine(cpu, features, target.opt_level)
    mod = machine.optimize(str(mb), tm, target.opt_level)
    obj = machine.emit_object(mod, tm)
    libs = [machine.libm_path(), machine.libgcc_path()]
    if "GOMP_parallel" in str(mb):
        libs.insert(0, machine.libgomp_path())
    library = machine.link_shared([obj], libs)
    sources = {"ll": machine.module_text(mod), "asm": lambda: machine.emit_assembly(mod, tm),
               "tir": lambda: "\n\n".join(str(f) for f in readable)}
    return Module(library, metadata, sources)
