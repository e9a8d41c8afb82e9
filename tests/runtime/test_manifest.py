"""dlc.runtime.manifest: every malformed manifest is refused at load with an ArtifactError
whose one-line message names the field and what is wrong with it.

Each case takes the small model's artifact, edits its manifest or sections and writes it
again with fresh checksums, so the damage passes the checksum checks (a writer with a bug,
or a hand edit) and only the manifest checks stand between it and the native code."""

from __future__ import annotations

import json

import numpy as np
import pytest
from artifact_util import refused, rewrite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dlc
from dlc.dtypes import ALL_DTYPES
from dlc.errors import ArtifactError, DlcError
from dlc.runtime import manifest as manifest_module
from dlc.runtime.artifact import read_artifact, write_artifact
from dlc.runtime.manifest import pack_constants, unpack_constants
from dlc.runtime.module import _numpy_dtype


def _resolve(manifest: dict, path: str) -> tuple:
    """(container, key) of the field at ``path``: dots between keys, digits index lists,
    ENTRY names the plan's entry function."""
    keys = [int(k) if k.isdigit() else manifest["plan"]["entry"] if k == "ENTRY" else k
            for k in path.split(".")]
    obj = manifest
    for key in keys[:-1]:
        obj = obj[key]
    return obj, keys[-1]


def put(path: str, value):
    """An edit that sets the manifest field at ``path``."""
    def edit(manifest, sections):
        obj, key = _resolve(manifest, path)
        obj[key] = value
    return edit


def drop(path: str):
    """An edit that deletes the manifest field at ``path``."""
    def edit(manifest, sections):
        obj, key = _resolve(manifest, path)
        del obj[key]
    return edit


def both(key: str, path: str, value):
    """Set ``path`` in plan.KEY and in the manifest's copy KEY alike."""
    def edit(manifest, sections):
        put(f"plan.{key}.{path}", value)(manifest, sections)
        put(f"{key}.{path}", value)(manifest, sections)
    return edit


def arena(delta: int):
    """plan.arena_bytes set to what the compiled code needs, plus ``delta``."""
    def edit(manifest, sections):
        needs = manifest["library_metadata"]["entries"][manifest["plan"]["entry"]]
        manifest["plan"]["arena_bytes"] = needs["arena_bytes"] + delta
    return edit


def drop_outputs(manifest, sections):
    for where in (manifest, manifest["plan"]):
        where["outputs"] = where["outputs"][:1]
    manifest["plan"]["copies"] = []


def drop_inputs(manifest, sections):
    for where in (manifest, manifest["plan"]):
        where["inputs"] = []


def twice(path: str):
    """An edit that appends a copy of the last item of the list at ``path``."""
    def edit(manifest, sections):
        obj, key = _resolve(manifest, path)
        obj[key].append(obj[key][-1])
    return edit


def section(name: str, data):
    """An edit that replaces (or, with None, removes) a section."""
    def edit(manifest, sections):
        if data is None:
            sections.pop(name)
        else:
            sections[name] = data(sections[name])
    return edit


MISSING = [
    "target", "target.string", "target.cpu", "target.required_features", "kernels", "plan",
    "plan.entry", "plan.inputs", "plan.outputs", "plan.arena_bytes", "plan.copies",
    "plan.inputs.0.name", "plan.inputs.0.shape", "plan.outputs.2.dtype", "inputs", "outputs",
    "constants", "constants.0.offset", "constants.0.dtype", "library_metadata",
    "library_metadata.format", "library_metadata.num_threads", "library_metadata.functions",
    "library_metadata.functions.0.symbol", "library_metadata.functions.0.params.0.output",
    "library_metadata.entries", "library_metadata.entries.ENTRY.arena_bytes",
    "library_metadata.entries.ENTRY.output_bytes", "plan.calls.0.kernel",
    "plan.calls.0.symbol", "plan.calls.1.args",
]


def _label(path: str) -> str:
    """How a message names the field at ``path``: plan.inputs[0].shape."""
    parts = [f"[{p}]" if p.isdigit() else f".{p}" for p in path.split(".")]
    return "".join(parts).lstrip(".").replace(".ENTRY", ".dlc_run_small")


