"""The operator registry. Each op definition gives, for one operator (ONNX semantics,
with attribute defaults applied): attribute checks, type and shape inference, a NumPy
reference and a tensor-expression compute. Ops know nothing of ONNX protobufs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlc import dtypes
from dlc.errors import DlcError, ModelError, UnsupportedOpError
from dlc.target import Target

# Fusion patterns (what a graph compiler may do with the op), as in TVM's op patterns.
ELEMWISE = "elemwise"      # out[i] = f(in[i]) for same-shaped inputs
BROADCAST = "broadcast"    # elementwise with NumPy broadcasting
INJECTIVE = "injective"    # each output element reads a few input elements (reshape, ...)
REDUCE = "reduce"          # reductions over axes
COMPLEX = "complex"        # conv, matmul: an elementwise epilogue can be fused into it
OPAQUE = "opaque"          # not fusable

REQUIRED = object()


class NeedsValueError(Exception):
    """Raised by ``infer`` when an input's value (not only its type) is needed and is not
    known at compile time; the compiler then specializes on it at run time."""

    def __init__(self, input_index: int):
        super().__init__(f"value of input {input_index} is needed")
        self.input_index = input_index


@dataclass
class OpContext:
    """Everything an op definition sees about one node."""

    op: str
    name: str
    attrs: dict
    in_types: list          # TensorType or None (omitted optional input)
    in_values: list         # np.ndarray when the input is a known constant, else None
    out_types: list = field(default_factory=list)
    #: How control-flow ops run a body: ``run_body(graph, arrays) -> outputs``. The
    #: compiler sets it (bodies compiled with dlc); None runs them with NumPy references.
    run_body: Callable | None = None
    #: Values of enclosing graphs that a control-flow body may read by name.
    outer_env: dict | None = None
    #: The target the compiler lowers for (None: the host CPU); computes whose tensor
    #: layout follows the vector registers read them through ``hardware``.
    target: Target | None = None

    def error(self, message: str) -> ModelError:
        where = f" {self.name!r}" if self.name else ""
        return ModelError(f"{self.op} node{where}: {message}")

    def value(self, index: int) -> np.ndarray:
        """The compile-time value of input ``index`` (raises NeedsValueError if unknown)."""
        if index >= len(self.in_values) or self.in_types[index] is None:
            raise self.error(f"input {index} is required")
        v = self.in_values[index]
        if v is None:
            raise NeedsValueError(index)
        return v

    @property
    def hardware(self):
        """The target's CpuInfo (dlc.hardware): vector width, registers, caches."""
        return Target.parse(self.target).hardware

    def has_input(self, index: int) -> bool:
        return index < len(self.in_types) and self.in_types[index] is not None

    def type(self, index: int):
        if not self.has_input(index):
            raise self.error(f"input {index} is required")
        return self.in_types[index]


class OpDef:
    """Base class of operator definitions; subclasses override what they need."""

    name: str = ""
    pattern: str = OPAQUE
    #: attribute name -> default value (REQUIRED for mandatory attributes)
    attrs: dict = {}
    #: (min, max) number of inputs; max None for variadic
    num_inputs: tuple = (1, 1)
    num_outputs: tuple = (1, 1)
    #: input indices whose values must be known to infer the output types
    value_inputs: tuple = ()
    #: evaluated with NumPy at run time (the output shape depends on input values)
    host: bool = False
    #: name of the default schedule in dlc.schedules
    schedule: str = "generic"
    #: False for ops whose outputs depend only on input *types* (Shape, Size): they fold
    #: at compile time whenever their inputs are typed
    reads_input_values: bool = True

    def normalize(self, ctx: OpContext) -> dict:
        """Check attribute names and kinds (from the defaults), fill in defaults."""
        out = {}
        for key, value in ctx.attrs.items():
            if key not in self.attrs:
                raise ctx.error(f"unknown attribute {key!r}; known: "
                                f"{', '.join(sorted(self.attrs)) or 'none'}")
            _check_attr_kind(ctx, key, value, self.attrs[key])
            out[key] = value
        for key, default in self.attrs.items():
            if key not in out:
                if default is REQUIRED:
                    raise ctx.error(f"attribute {key!r} is required")
                out[key] = default
        return out

    def node_pattern(self, attrs: dict) -> str:
        """The fusion pattern of one node with attributes ``attrs`` (as written on the
        node, defaults not filled in): ``pattern``, unless an attribute changes what the
        node computes (BatchNormalization in training mode reduces)."""
        return self.pattern

    def infer(self, ctx: OpContext) -> list:
        """Output TensorTypes."""
        raise NotImplementedError(f"{self.name}.infer")

    def reference(self, ctx: OpContext, *inputs):
        """NumPy implementation: list of output arrays."""
        raise NotImplementedError(f"{self.name}.reference")

    def compute(self, ctx: OpContext, *inputs):
        """Tensor-expression implementation: list of te.Tensors (inputs are te.Tensors,
        or None for omitted optional inputs)."""
        raise NotImplementedError(f"{self.name}.compute")


