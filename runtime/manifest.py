"""The manifest of a .dlc artifact as the runtime reads it (docs/reference/artifact.md).

The checksums prove that a file is what its writer wrote, not that the writer wrote a model
the runtime can execute. ``check_manifest`` checks every field the runtime reads before any
native code is loaded: types, required keys, index ranges, names that must exist, and that
the execution plan gives the compiled code every byte its library metadata says it touches
(arena, weights, inputs, outputs), and each kernel call of ``plan.calls`` (which profiling
makes one by one) the bytes of its parameters. A bad manifest is an ArtifactError at load,
never a KeyError, a crash or a stray write at run time.

Constant outputs are stored as raw bytes in the ``constants`` section and listed by the
manifest's ``constants`` table (name, offset, shape, dtype), so any name round-trips:
``pack_constants`` writes the table, ``unpack_constants`` reads it back.
"""

from __future__ import annotations

import math
import re

import numpy as np

from dlc.dtypes import ALL_DTYPES, itemsize
from dlc.errors import ArtifactError, DlcError
from dlc.runtime.module import METADATA_FORMAT, _numpy_dtype

ARTIFACT_KIND = "dlc-compiled-model"
_MAX_BYTES = 2**62  # no buffer, offset or dimension is larger (NumPy's limit is 2**63 - 1)
_ALIGN = 64
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_COUNT = "an integer from 0 to 2**62"
_COUNTS = "a list of integers from 0 to 2**62"


class _Invalid(Exception):
    """A field the runtime cannot use; the message says which field and why."""


def check_manifest(path: str, manifest: dict, sections: dict) -> None:
    """The manifest describes a compiled model this runtime can execute safely."""
    kind = manifest.get("kind")
    if kind != ARTIFACT_KIND:
        raise ArtifactError(f"{path} is a {kind!r} artifact, not a compiled dlc model "
                            f"({ARTIFACT_KIND!r})")
    if "weights" not in sections:
        raise ArtifactError(f"{path} has no weights section; recompile the model "
                            "('dlc compile')")
    try:
        _check(manifest, sections)
    except _Invalid as err:
        raise ArtifactError(f"{path} has an invalid manifest ({err}); recompile the model "
                            "('dlc compile')") from None
    target = manifest["target"]["string"]
    if target.split()[:1] != ["llvm"]:
        raise ArtifactError(f"{path} was compiled for target {target!r}; this runtime runs "
                            "CPU ('llvm') artifacts")
    plan = manifest["plan"]
    for spec in plan["inputs"] + plan["outputs"] + manifest["constants"]:
        try:
            _numpy_dtype(spec["dtype"])
        except DlcError as err:  # a dtype of ml_dtypes, which is not installed
            raise ArtifactError(f"{path}: {err}") from None


def _check(manifest: dict, sections: dict) -> None:
    target = _get(manifest, "target", "", _is_object, "an object")
    _get(target, "string", "target.", _is_str, "a string")
    _get(target, "cpu", "target.", lambda v: v is None or _is_str(v), "a string or null")
    _get(target, "required_features", "target.", _list_of(_is_str), "a list of strings")
    _get(manifest, "kernels", "", _list_of(_is_str), "a list of strings")
    plan = _get(manifest, "plan", "", _is_object, "an object")
    inputs = _specs(plan, "inputs")
    _specs(plan, "outputs")
    names = [spec["name"] for spec in inputs]
    for name in names:
        if names.count(name) > 1:
            raise _Invalid(f"input name {name!r} appears {names.count(name)} times")
    for key in ("inputs", "outputs"):
        if _get(manifest, key, "", _is_list, "a list") != plan[key]:
            raise _Invalid(f"'{key}' differs from 'plan.{key}'")
    _get(plan, "arena_bytes", "plan.", _is_count, _COUNT)
    _get(plan, "entry", "plan.", lambda v: v is None or _is_symbol(v),
         "a C symbol name or null")
    constants = _constants(manifest, len(sections.get("constants", b"")))
    copied = _copies(plan, constants)
    _library(manifest, sections, copied)


def _specs(plan: dict, key: str) -> list:
    specs = _get(plan, key, "plan.", _is_list, "a list")
    for k, spec in enumerate(specs):
        where = f"plan.{key}[{k}]"
        if not _is_object(spec):
            raise _Invalid(f"'{where}' must be an object, not {_show(spec)}")
        _array(spec, f"{where}.")
    return specs