@pytest.mark.parametrize("path", MISSING)
def test_missing_field(saved, tmp_path, no_native_code, path):
    refused(rewrite(tmp_path, saved, drop(path)), "invalid manifest",
            f"'{_label(path)}' is missing", "recompile")


WRONG_TYPES = [
    ("plan", [], "'plan' must be an object, not []"),
    ("target", "llvm", "'target' must be an object, not 'llvm'"),
    ("target.string", 5, "'target.string' must be a string, not 5"),
    ("target.cpu", ["znver4"], "'target.cpu' must be a string or null"),
    ("target.required_features", "avx2", "'target.required_features' must be a list of str"),
    ("kernels", [1], "'kernels' must be a list of strings, not [1]"),
    ("plan.arena_bytes", "192", "'plan.arena_bytes' must be an integer from 0 to 2**62, not "
                                "'192'"),
    ("plan.arena_bytes", 192.0, "not 192.0"),
    ("plan.arena_bytes", True, "not True"),
    ("plan.entry", 7, "'plan.entry' must be a C symbol name or null, not 7"),
    ("plan.entry", "dlc_run_small; rm -rf ~", "must be a C symbol name"),
    ("plan.entry", "", "must be a C symbol name"),
    ("plan.inputs", {"x": [2, 12]}, "'plan.inputs' must be a list"),
    ("plan.inputs.0", "x", "'plan.inputs[0]' must be an object, not 'x'"),
    ("plan.inputs.0.name", None, "'plan.inputs[0].name' must be a string, not None"),
    ("plan.inputs.0.shape", [2, "12"], "'plan.inputs[0].shape' must be a list of integers"),
    ("plan.inputs.0.shape", "2x12", "'plan.inputs[0].shape' must be a list of integers"),
    ("plan.inputs.0.dtype", "object", "'plan.inputs[0].dtype' must be a dtype dlc knows"),
    ("plan.outputs.0.dtype", "float128", "'plan.outputs[0].dtype' must be a dtype dlc knows"),
    ("plan.copies", {}, "'plan.copies' must be a list, not {}"),
    ("plan.copies.0", [2], "'plan.copies[0]' must be [output index, [source kind, source]]"),
    ("plan.copies.0", [2, "constant"], "'plan.copies[0]' must be [output index, [source "),
    ("constants", {"k": 0}, "'constants' must be a list"),
    ("constants.0", "k", "'constants[0]' must be an object, not 'k'"),
    ("constants.0.name", 3, "'constants[0].name' must be a string, not 3"),
    ("library_metadata", [], "'library_metadata' must be an object or null, not []"),
    ("library_metadata.format", 2, "'library_metadata.format' must be 1"),
    ("library_metadata.num_threads", 0, "'library_metadata.num_threads' must be a thread "
                                        "count or null, not 0"),
    ("library_metadata.functions", {}, "'library_metadata.functions' must be a list"),
    ("library_metadata.functions.0", None, "'library_metadata.functions[0]' must be an object"),
    ("library_metadata.functions.0.symbol", "dlc-k0", "must be a C symbol name"),
    ("library_metadata.functions.0.params", "A, B", "params' must be a list, not 'A, B'"),
    ("library_metadata.functions.0.params.0.shape", [-1], "params[0].shape' must be a list of"),
    ("library_metadata.functions.0.params.0.output", "yes", "must be true or false, not 'yes'"),
    ("library_metadata.entries", [], "'library_metadata.entries' must be an object, not []"),
    ("library_metadata.entries.ENTRY", 96, "entries.dlc_run_small' must map a C symbol name "
                                           "to an object"),
    ("library_metadata.entries.ENTRY.input_bytes", 96, "input_bytes' must be a list of "
                                                       "integers"),
    ("plan.calls", {}, "'plan.calls' must be a list, not {}"),
    ("plan.calls.0", "k0", "'plan.calls[0]' must be an object, not 'k0'"),
    ("plan.calls.0.kernel", 3, "'plan.calls[0].kernel' must be a string, not 3"),
    ("plan.calls.0.symbol", "dlc-k0", "'plan.calls[0].symbol' must be a C symbol name"),
    ("plan.calls.0.flops", -1, "'plan.calls[0].flops' must be an integer from 0 to 2**62 or "
                               "null, not -1"),
    ("plan.calls.0.flops", 1.5, "not 1.5"),
    ("plan.calls.1.args", "a", "'plan.calls[1].args' must be a list, not 'a'"),
]