OPS: dict[str, OpDef] = {}


def register(cls):
    """Class decorator: register an OpDef subclass under ``cls.name``."""
    instance = cls()
    if not instance.name:
        raise TypeError(f"{cls.__name__} has no name")
    if instance.name in OPS:
        raise TypeError(f"operator {instance.name} is registered twice")
    OPS[instance.name] = instance
    return cls


def get(name: str) -> OpDef:
    _load_all()
    try:
        return OPS[name]
    except KeyError:
        raise UnsupportedOpError(f"operator {name!r} is not supported") from None


def is_registered(name: str) -> bool:
    _load_all()
    return name in OPS


_loaded = False


def _load_all() -> None:
    """Import the package, which registers every op family; the flag is set once the
    import is complete (see dlc.frontends.onnx.registry._load_all)."""
    global _loaded
    if not _loaded:
        import dlc.ops  # noqa: F401
        _loaded = True


MAX_TENSOR_BYTES = 1 << 40  # larger tensors are rejected as malformed


def make_context(op: OpDef, name: str, attrs: dict, in_types, in_values) -> OpContext:
    ctx = OpContext(op.name, name, dict(attrs), list(in_types), list(in_values))
    lo, hi = op.num_inputs
    count = len(in_types)
    while count and in_types[count - 1] is None:
        count -= 1
    if count < lo or (hi is not None and len(in_types) > hi):
        expected = f"{lo}" if lo == hi else f"{lo} to {hi if hi is not None else 'any'}"
        raise ctx.error(f"takes {expected} inputs, got {count} (omitted optional inputs not "
                        "counted)" if count != len(in_types) else
                        f"takes {expected} inputs, got {count}")
    ctx.attrs = op.normalize(ctx)
    return ctx


def _check_attr_kind(ctx: OpContext, key: str, value, default) -> None:
    if default is REQUIRED or default is None:
        return
    if isinstance(default, bool) or isinstance(default, int):
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) or \
            isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float, np.integer, np.floating))
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple, np.ndarray))
    else:
        ok = True
    if not ok:
        raise ctx.error(f"attribute {key!r} must be a {type(default).__name__}, got "
                        f"{type(value).__name__} {value!r}")


def infer_node(op: OpDef, ctx: OpContext) -> list:
    """Output types of a node; malformed attributes or inputs raise ModelError."""
    try:
        types = op.infer(ctx)
    except (DlcError, NeedsValueError):
        raise
    except (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError,
            AttributeError) as err:
        raise ctx.error(f"invalid attributes or inputs ({type(err).__name__}: {err})") \
            from err
    lo, hi = op.num_outputs
    if not lo <= len(types) <= (hi if hi is not None else len(types)):
        raise ctx.error(f"inferred {len(types)} outputs")
    for t in types:
        if any(d < 0 for d in t.shape) or t.nbytes > MAX_TENSOR_BYTES:
            raise ctx.error(f"output type {t} is invalid or too large")
    ctx.out_types = types
    return types


def check_dtype(ctx: OpContext, index: int, allowed, what: str = "input") -> str:
    """The dtype of input ``index``, checked against ``allowed``."""
    dtype = ctx.type(index).dtype
    if dtype not in allowed:
        raise ctx.error(f"{what} {index} has dtype {dtype}; supported: {', '.join(allowed)}")
    return dtype


FLOATS = ("float16", "bfloat16", "float32", "float64")
INTS = dtypes.SIGNED_DTYPES + dtypes.UNSIGNED_DTYPES
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)


def run_reference(op: OpDef, ctx: OpContext, arrays) -> list:
    """Evaluate an op with NumPy; failures on inputs it accepted are internal errors."""
    from dlc.errors import InternalError

    try:
        with np.errstate(all="ignore"):
            return op.reference(ctx, *arrays)
    except DlcError:
        raise
    except MemoryError:
        raise ctx.error("not enough memory to evaluate it") from None
    except Exception as err:  # noqa: BLE001 - converted, with the cause attached
        raise InternalError(f"{ctx.op} node {ctx.name!r}: NumPy reference failed: "
                            f"{type(err).__name__}: {err}") from err