def _array(spec: dict, where: str) -> int:
    """Check the name, shape and dtype of ``spec``; returns its size in bytes."""
    _get(spec, "name", where, _is_str, "a string")
    shape = _get(spec, "shape", where, _list_of(_is_count), _COUNTS)
    dtype = _get(spec, "dtype", where, _is_dtype, "a dtype dlc knows (float32, int64, ...)")
    size = math.prod(shape) * itemsize(dtype)
    if size > _MAX_BYTES:
        raise _Invalid(f"'{where}shape' {shape} of {dtype} is too large ({size} bytes)")
    return size


def _constants(manifest: dict, section_size: int) -> dict:
    """The constants table, checked against the section's size: name -> entry."""
    table = _get(manifest, "constants", "", _is_list, "a list")
    constants = {}
    for k, entry in enumerate(table):
        where = f"constants[{k}]"
        if not _is_object(entry):
            raise _Invalid(f"'{where}' must be an object, not {_show(entry)}")
        size = _array(entry, f"{where}.")
        offset = _get(entry, "offset", f"{where}.", _is_count, _COUNT)
        if entry["name"] in constants:
            raise _Invalid(f"'{where}': constant {entry['name']!r} is listed twice")
        if offset + size > section_size:
            raise _Invalid(f"'{where}': constant {entry['name']!r} (bytes {offset} to "
                           f"{offset + size}) lies outside the constants section "
                           f"({section_size} bytes)")
        constants[entry["name"]] = entry
    return constants


def _copies(plan: dict, constants: dict) -> set:
    """Check plan.copies (sources that exist and match their output's shape and dtype,
    outputs read only once written); returns the indices of the outputs copied."""
    copies = _get(plan, "copies", "plan.", _is_list, "a list")
    inputs, outputs = plan["inputs"], plan["outputs"]
    targets = [c[0] for c in copies if isinstance(c, list) and len(c) == 2]
    done: set = set()
    for k, copy in enumerate(copies):
        where = f"plan.copies[{k}]"
        if not (isinstance(copy, list) and len(copy) == 2 and isinstance(copy[1], list)
                and len(copy[1]) == 2):
            raise _Invalid(f"'{where}' must be [output index, [source kind, source]], not "
                           f"{_show(copy)}")
        index, (kind, source) = copy
        if not _is_index(index, len(outputs)):
            raise _Invalid(f"'{where}': output index {_show(index)} is out of range (the model "
                           f"has {_count(len(outputs), 'output')})")
        if index in done:
            raise _Invalid(f"'{where}': output {index} is copied twice")
        if kind == "input" and _is_index(source, len(inputs)):
            origin = inputs[source]
        elif kind == "output" and _is_index(source, len(outputs)):
            if source == index or (source in targets and source not in done):
                raise _Invalid(f"'{where}': output {index} is copied from output {source} "
                               "before that output is written")
            origin = outputs[source]
        elif kind == "constant" and _is_str(source) and source in constants:
            origin = constants[source]
        elif kind in ("input", "output"):
            raise _Invalid(f"'{where}': {kind} index {_show(source)} is out of range (the "
                           f"model has {_count(len(plan[kind + 's']), kind)})")
        elif kind == "constant":
            raise _Invalid(f"'{where}': unknown constant {_show(source)} (the constants table "
                           f"lists {_names(constants)})")
        else:
            raise _Invalid(f"'{where}': unknown source kind {_show(kind)} (expected input, "
                           "output or constant)")
        spec = outputs[index]
        if (origin["shape"], origin["dtype"]) != (spec["shape"], spec["dtype"]):
            raise _Invalid(f"'{where}': output {index} ({spec['dtype']}{spec['shape']}) is "
                           f"copied from {kind} {source!r} ({origin['dtype']}"
                           f"{origin['shape']})")
        done.add(index)
    return done


def _library(manifest: dict, sections: dict, copied: set) -> None:
    """The library metadata is well formed, and the plan gives the compiled code every byte
    the metadata says it touches; every output is computed or copied."""
    plan, outputs = manifest["plan"], manifest["plan"]["outputs"]
    metadata = _get(manifest, "library_metadata", "", lambda v: v is None or _is_object(v),
                    "an object or null")
    entry = plan["entry"]
    if entry is not None and "library" not in sections:
        raise _Invalid(f"'plan.entry' is {entry!r} but the artifact has no library section")
    if (metadata is None) == ("library" in sections):
        raise _Invalid("'library_metadata' must describe the library section (and be null "
                       "when there is none)")
    entries = _metadata(metadata) if metadata is not None else {}
    written = [0] * len(outputs)
    if entry is not None:
        needs = entries.get(entry)
        if needs is None:
            raise _Invalid(f"'plan.entry' {entry!r} is not an entry function of the library "
                           f"('library_metadata.entries' lists {_names(entries)})")
        _enough(plan, needs, len(sections["weights"]))
        written[:len(needs["output_bytes"])] = needs["output_bytes"]
    for k, spec in enumerate(outputs):
        if not written[k] and k not in copied and _array(spec, "") > 0:
            raise _Invalid(f"output {k} ({spec['name']!r}) is neither computed by the "
                           "compiled code nor copied by 'plan.copies'")
    _calls(plan, metadata, len(sections["weights"]))


