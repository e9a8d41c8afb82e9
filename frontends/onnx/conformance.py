"""ONNX's own test cases run through dlc.backend, with ONNX's tolerances.

Elements the spec leaves undefined (``dlc.frontends.onnx.undefined``) are not compared;
the case is reported as "undefined", apart from the passes. The inference scope is defined
here: training ops, sequence/map/optional values, string
tensors and non-deterministic random ops are out of scope. ``python -m
dlc.frontends.onnx.conformance --update`` runs every case and regenerates
docs/onnx_support.md and tests/onnx/expected_pass.txt (the cases that must keep passing).
"""

from __future__ import annotations

import glob
import os
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from dlc import env

TRAINING_OPS = {"Adagrad", "Adam", "Momentum", "Gradient"}
RANDOM_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli"}
SEQUENCE_OPS = {"SequenceConstruct", "SequenceAt", "SequenceEmpty", "SequenceErase",
                "SequenceInsert", "SequenceLength", "SequenceMap", "SplitToSequence",
                "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement"}
STRING_OPS = {"StringNormalizer", "StringConcat", "StringSplit", "RegexFullMatch"}
DATA_SUITES = ("pytorch-converted", "pytorch-operator", "simple", "light")


@dataclass
class Case:
    name: str
    suite: str
    model: object = None            # ModelProto (node cases) or None
    path: str | None = None         # model.onnx for data suites
    data_sets: list = field(default_factory=list)  # [(inputs, outputs)]
    rtol: float = 1e-3
    atol: float = 1e-7

    def load(self):
        if self.model is None:
            import onnx

            self.model = onnx.load(self.path)
        return self.model


def _data_root() -> str:
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def node_cases() -> list:
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    out = []
    for c in cases:
        data = [([_array(x) for x in i], [_array(x) for x in o]) for i, o in (c.data_sets or [])]
        out.append(Case(c.name, "node", model=c.model, data_sets=data, rtol=c.rtol,
                        atol=c.atol))
    return out


def _array(value):
    """Test data as NumPy (ONNX stores some of it as TensorProtos)."""
    import onnx
    from onnx import numpy_helper

    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    return value


def _read_pb(path):
    import onnx
    from onnx import numpy_helper

    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def data_cases() -> list:
    root = _data_root()
    out = []
    for suite in DATA_SUITES:
        base = os.path.join(root, suite)
        if suite == "light":
            for path in sorted(glob.glob(os.path.join(base, "light_*.onnx"))):
                name = "test_" + os.path.basename(path)[len("light_"):-len(".onnx")]
                expected = path[:-len(".onnx")] + "_output_0.pb"
                out.append(Case(name, suite, path=path, data_sets=[("light", expected)]))
            continue
        for case_dir in sorted(glob.glob(os.path.join(base, "test_*"))):
            sets = []
            for ds in sorted(glob.glob(os.path.join(case_dir, "test_data_set_*"))):
                ins = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "input_*.pb")),
                                                  key=_index)]
                outs = [_read_pb(p) for p in sorted(glob.glob(os.path.join(ds, "output_*.pb")),
                                                   key=_index)]
                sets.append((ins, outs))
            out.append(Case(os.path.basename(case_dir), suite,
                            path=os.path.join(case_dir, "model.onnx"), data_sets=sets))
    return out


def _index(path: str) -> int:
    return int(os.path.basename(path).split("_")[1].split(".")[0])


def all_cases() -> list:
    return node_cases() + data_cases()


_STRING = 8  # TensorProto.STRING
#: ops of the ai.onnx.ml domain that take or make maps or sequences of maps
MAP_OPS = {"CastMap", "DictVectorizer", "ZipMap"}


def scope_reason(case: Case) -> str | None:
    """Why a case is outside the inference scope, or None if it is in scope.

    Out of scope are exactly: training (the training domain's ops, and Dropout in
    training mode with a ratio that is not 0, which is random), sequence, map and optional
    values, string tensors, and random ops (RandomNormal, Bernoulli, ...: their values are
    not specified). BatchNormalization in training mode is deterministic and in scope."""
    model = case.load()
    opsets = {("" if o.domain in ("", "ai.onnx") else o.domain): o.version
              for o in model.opset_import}
    for graph in _all_graphs(model.graph):
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            reason = _value_reason(vi.type)
            if reason:
                return reason
        if any(init.data_type == _STRING for init in graph.initializer):
            return "string tensors"
    for graph in _all_graphs(model.graph):
        for node in graph.node:
            domain = "" if node.domain in ("", "ai.onnx") else node.domain
            reason = _node_reason(node, opsets.get(domain), graph)
            if reason:
                return reason
    return None