@pytest.mark.parametrize("path, value, fragment", WRONG_TYPES,
                         ids=[f"{p}={v!r}" for p, v, _ in WRONG_TYPES])
def test_wrong_type(saved, tmp_path, no_native_code, path, value, fragment):
    refused(rewrite(tmp_path, saved, put(path, value)), "invalid manifest", fragment)


def test_target_that_is_not_a_cpu_comes_after_the_field_checks(saved, tmp_path,
                                                                  no_native_code):
    refused(rewrite(tmp_path, saved, put("target.string", "cuda -arch=sm_90")),
            "compiled for target 'cuda -arch=sm_90'", "CPU")


INCONSISTENT = {
    # names that must exist
    "unknown-entry": (put("plan.entry", "dlc_run_other"),
                      "'plan.entry' 'dlc_run_other' is not an entry function of the library "
                      "('library_metadata.entries' lists 'dlc_run_small')"),
    "unknown-constant": (put("plan.copies.0.1.1", "nope"),
                         "'plan.copies[0]': unknown constant 'nope' (the constants table "
                         "lists 'k')"),
    "constant-not-in-table": (put("constants", []), "unknown constant 'k' (the constants "
                                                    "table lists none)"),
    "constant-name-not-a-string": (put("plan.copies.0.1.1", 0), "unknown constant 0"),
    "unknown-source-kind": (put("plan.copies.0.1.0", "weights"),
                            "unknown source kind 'weights' (expected input, output or "
                            "constant)"),
    "constant-listed-twice": (twice("constants"), "'constants[1]': constant 'k' is listed "
                                                  "twice"),
    "function-listed-twice": (twice("library_metadata.functions"), "is listed twice"),
    "input-name-twice": (lambda m, s: [twice("plan.inputs")(m, s), twice("inputs")(m, s)],
                         "input name 'x' appears 2 times"),
    "copy-differs-from-plan": (put("inputs.0.shape", [2, 13]),
                               "'inputs' differs from 'plan.inputs'"),
    # index ranges
    "output-index-past-end": (put("plan.copies.0.0", 3), "'plan.copies[0]': output index 3 "
                                                         "is out of range (the model has 3 "
                                                         "outputs)"),
    "output-index-negative": (put("plan.copies.0.0", -1), "output index -1 is out of range"),
    "output-index-bool": (put("plan.copies.0.0", True), "output index True is out of range"),
    "input-source-past-end": (put("plan.copies.0.1", ["input", 1]),
                              "input index 1 is out of range (the model has 1 input)"),
    "output-source-past-end": (put("plan.copies.0.1", ["output", 7]),
                               "output index 7 is out of range"),
    "copied-twice": (twice("plan.copies"), "'plan.copies[1]': output 2 is copied twice"),
    "copied-from-itself": (put("plan.copies.0.1", ["output", 2]),
                           "output 2 is copied from output 2 before that output is written"),
    "copied-before-written": (put("plan.copies", [[1, ["output", 2]], [2, ["constant", "k"]]]),
                              "output 1 is copied from output 2 before that output is "
                              "written"),
    "copy-of-another-shape": (put("plan.copies.0.1", ["input", 0]),
                              "output 2 (int64[2, 3]) is copied from input 0 (float32[2, 12])"),
    "constant-of-another-shape": (put("constants.0.shape", [6]),
                                  "copied from constant 'k' (int64[6])"),
    "constant-of-another-dtype": (put("constants.0.dtype", "float64"),
                                  "copied from constant 'k' (float64[2, 3])"),
    # offsets and sizes
    "constant-offset-negative": (put("constants.0.offset", -64),
                                 "'constants[0].offset' must be an integer from 0 to 2**62, "
                                 "not -64"),
    "constant-offset-huge": (put("constants.0.offset", 2**64), "not 18446744073709551616"),
    "constant-past-section": (put("constants.0.offset", 64),
                              "'constants[0]': constant 'k' (bytes 64 to 112) lies outside "
                              "the constants section (64 bytes)"),
    "constant-larger-than-section": (put("constants.0.shape", [2, 300]),
                                     "lies outside the constants section"),
    "no-constants-section": (section("constants", None),
                             "lies outside the constants section (0 bytes)"),
    "arena-negative": (put("plan.arena_bytes", -1), "'plan.arena_bytes' must be an integer "
                                                    "from 0 to 2**62, not -1"),
    "arena-huge": (put("plan.arena_bytes", 2**64), "must be an integer from 0 to 2**62"),
    "shape-huge": (put("plan.outputs.0.shape", [2**40, 2**40]),
                   "'plan.outputs[0].shape' [1099511627776, 1099511627776] of float32 is too "
                   "large"),
    "dimension-huge": (put("plan.outputs.0.shape", [2**63]), "must be a list of integers"),
    # what the compiled code touches
    "arena-one-byte-short": (arena(-1), "bytes of arena"),
    "arena-zero": (put("plan.arena_bytes", 0), "'plan.arena_bytes' is 0, but the compiled "
                                               "code uses"),
    "weights-short": (section("weights", lambda data: data[:64]),
                      "the weights section has 64 bytes, but the compiled code reads"),
    "input-smaller": (both("inputs", "0.shape", [1, 12]),
                      "'plan.inputs[0]' ('x', float32[1, 12]) holds 48 bytes, but the "
                      "compiled code uses 96"),
    "output-smaller": (both("outputs", "0.shape", [1, 8]),
                       "'plan.outputs[0]' ('y', float32[1, 8]) holds 32 bytes, but the "
                       "compiled code uses 64"),
    "output-narrower": (both("outputs", "1.dtype", "float16"),
                        "'plan.outputs[1]' ('x_copy', float16[2, 12]) holds 48 bytes"),
    "fewer-outputs": (drop_outputs, "the compiled code uses output 1, but the plan has 1 "
                                    "output"),
    "fewer-inputs": (drop_inputs, "the compiled code uses input 0, but the plan has 0 inputs"),
    "output-never-written": (put("plan.copies", []), "output 2 ('k') is neither computed by "
                                                     "the compiled code nor copied"),
    "no-entry": (put("plan.entry", None), "output 0 ('y') is neither computed"),
    # kernel calls (what profiling calls one by one)
    "call-of-unknown-function": (put("plan.calls.0.symbol", "dlc_nope"),
                                 "'plan.calls[0].symbol' 'dlc_nope' is not a function of the "
                                 "library"),
    "call-with-too-few-args": (put("plan.calls.0.args", [["input", 0]]),
                               "'plan.calls[0].args' gives 1 location, but dlc_k0_add takes 3 "
                               "parameters"),
    "call-location-not-a-pair": (put("plan.calls.0.args.0", ["input"]),
                                 "'plan.calls[0].args[0]' must be [kind, index or offset]"),
    "call-input-past-end": (put("plan.calls.0.args.0", ["input", 1]),
                            "'plan.calls[0].args[0]': input index 1 is out of range (the model "
                            "has 1 input)"),
    "call-unknown-kind": (put("plan.calls.0.args.0", ["stack", 0]),
                          "unknown location kind 'stack' (expected input, output, arena or "
                          "weights)"),
    "call-arena-offset-negative": (put("plan.calls.0.args.2", ["arena", -64]),
                                   "'plan.calls[0].args[2]': arena offset must be an integer "
                                   "from 0 to 2**62, not -64"),
    "call-past-arena": (put("plan.calls.0.args.2", ["arena", 128]),
                        "'plan.calls[0].args[2]' (arena 128) has room for 64 bytes, but the "
                        "parameter takes 96"),
    "call-past-weights": (lambda m, s: put("plan.calls.1.args.1",
                                           ["weights", len(s["weights"])])(m, s),
                          "has room for 0 bytes, but the parameter takes"),
    "call-output-too-small": (put("plan.calls.3.args.1", ["output", 0]),
                              "'plan.calls[3].args[1]' (output 0) has room for 64 bytes"),
    "call-writes-weights": (put("plan.calls.0.args.2", ["weights", 0]),
                            "'plan.calls[0].args[2]': the kernel writes parameter 'add', which "
                            "must not lie in the weights"),
    "call-writes-input": (put("plan.calls.3.args.1", ["input", 0]),
                          "must not lie in the input"),
    "library-without-metadata": (put("library_metadata", None),
                                 "'library_metadata' must describe the library section"),
    "entry-without-library": (section("library", None),
                              "'plan.entry' is 'dlc_run_small' but the artifact has no "
                              "library section"),
}