def _calls(plan: dict, metadata: dict | None, weights_size: int) -> None:
    """plan.calls, the entry function's kernel calls in order (what profiling calls one by
    one; artifacts written before dlc recorded them have none): each names a function of
    the library and passes locations that hold every byte of its parameters."""
    if "calls" not in plan:
        return
    calls = _get(plan, "calls", "plan.", _is_list, "a list")
    if calls and plan["entry"] is None:
        raise _Invalid("'plan.calls' lists kernel calls, but 'plan.entry' is null")
    functions = {f["symbol"]: f for f in metadata["functions"]} if metadata else {}
    for k, call in enumerate(calls):
        where = f"plan.calls[{k}]"
        if not _is_object(call):
            raise _Invalid(f"'{where}' must be an object, not {_show(call)}")
        _get(call, "kernel", f"{where}.", _is_str, "a string")
        symbol = _get(call, "symbol", f"{where}.", _is_symbol, "a C symbol name")
        if "flops" in call:  # optional: older artifacts have none
            _get(call, "flops", f"{where}.", lambda v: v is None or _is_count(v),
                 f"{_COUNT} or null")
        args = _get(call, "args", f"{where}.", _is_list, "a list")
        function = functions.get(symbol)
        if function is None:
            raise _Invalid(f"'{where}.symbol' {symbol!r} is not a function of the library "
                           "('library_metadata.functions')")
        params = function["params"]
        if len(args) != len(params):
            raise _Invalid(f"'{where}.args' gives {_count(len(args), 'location')}, but "
                           f"{symbol} takes {_count(len(params), 'parameter')}")
        for j, (location, param) in enumerate(zip(args, params)):
            _location(plan, location, param, weights_size, f"{where}.args[{j}]")


def _location(plan: dict, location, param: dict, weights_size: int, where: str) -> None:
    """``location`` ([kind, index or byte offset]) holds the bytes of ``param``, and is
    writable (an output or the arena) if the kernel writes the parameter."""
    size = _array(param, "")
    if not (isinstance(location, list) and len(location) == 2):
        raise _Invalid(f"'{where}' must be [kind, index or offset], not {_show(location)}")
    kind, at = location
    if kind in ("input", "output"):
        specs = plan[kind + "s"]
        if not _is_index(at, len(specs)):
            raise _Invalid(f"'{where}': {kind} index {_show(at)} is out of range (the model "
                           f"has {_count(len(specs), kind)})")
        room = _array(specs[at], "")
    elif kind in ("arena", "weights"):
        if not _is_count(at):
            raise _Invalid(f"'{where}': {kind} offset must be {_COUNT}, not {_show(at)}")
        room = (plan["arena_bytes"] if kind == "arena" else weights_size) - at
    else:
        raise _Invalid(f"'{where}': unknown location kind {_show(kind)} (expected input, "
                       "output, arena or weights)")
    if room < size:
        raise _Invalid(f"'{where}' ({kind} {at}) has room for {max(room, 0)} bytes, but the "
                       f"parameter takes {size}")
    if param["output"] and kind in ("input", "weights"):
        raise _Invalid(f"'{where}': the kernel writes parameter {param['name']!r}, which "
                       f"must not lie in the {kind}")