def _value_reason(type_proto) -> str | None:
    kind = type_proto.WhichOneof("value")
    if kind is None:
        return None  # a subgraph value whose type is left to inference
    if kind != "tensor_type":
        return f"{kind.replace('_type', '')} values"
    if type_proto.tensor_type.elem_type == _STRING:
        return "string tensors"
    return None


def _node_reason(node, opset, graph) -> str | None:
    if node.domain == "ai.onnx.preview.training" or node.op_type in TRAINING_OPS:
        return "training op"
    if node.op_type in RANDOM_OPS:
        return "random op"
    if node.op_type in SEQUENCE_OPS:
        return "sequence/optional values"
    if node.op_type in MAP_OPS:
        return "map values"
    if node.op_type in STRING_OPS:
        return "string tensors"
    attrs = {a.name: a for a in node.attribute}
    if node.op_type in ("Cast", "Constant") and (
            attrs.get("to") is not None and attrs["to"].i == _STRING
            or "value_string" in attrs or "value_strings" in attrs
            or "value" in attrs and attrs["value"].t.data_type == _STRING):
        return "string tensors"
    if _training_mode(node, attrs, opset or 0, graph):
        return "training mode"
    return None


def _training_mode(node, attrs: dict, opset: int, graph) -> bool:
    """Dropout that may drop elements at random: in training mode (is_test=0 before opset
    7; from opset 12, a training_mode input that is not a constant false) with a ratio
    that is not a constant 0 (default 0.5). A ratio or training_mode given at run time
    counts as random. BatchNormalization in training mode is deterministic: never."""
    if node.op_type != "Dropout":
        return False
    if opset < 7:
        is_test = attrs["is_test"].i if "is_test" in attrs else 0
        return not is_test and (attrs["ratio"].f if "ratio" in attrs else 0.5) != 0
    if opset < 12:
        return False  # inference only

    def value(index, default):  # None when given at run time
        if len(node.input) <= index or not node.input[index]:
            return np.asarray(default)
        return _constant_value(graph, node.input[index])

    training, ratio = value(2, False), value(1, 0.5)
    if training is not None and not training.any():
        return False
    return ratio is None or bool(ratio.any())


def _constant_value(graph, name: str):
    """The value of ``name`` if an initializer or a Constant node of ``graph`` gives it."""
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and list(node.output) == [name]:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
    return None


def _all_graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == 5 else list(attr.graphs):
                yield from _all_graphs(sub)


def light_inputs(model) -> list:
    """The inputs ONNX's runner feeds to the light models: arange(n)/n per input."""
    inits = {i.name for i in model.graph.initializer}
    feeds = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1
                      for d in vi.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds.append((np.arange(n).reshape(shape) / n).astype(np.float32))
    return feeds


class Mismatch(AssertionError):
    """The outputs differ from ONNX's expected ones (a wrong result, not a crash)."""


def assert_similar(ref_outputs, outputs, rtol: float, atol: float, undefined=()) -> None:
    """ONNX's comparison (onnx.backend.test.runner): shapes, dtypes, then allclose;
    raises Mismatch. Outputs with ``undefined`` elements (a list of
    :class:`~dlc.frontends.onnx.undefined.Undefined`) compare the others exactly."""
    try:
        _compare(ref_outputs, outputs, rtol, atol, {u.index: u.mask for u in undefined})
    except AssertionError as err:
        raise Mismatch(str(err)) from None