@pytest.mark.parametrize("case", INCONSISTENT)
def test_inconsistent_manifest(saved, tmp_path, no_native_code, case):
    edit, fragment = INCONSISTENT[case]
    refused(rewrite(tmp_path, saved, edit), "invalid manifest", fragment, "recompile")


def test_calls_without_entry(tmp_path, no_native_code):
    """A model without kernels (only constant outputs) has no entry, and so no calls."""
    from tiny_models import constants_model

    path = tmp_path / "constants.dlc"
    dlc.compile(constants_model(tmp_path / "c.onnx", ["a"], relu=False)).save(path)
    edit = put("plan.calls", [{"kernel": "k0", "symbol": "dlc_k0", "args": []}])
    refused(rewrite(tmp_path, path.read_bytes(), edit), "'plan.calls' lists kernel calls, "
            "but 'plan.entry' is null")


def test_dtype_that_needs_ml_dtypes(saved, tmp_path, no_native_code, monkeypatch):
    def missing(name):
        raise DlcError(f"dtype {name} needs the ml_dtypes package (pip install ml_dtypes)")

    monkeypatch.setattr(manifest_module, "_numpy_dtype", missing)
    refused(rewrite(tmp_path, saved, lambda m, s: None), "pip install ml_dtypes")


# -- checked once the library is loaded (nothing in it is called) -------------------------
def rename_function(symbol: str):
    """An edit that renames the first function's symbol, in the metadata and plan.calls."""
    def edit(manifest, sections):
        put("library_metadata.functions.0.symbol", symbol)(manifest, sections)
        put("plan.calls.0.symbol", symbol)(manifest, sections)
    return edit