def _metadata(metadata: dict) -> dict:
    """Check the library metadata the runtime reads; returns its entries."""
    where = "library_metadata."
    _get(metadata, "format", where, lambda v: v == METADATA_FORMAT,
         f"{METADATA_FORMAT} (the library metadata format this runtime reads)")
    _get(metadata, "num_threads", where,
         lambda v: v is None or (type(v) is int and 1 <= v < 2**31), "a thread count or null")
    functions = _get(metadata, "functions", where, _is_list, "a list")
    names = set()
    for k, function in enumerate(functions):
        at = f"{where}functions[{k}]"
        if not _is_object(function):
            raise _Invalid(f"'{at}' must be an object, not {_show(function)}")
        name = _get(function, "name", f"{at}.", _is_str, "a string")
        _get(function, "symbol", f"{at}.", _is_symbol, "a C symbol name")
        params = _get(function, "params", f"{at}.", _is_list, "a list")
        for j, param in enumerate(params):
            if not _is_object(param):
                raise _Invalid(f"'{at}.params[{j}]' must be an object, not {_show(param)}")
            _array(param, f"{at}.params[{j}].")
            _get(param, "output", f"{at}.params[{j}].", lambda v: isinstance(v, bool),
                 "true or false")
        if name in names:
            raise _Invalid(f"'{at}': function {name!r} is listed twice")
        names.add(name)
    entries = _get(metadata, "entries", where, _is_object, "an object")
    for symbol, needs in entries.items():
        at = f"{where}entries.{symbol}"
        if not (_is_symbol(symbol) and _is_object(needs)):
            raise _Invalid(f"'{at}' must map a C symbol name to an object")
        for key in ("arena_bytes", "weights_bytes"):
            _get(needs, key, f"{at}.", _is_count, _COUNT)
        for key in ("input_bytes", "output_bytes"):
            _get(needs, key, f"{at}.", _list_of(_is_count), _COUNTS)
    return entries


def _enough(plan: dict, needs: dict, weights_size: int) -> None:
    """The plan's buffers hold at least the bytes the entry function touches."""
    if plan["arena_bytes"] < needs["arena_bytes"]:
        raise _Invalid(f"'plan.arena_bytes' is {plan['arena_bytes']}, but the compiled code "
                       f"uses {needs['arena_bytes']} bytes of arena")
    if weights_size < needs["weights_bytes"]:
        raise _Invalid(f"the weights section has {weights_size} bytes, but the compiled code "
                       f"reads {needs['weights_bytes']}")
    for key in ("inputs", "outputs"):
        specs, touched = plan[key], needs[f"{key[:-1]}_bytes"]
        if len(touched) > len(specs):
            raise _Invalid(f"the compiled code uses {key[:-1]} {len(touched) - 1}, but the "
                           f"plan has {_count(len(specs), key[:-1])}")
        for k, (spec, size) in enumerate(zip(specs, touched)):
            if _array(spec, "") < size:
                raise _Invalid(f"'plan.{key}[{k}]' ({spec['name']!r}, {spec['dtype']}"
                               f"{spec['shape']}) holds {_array(spec, '')} bytes, but the "
                               f"compiled code uses {size}")


# -- constants ----------------------------------------------------------------------------
def pack_constants(constants: dict) -> tuple[list, bytes]:
    """The constants table and section bytes for ``constants`` (name -> array)."""
    table, chunks, offset = [], [], 0
    for name, value in constants.items():
        data = np.ascontiguousarray(value).tobytes()
        table.append({"name": name, "offset": offset, "shape": list(np.shape(value)),
                      "dtype": np.asarray(value).dtype.name})
        padded = (len(data) + _ALIGN - 1) // _ALIGN * _ALIGN
        chunks.append(data + b"\0" * (padded - len(data)))
        offset += padded
    return table, b"".join(chunks)


def unpack_constants(manifest: dict, section: bytes) -> dict:
    """name -> array, from a manifest that passed check_manifest."""
    constants = {}
    for entry in manifest["constants"]:
        dtype = _numpy_dtype(entry["dtype"])
        count = math.prod(entry["shape"])
        data = np.frombuffer(section, dtype=dtype, count=count, offset=entry["offset"])
        constants[entry["name"]] = data.reshape(entry["shape"]).copy()
    return constants


# -- field checks -------------------------------------------------------------------------
def _get(obj: dict, key: str, where: str, valid, what: str):
    """``obj[key]``, which must exist and satisfy ``valid`` (described by ``what``)."""
    if key not in obj:
        raise _Invalid(f"'{where}{key}' is missing")
    value = obj[key]
    if not valid(value):
        raise _Invalid(f"'{where}{key}' must be {what}, not {_show(value)}")
    return value


def _is_object(value) -> bool:
    return isinstance(value, dict)


def _is_list(value) -> bool:
    return isinstance(value, list)


def _is_str(value) -> bool:
    return isinstance(value, str)


def _is_count(value) -> bool:
    return type(value) is int and 0 <= value <= _MAX_BYTES


def _is_index(value, length: int) -> bool:
    return type(value) is int and 0 <= value < length


def _is_symbol(value) -> bool:
    return isinstance(value, str) and _SYMBOL.match(value) is not None


def _is_dtype(value) -> bool:
    return isinstance(value, str) and value in ALL_DTYPES


def _list_of(valid):
    return lambda value: isinstance(value, list) and all(valid(v) for v in value)


def _names(table: dict) -> str:
    return ", ".join(repr(name) for name in table) or "none"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _show(value) -> str:
    """A manifest value, shortened to one short line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
