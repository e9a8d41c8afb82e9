"""Tensors and the operations that define them: placeholders and computes."""

from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass

from dlc import dtypes
from dlc.errors import DlcError, DlcTypeError
from dlc.expr import nodes as n
from dlc.expr.functor import post_order


@dataclass(frozen=True, eq=False, repr=False)
class IterVar(n.Var):
    """A loop axis of a compute: spatial (one per output dimension) or reduction."""

    extent: int = 0
    kind: str = "spatial"  # "spatial" | "reduce"

    def __repr__(self) -> str:
        return f"IterVar({self.name}, extent={self.extent}, {self.kind})"


class Operation:
    """What produces a tensor: a placeholder or a compute."""

    name: str
    shape: tuple
    dtype: str

    @property
    def inputs(self) -> list[Tensor]:
        return []


class PlaceholderOp(Operation):
    def __init__(self, name: str, shape: tuple, dtype: str):
        self.name, self.shape, self.dtype = name, shape, dtype

    def __repr__(self) -> str:
        return f"placeholder({self.name}, {list(self.shape)}, {self.dtype})"


class ComputeOp(Operation):
    """``name[axes] = body``, where body may be a top-level Reduce."""

    def __init__(self, name: str, axes: tuple, body: n.Expr, tag: str = "", attrs=None):
        self.name = name
        self.axes = tuple(axes)
        self.body = body
        self.shape = tuple(a.extent for a in axes)
        self.dtype = body.dtype
        self.tag = tag
        self.attrs = dict(attrs or {})

    @property
    def reduce_axes(self) -> tuple:
        return self.body.axes if isinstance(self.body, n.Reduce) else ()

    @property
    def inputs(self) -> list[Tensor]:
        found: dict[int, Tensor] = {}

        def take(e):
            if isinstance(e, n.TensorRead):
                found.setdefault(id(e.tensor), e.tensor)

        post_order(self.body, take)
        return list(found.values())

    def __repr__(self) -> str:
        axes = ", ".join(a.name for a in self.axes)
        return f"{self.name}[{axes}] = {self.body!r}"


class Tensor:
    """The output of an operation; index it (``A[i, j]``) to use it in a compute."""

    def __init__(self, op: Operation):
        self.op = op

    @property
    def name(self) -> str:
        return self.op.name

    @property
    def shape(self) -> tuple:
        return self.op.shape

    @property
    def dtype(self) -> str:
        return self.op.dtype

    @property
    def ndim(self) -> int:
        return len(self.op.shape)

    def __getitem__(self, indices) -> n.TensorRead:
        if not isinstance(indices, tuple):
            indices = (indices,)
        if len(indices) != len(self.shape):
            raise DlcError(f"tensor {self.name} has {len(self.shape)} dimensions but is "
                           f"indexed with {len(indices)} indices")
        exprs = []
        for idx in indices:
            e = n.as_expr(idx, dtypes.INDEX_DTYPE)
            if not dtypes.is_int(e.dtype):
                raise DlcTypeError(f"index of tensor {self.name} must be an integer expression, "
                                   f"got {e.dtype} ({e!r})")
            if e.dtype != dtypes.INDEX_DTYPE:
                e = n.Cast(dtypes.INDEX_DTYPE, e)
            exprs.append(e)
        return n.TensorRead(self, tuple(exprs))

    def __repr__(self) -> str:
        return f"Tensor({self.name}, {list(self.shape)}, {self.dtype})"


def _as_int(value) -> int | None:
    """``value`` as a Python int if it is an integer (not a bool, float or string)."""
    if isinstance(value, (bool, n.Expr)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_shape(shape, what: str) -> tuple:
    if _as_int(shape) is not None:
        shape = (shape,)
    try:
        dims = tuple(_as_int(s) for s in shape)
    except TypeError:
        dims = (None,)
    if None in dims:
        raise DlcError(f"{what}: shape must be a tuple of integers, got {shape!r}")
    shape = dims
    if any(s < 0 for s in shape):
        raise DlcError(f"{what}: dimensions must be non-negative, got {shape}")
    return shape


def placeholder(shape, dtype="float32", name: str = "placeholder") -> Tensor:
    """An input tensor of a fixed shape and dtype."""
    shape = _check_shape(shape, f"placeholder {name}")
    return Tensor(PlaceholderOp(name, shape, dtypes.canonical(dtype)))


def reduce_axis(extent: int, name: str = "k") -> IterVar:
    """A reduction axis ranging over ``0 .. extent-1``."""
    value = _as_int(extent)
    if value is None or value < 0:
        raise DlcError(f"reduce_axis {name}: extent must be a non-negative integer, got "
                       f"{extent!r} (an empty axis reduces to the identity)")
    return IterVar(name, dtypes.INDEX_DTYPE, 1, value, "reduce")


def compute(shape, fcompute, name: str = "compute", tag: str = "", attrs=None) -> Tensor:
    """A tensor whose element at ``(i, j, ...)`` is ``fcompute(i, j, ...)``."""
    shape = _check_shape(shape, f"compute {name}")
    names = _axis_names(fcompute, len(shape))
    axes = tuple(IterVar(nm, dtypes.INDEX_DTYPE, 1, ext, "spatial")
                 for nm, ext in zip(names, shape))
    body = fcompute(*axes)
    if isinstance(body, Tensor):
        raise DlcError(f"compute {name}: fcompute returned a tensor; index it, e.g. A[i, j]")
    body = n.as_expr(body)
    _check_reduce_placement(body, name)
    _check_free_vars(body, axes, name)
    return Tensor(ComputeOp(name, axes, body, tag, attrs))


def _axis_names(fcompute, ndim: int) -> list[str]:
    try:
        params = list(inspect.signature(fcompute).parameters.values())
    except (TypeError, ValueError):
        params = []
    if any(p.kind == p.VAR_POSITIONAL for p in params) or len(params) != ndim:
        if params and not any(p.kind == p.VAR_POSITIONAL for p in params):
            raise DlcError(f"fcompute takes {len(params)} arguments but the shape has {ndim} "
                           "dimensions")
        return [f"i{d}" for d in range(ndim)]
    return [p.name for p in params]


def _check_reduce_placement(body: n.Expr, name: str) -> None:
    if isinstance(body, n.Reduce):
        inner = body.source
        if body.condition is not None:
            _forbid_reduce(body.condition, name)
        _forbid_reduce(inner, name)
        return
    _forbid_reduce(body, name)


def _check_free_vars(body: n.Expr, axes: tuple, name: str) -> None:
    """Every variable of the body is an axis of this compute or of its reduction."""
    bound = set(axes)
    if isinstance(body, n.Reduce):
        bound.update(body.axes)
    stray: list = []

    def take(x):
        if isinstance(x, n.Var) and x not in bound and x not in stray:
            stray.append(x)

    post_order(body, take)
    for var in stray:
        if getattr(var, "kind", None) == "reduce":
            raise DlcError(f"compute {name}: reduction axis {var.name} is used outside a "
                           f"reduction over it; write te.sum(..., axis={var.name}) (or max, "
                           "min, prod) as the whole body")
        raise DlcError(f"compute {name}: variable {var.name} is not an axis of this compute; "
                       "index tensors only with the compute's own axes (the fcompute "
                       "arguments) and its reduction axes")


def _forbid_reduce(e, name):
    def take(x):
        if isinstance(x, n.Reduce):
            raise DlcError(f"compute {name}: a reduction must be the whole body of a compute "
                           "(e.g. te.sum(...)); put further arithmetic in another compute")

    post_order(e, take)