@pytest.mark.parametrize("edit, fragment", [
    (rename_function("dlc_nope"),
     "(section library): the library exports no function 'dlc_nope'"),
    (lambda m, s: [put("plan.entry", "dlc_run_other")(m, s), m["library_metadata"][
        "entries"].update(dlc_run_other=m["library_metadata"]["entries"]["dlc_run_small"])],
     "the library exports no function 'dlc_run_other'"),
    # a function the library exports, but not the kernel: found, and never called
    (rename_function("dlc_set_num_threads"),
     "library_metadata in the manifest differs from the metadata the library embeds"),
    (put("library_metadata.cpu", "some-other-cpu"), "differs from the metadata the library"),
], ids=["unknown-kernel-symbol", "unknown-entry-symbol", "symbol-of-another-function",
        "edited-metadata"])
def test_library_disagrees_with_manifest(saved, tmp_path, edit, fragment):
    refused(rewrite(tmp_path, saved, edit), fragment)


def test_unedited_rewrite_still_loads(saved, tmp_path):
    """The helpers change nothing by themselves: the cases above fail for their edit."""
    model = dlc.runtime.load(rewrite(tmp_path, saved, lambda m, s: None))
    assert model.run(np.zeros((2, 12), np.float32))[2].tolist() == [[0, 1, 2], [3, 4, 5]]