def _compare(ref_outputs, outputs, rtol: float, atol: float, masks: dict) -> None:
    assert len(outputs) == len(ref_outputs), \
        f"{len(outputs)} outputs, expected {len(ref_outputs)}"
    for k, (out, ref) in enumerate(zip(outputs, ref_outputs)):
        out, ref = np.asarray(out), np.asarray(ref)
        np.testing.assert_array_equal(out.shape, ref.shape,
                                      err_msg=f"Output {k} has incorrect shape")
        np.testing.assert_equal(out.dtype, ref.dtype)
        if k in masks:
            defined = ~masks[k]
            np.testing.assert_array_equal(out[defined].astype(np.float64),
                                          ref[defined].astype(np.float64),
                                          err_msg=f"output {k} (the elements the spec defines)")
            continue
        r = rtol
        if out.dtype.name == "bfloat16":
            r = max(rtol, 2**-6)
            out, ref = out.astype(np.float32), ref.astype(np.float32)
        elif out.dtype.kind == "V" or "float8" in out.dtype.name or out.dtype.name in (
                "int4", "uint4", "float4_e2m1fn"):
            out, ref = out.astype(np.float32), ref.astype(np.float32)
        np.testing.assert_allclose(out, ref, rtol=r, atol=atol, err_msg=f"output {k}")


def run_case(case: Case) -> list[str]:
    """Compile and run a case through dlc.backend; raises on any difference. Returns what
    the spec leaves undefined in the expected outputs (empty for a fully defined case):
    those elements are not compared, the others are, exactly."""
    import dlc.backend as backend
    from dlc.frontends.onnx.undefined import undefined_elements

    model = case.load()
    rep = backend.prepare(model, "CPU")
    notes = []
    for inputs, outputs in case.data_sets:
        if inputs == "light":
            inputs, outputs = light_inputs(model), [_read_pb(outputs)]
        undefined = undefined_elements(model, list(inputs))
        got = rep.run(list(inputs))
        assert_similar(outputs, list(got), case.rtol, case.atol, undefined)
        notes += [u.describe() for u in undefined]
    return notes


def expected_pass_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "..", "tests", "onnx", "expected_pass.txt")


def read_expected_pass() -> set:
    path = expected_pass_path()
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("#")}


def _classify(case: Case):
    """(status, detail, seconds) for one case."""
    start = time.perf_counter()
    try:
        reason = scope_reason(case)
    except Exception as err:  # noqa: BLE001 - report, never stop the sweep
        return "error", f"loading: {err}", 0.0
    if reason:
        return "out of scope", reason, 0.0
    try:
        notes = run_case(case)
        if notes:
            return "undefined", "; ".join(notes), time.perf_counter() - start
        return "pass", "", time.perf_counter() - start
    except Mismatch as err:
        return "fail", "wrong result: " + _one_line(str(err)), time.perf_counter() - start
    except Exception as err:  # noqa: BLE001
        text = _one_line(f"{type(err).__name__}: {err}")
        if env.conformance_traceback():
            traceback.print_exc()
        return "fail", text, time.perf_counter() - start


def _one_line(text: str, limit: int = 200) -> str:
    """The first lines of a message, joined (an unsupported-op list names the ops on its
    second line)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " ".join(lines[:3])[:limit]


def sweep(names=None, jobs: int = 1) -> list:
    cases = all_cases()
    if names:
        cases = [c for c in cases if any(n in c.name for n in names)]
    results = []
    for case in cases:
        status, detail, seconds = _classify(case)
        results.append((case, status, detail, seconds))
        print(f"{status:12s} {seconds:6.2f}s {case.name} {detail}", flush=True)
    return results


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only cases whose name contains one of these")
    parser.add_argument("--update", action="store_true",
                        help="rewrite docs/onnx_support.md and tests/onnx/expected_pass.txt")
    args = parser.parse_args(argv)
    results = sweep(args.names)
    in_scope = [r for r in results if r[1] != "out of scope"]
    passed = [r for r in in_scope if r[1] == "pass"]
    undefined = [r for r in in_scope if r[1] == "undefined"]
    print(f"\n{len(passed)}/{len(in_scope)} in-scope cases pass "
          f"({100.0 * len(passed) / max(len(in_scope), 1):.1f}%), {len(undefined)} match where "
          f"the spec defines the result, {len(results) - len(in_scope)} out of scope")
    if args.update:
        if args.names:
            raise SystemExit("--update needs a full sweep (no names)")
        from dlc.frontends.onnx.support_doc import write_support_doc

        write_support_doc(results)
        with open(expected_pass_path(), "w") as f:
            f.write("# ONNX conformance cases that pass (those with elements the spec leaves\n"
                    "# undefined: on every other element); generated by\n"
                    "# python -m dlc.frontends.onnx.conformance --update\n")
            for case, status, _, _ in sorted(results, key=lambda r: r[0].name):
                if status in ("pass", "undefined"):
                    f.write(case.name + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