# -- constants table ----------------------------------------------------------------------
def test_constants_round_trip_every_dtype():
    values = {f"c{k}": (np.arange(k + 2) % 2).astype(np.float32).astype(_numpy_dtype(dtype))
              .reshape(1, k + 2) for k, dtype in enumerate(ALL_DTYPES)}
    values["scalar"], values["empty"] = np.float64(2.5), np.zeros((0, 3), np.int32)
    table, data = pack_constants(values)
    assert all(entry["offset"] % 64 == 0 for entry in table)
    got = unpack_constants({"constants": table}, data)
    assert list(got) == list(values)
    for name, value in values.items():
        assert got[name].dtype == np.asarray(value).dtype and got[name].shape == np.shape(value)
        assert got[name].tobytes() == np.asarray(value).tobytes()
        assert got[name].flags.writeable and got[name].flags.c_contiguous


# -- fuzz ---------------------------------------------------------------------------------
def _paths(value, prefix=()):
    """Paths into a JSON value: every key, the first, second and last item of each list.
    Not the parts write_artifact writes afresh, nor the manifest's copies of plan.inputs
    and plan.outputs (a fuzzed plan field is changed in both, see _mutate)."""
    if prefix[:1] in (("sections",), ("format_version",), ("inputs",), ("outputs",)):
        return
    if prefix:
        yield prefix
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(k, value[k]) for k in sorted({0, 1, len(value) - 1}) if 0 <= k < len(value)]
    else:
        items = []
    for key, item in items:
        yield from _paths(item, prefix + (key,))


def _mutate(manifest: dict, path: tuple, value) -> None:
    """Set (or with "drop", delete) the field at ``path``, in plan.inputs and plan.outputs
    together with the manifest's copies; nothing if an earlier mutation removed it."""
    copies = [path[1:]] if path[:2] in (("plan", "inputs"), ("plan", "outputs")) else []
    for where in [path] + copies:
        obj = manifest
        try:
            for key in where[:-1]:
                obj = obj[key]
            if value == "drop":
                del obj[where[-1]]
            else:
                obj[where[-1]] = json.loads(json.dumps(value))
        except (KeyError, IndexError, TypeError):
            pass


@pytest.fixture(scope="module")
def seed(saved, tmp_path_factory):
    path = tmp_path_factory.mktemp("seed") / "seed.dlc"
    path.write_bytes(saved)
    manifest, sections = read_artifact(path)
    return manifest, sections, sorted(_paths(manifest), key=repr), path.parent / "fuzzed.dlc"


values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.integers(-2**70, 2**70),
    st.floats(allow_nan=False), st.text(max_size=6),
    st.sampled_from(["float32", "int64", "k", "x", "input", "output", "constant",
                     "dlc_run_small", "dlc_set_num_threads"]),
    st.lists(st.integers(-1, 200), max_size=3), st.just([]), st.just({}),
    st.lists(st.one_of(st.integers(-1, 3), st.lists(st.integers(-1, 3), max_size=2)),
             max_size=2))
mutations = st.lists(st.tuples(st.integers(0, 10**6), st.one_of(st.just("drop"), values)),
                     min_size=1, max_size=3)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(mutations)
def test_mutated_manifest_is_refused_or_runs(seed, mutations):
    """Whatever a field becomes, loading raises ArtifactError or gives a model that runs."""
    manifest, sections, paths, out = seed
    manifest = json.loads(json.dumps(manifest))
    for pick, value in mutations:
        _mutate(manifest, paths[pick % len(paths)], value)
    write_artifact(out, {k: v for k, v in manifest.items() if k != "sections"}, sections)
    try:
        model = dlc.runtime.load(out)
    except ArtifactError as err:
        assert "\n" not in str(err)
        return
    specs = model.inputs + model.outputs
    if sum(int(np.prod(s["shape"])) for s in specs) > 1 << 16:
        return  # valid, but too large to run here
    inputs = [np.zeros(s["shape"], _numpy_dtype(s["dtype"])) for s in model.inputs]
    model.run(*inputs)
    if "calls" in model.manifest["plan"]:
        model.profile(dict(zip(model.input_names, inputs)), repeat=1, warmup=0)
