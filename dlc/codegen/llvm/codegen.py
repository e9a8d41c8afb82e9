"""Loop IR -> LLVM IR (through llvmlite's IR builder).

Each PrimFunc becomes ``i32 name(ptr noalias arg0, ...)`` returning 0, or -1 when scratch
memory could not be allocated. Parallel loops are outlined into functions run by libgomp's
``GOMP_parallel``; vector expressions become LLVM vector instructions and masked
loads/stores; math intrinsics come from ``mathlib``. The semantics follow
dlc.tir.interpreter, including the cases C leaves undefined.
"""

from __future__ import annotations

import llvmlite.ir as ir

from dlc import dtypes
from dlc.codegen.llvm import mathlib
from dlc.codegen.llvm.types import F32, I1, I8, I32, I64, PTR, VOID, mem_type, reg_type
from dlc.errors import CodegenError, TargetError
from dlc.expr import nodes as n
from dlc.expr.functor import contains
from dlc.tir import stmt as s

STACK_LIMIT = 64 * 1024  # scratch buffers larger than this go to the heap
#: Names add_runtime_api defines in every library; kernels cannot use them.
RUNTIME_SYMBOLS = frozenset({"dlc_set_num_threads", "dlc_get_num_threads", "dlc_metadata",
                             "dlc_metadata_text", "dlc_num_threads"})
_FLOAT_FLAGS = ("contract",)


class ModuleBuilder:
    """Collects the functions of one shared library."""

    def __init__(self, name: str = "dlc"):
        self.module = ir.Module(name=name)
        self.num_threads = ir.GlobalVariable(self.module, I32, "dlc_num_threads")
        self.num_threads.initializer = I32(0)
        self.num_threads.linkage = "internal"
        self._outlined = 0

    def function(self, name: str, ret, args, **attrs) -> ir.Function:
        """Declare (once) an external or intrinsic function."""
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        fn = ir.Function(self.module, ir.FunctionType(ret, args), name)
        return fn

    def outlined_name(self, base: str) -> str:
        self._outlined += 1
        return f"{base}.parallel{self._outlined}"

    def add_primfunc(self, func: s.PrimFunc, symbol: str) -> None:
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR] * len(func.params)), symbol)
        fn.attributes.add("nounwind")
        for arg, buf in zip(fn.args, func.params):
            arg.name = _ident(buf.name)
            arg.add_attribute("noalias")
        emitter = FunctionEmitter(self, fn, outlined=False)
        for arg, buf in zip(fn.args, func.params):
            emitter.bufs[id(buf)] = arg
        emitter.emit_body(func.body)

    def add_entry(self, symbol: str, calls: list) -> None:
        """``i32 symbol(ptr inputs, ptr outputs, ptr arena, ptr weights)``: call kernels in
        order. ``calls`` holds (kernel symbol, [location]) where a location is
        ["input", k], ["output", k] (pointer k of the inputs/outputs arrays) or
        ["arena", offset], ["weights", offset] (bytes from those bases)."""
        fn = ir.Function(self.module, ir.FunctionType(I32, [PTR] * 4), symbol)
        fn.attributes.add("nounwind")
        inputs, outputs, arena, weights = fn.args
        for arg, label in zip(fn.args, ("inputs", "outputs", "arena", "weights")):
            arg.name = label
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        fail = fn.append_basic_block("fail")
        bases = {"arena": arena, "weights": weights}
        tables = {"input": inputs, "output": outputs}
        for kernel, locations in calls:
            callee = self.module.globals[kernel]
            args = []
            for kind, where in locations:
                if kind in tables:
                    slot = b.gep(tables[kind], [I64(where)], source_etype=PTR)
                    args.append(b.load(slot, typ=PTR))
                else:
                    args.append(b.gep(bases[kind], [I64(where)], inbounds=True,
                                      source_etype=I8))
            status = b.call(callee, args)
            ok = fn.append_basic_block("ok")
            b.cbranch(b.icmp_signed("!=", status, I32(0)), fail, ok)
            b.position_at_end(ok)
        b.ret(I32(0))
        ir.IRBuilder(fail).ret(I32(-1))

    def add_runtime_api(self, metadata: str) -> None:
        """Exported helpers: thread count and the embedded metadata string."""
        fn = ir.Function(self.module, ir.FunctionType(VOID, [I32]), "dlc_set_num_threads")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.store(fn.args[0], self.num_threads)
        b.ret_void()
        fn = ir.Function(self.module, ir.FunctionType(I32, []), "dlc_get_num_threads")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(b.load(self.num_threads, typ=I32))
        data = bytearray(metadata.encode("utf-8")) + b"\0"
        text = ir.GlobalVariable(self.module, ir.ArrayType(I8, len(data)), "dlc_metadata_text")
        text.initializer = ir.Constant(ir.ArrayType(I8, len(data)), data)
        text.global_constant = True
        text.linkage = "internal"
        fn = ir.Function(self.module, ir.FunctionType(PTR, []), "dlc_metadata")
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        b.ret(b.gep(text, [I32(0), I32(0)], inbounds=True, source_etype=text.value_type))

    def __str__(self) -> str:
        return str(self.module)


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in name)


def _suffix(ty) -> str:
    """LLVM intrinsic type suffix: f32, i64, v16f32, ..."""
    if isinstance(ty, ir.VectorType):
        return f"v{ty.count}{_suffix(ty.element)}"
    if isinstance(ty, ir.IntType):
        return f"i{ty.width}"
    return {"half": "f16", "float": "f32", "double": "f64"}[str(ty)]


def _lanes(value) -> int:
    return value.type.count if isinstance(value.type, ir.VectorType) else 1


class FunctionEmitter:
    """Emits the statements of one LLVM function."""

    def __init__(self, mb: ModuleBuilder, fn: ir.Function, outlined: bool):
        self.mb, self.fn, self.outlined = mb, fn, outlined
        self.entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(fn.append_basic_block("body"))
        self.env: dict = {}
        self.bufs: dict = {}
        self.status_ptr = None  # outlined functions report failures through the closure
        self._fail = None
        self.loop_depth = 0
        self.hoisted: list = []  # heap buffers allocated once in the entry block

    # -- structure ----------------------------------------------------------------------
    def emit_body(self, body: s.Stmt) -> None:
        self.stmt(body)
        if not self.b.block.is_terminated:
            self.free_hoisted(self.b)
            if self.outlined:
                self.b.ret_void()
            else:
                self.b.ret(I32(0))
        entry = ir.IRBuilder(self.entry)
        if self.hoisted:
            null = ir.Constant(PTR, None)
            failed = entry.icmp_unsigned("==", self.hoisted[0], null)
            for ptr in self.hoisted[1:]:
                failed = entry.or_(failed, entry.icmp_unsigned("==", ptr, null))
            entry.cbranch(failed, self.fail_block(), self.fn.blocks[1])
        else:
            entry.branch(self.fn.blocks[1])
        if self._fail is not None:
            b = ir.IRBuilder(self._fail)
            self.free_hoisted(b)
            if self.outlined:
                b.store(I32(-1), self.status_ptr)
                b.ret_void()
            else:
                b.ret(I32(-1))

    def fail_block(self):
        """The block that reports a failed allocation (filled in by emit_body)."""
        if self._fail is None:
            self._fail = self.fn.append_basic_block("alloc_failed")
        return self._fail

    def free_hoisted(self, b) -> None:
        free = self.mb.function("free", VOID, [PTR])
        for ptr in self.hoisted:
            b.call(free, [ptr])

    def entry_alloca(self, ty, name: str, align: int):
        """Stack memory reserved once in the entry block, as an opaque pointer."""
        with self.b.goto_block(self.entry):
            ptr = self.b.alloca(ty, name=name)
        ptr.align = align
        ptr.type = PTR  # llvmlite types allocas as typed pointers; LLVM 15+ has only ptr
        return ptr

    def intrinsic(self, name: str, ret, args):
        return self.mb.function(name, ret, args)

    def vector_gep(self, base, indices, elem):
        """A vector of element pointers ``base + indices`` (for gathers and scatters)."""
        ptrs = self.b.gep(base, [indices], source_etype=elem)
        ptrs.type = ir.VectorType(PTR, _lanes(indices))  # llvmlite types it as a scalar ptr
        return ptrs

    # -- statements ----------------------------------------------------------------------
    def stmt(self, node: s.Stmt) -> None:
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            raise CodegenError(f"LLVM codegen cannot emit {type(node).__name__}")
        self._values = {}  # a value computed for one statement is reused within it only
        method(node)

    def stmt_SeqStmt(self, node):
        for child in node.stmts:
            self.stmt(child)

    def stmt_Evaluate(self, node):
        if not isinstance(node.value, n.Const):
            self.expr(node.value)

    def stmt_LetStmt(self, node):
        self.env[node.var] = self.expr(node.value)
        self.stmt(node.body)

    def stmt_IfThenElse(self, node):
        cond = self.expr(node.cond)
        if _lanes(cond) != 1:
            raise CodegenError("vector condition in an if statement (run vectorize_loops)")
        if node.else_case is None:
            with self.b.if_then(cond, likely=node.likely or None):
                self.stmt(node.then_case)
        else:
            with self.b.if_else(cond) as (then, otherwise):
                with then:
                    self.stmt(node.then_case)
                with otherwise:
                    self.stmt(node.else_case)

    def stmt_For(self, node: s.For):
        if node.kind is s.ForKind.PARALLEL:
            return self.parallel_for(node)
        if node.kind is s.ForKind.THREAD_BINDING:
            raise TargetError(f"loop {node.var.name} is bound to {node.thread_tag}, which only "
                              "GPU targets have; the llvm (CPU) target cannot run it. Remove "
                              "the bind, or build for a cuda target")
        if node.kind not in (s.ForKind.SERIAL, s.ForKind.UNROLLED):
            raise CodegenError(f"loop {node.var.name} is {node.kind.value} at code generation "
                               "(run the vectorize/unroll passes first)")
        lo = self.expr(node.min)
        end = self.b.add(lo, self.expr(node.extent))
        self.counted_loop(node.var, lo, end, lambda: self.stmt(node.body))

    def counted_loop(self, var, lo, end, emit_body) -> None:
        pre = self.b.block
        header = self.fn.append_basic_block(f"{_ident(var.name)}.header")
        body = self.fn.append_basic_block(f"{_ident(var.name)}.body")
        done = self.fn.append_basic_block(f"{_ident(var.name)}.done")
        self.b.branch(header)
        self.b.position_at_end(header)
        phi = self.b.phi(I64, name=_ident(var.name))
        phi.add_incoming(lo, pre)
        self.b.cbranch(self.b.icmp_signed("<", phi, end), body, done)
        self.b.position_at_end(body)
        self.env[var] = phi
        self.loop_depth += 1
        emit_body()
        self.loop_depth -= 1
        nxt = self.b.add(phi, I64(1), flags=("nsw",))
        phi.add_incoming(nxt, self.b.block)
        self.b.branch(header)
        self.b.position_at_end(done)
        self.env.pop(var, None)

    def stmt_Allocate(self, node: s.Allocate):
        buf = node.buffer
        elem = mem_type(buf.dtype)
        nbytes = buf.size * dtypes.itemsize(buf.dtype)
        if nbytes <= STACK_LIMIT:
            ptr = self.entry_alloca(ir.ArrayType(elem, buf.size), _ident(buf.name), align=64)
            self.bufs[id(buf)] = ptr
            self.stmt(node.body)
            return
        alloc = self.mb.function("aligned_alloc", PTR, [I64, I64])
        free = self.mb.function("free", VOID, [PTR])
        size = (nbytes + 63) // 64 * 64
        if self.loop_depth > 0:
            # Inside a loop: allocate once per call (per thread in a parallel loop) in the
            # entry block instead of once per iteration; emit_body checks and frees it.
            with self.b.goto_block(self.entry):
                ptr = self.b.call(alloc, [I64(64), I64(size)], name=_ident(buf.name))
            self.hoisted.append(ptr)
            self.bufs[id(buf)] = ptr
            self.stmt(node.body)
            return
        ptr = self.b.call(alloc, [I64(64), I64(size)], name=_ident(buf.name))
        ok = self.fn.append_basic_block(f"{_ident(buf.name)}.ok")
        self.b.cbranch(self.b.icmp_unsigned("==", ptr, ir.Constant(PTR, None)),
                       self.fail_block(), ok)
        self.b.position_at_end(ok)
        self.bufs[id(buf)] = ptr
        self.stmt(node.body)
        self.b.call(free, [ptr])

    def stmt_BufferStore(self, node: s.BufferStore):
        buf = node.buffer
        value = self.to_memory(self.expr(node.value), buf.dtype)
        index = node.indices[0]
        base = self.bufs[id(buf)]
        elem = mem_type(buf.dtype)
        align = dtypes.itemsize(buf.dtype)
        lanes = _lanes(value)
        pred = self.expr(node.predicate) if node.predicate is not None else None
        if lanes == 1:
            ptr = self.b.gep(base, [self.expr(index)], source_etype=elem)
            if pred is None:
                self.b.store(value, ptr, align=align)
            else:
                with self.b.if_then(pred):
                    self.b.store(value, ptr, align=align)
            return
        if _is_unit_ramp(index):
            ptr = self.b.gep(base, [self.expr(index.base)], source_etype=elem)
            if pred is None:
                self.b.store(value, ptr, align=align)
            else:
                fn = self.intrinsic(f"llvm.masked.store.{_suffix(value.type)}.p0", VOID,
                                    [value.type, PTR, I32, ir.VectorType(I1, lanes)])
                self.b.call(fn, [value, ptr, I32(align), pred])
            return
        ptrs = self.vector_gep(base, self.expr(index), elem)
        mask = pred if pred is not None else _all_true(lanes)
        fn = self.intrinsic(f"llvm.masked.scatter.{_suffix(value.type)}.v{lanes}p0", VOID,
                            [value.type, ptrs.type, I32, ir.VectorType(I1, lanes)])
        self.b.call(fn, [value, ptrs, I32(align), mask])

    # -- parallel loops ------------------------------------------------------------------
    def parallel_for(self, node: s.For) -> None:
        captured_vars = _free_vars(node, self.env)
        captured_bufs = [b for b in _buffers_in(node.body) if id(b) in self.bufs]
        fields = [PTR] * len(captured_bufs) + [v.type for v in
                                               (self.env[x] for x in captured_vars)]
        fields += [I32, I64, I64, I64]  # status, loop min, loop extent, next chunk
        closure_type = ir.LiteralStructType(fields)
        name = self.mb.outlined_name(self.fn.name)
        outlined = ir.Function(self.mb.module, ir.FunctionType(VOID, [PTR]), name)
        outlined.linkage = "internal"
        outlined.attributes.add("nounwind")
        ob = ir.IRBuilder(outlined.append_basic_block("entry"))
        closure = outlined.args[0]

        def field(k):
            return ob.gep(closure, [I32(0), I32(k)], inbounds=True, source_etype=closure_type)

        status_index = len(fields) - 4
        args = [ob.load(field(k), typ=ty) for k, ty in enumerate(fields[:status_index])]
        lo = ob.load(field(status_index + 1), typ=I64)
        ext = ob.load(field(status_index + 2), typ=I64)
        nth = ob.sext(ob.call(self.mb.function("omp_get_num_threads", I32, []), []), I64)
        # Threads take chunks from a shared counter (about 4 per thread): a thread that the
        # OS does not schedule leaves its share to the others instead of stalling the loop.
        pieces = ob.mul(nth, I64(4))
        chunk = ob.sdiv(ob.sub(ob.add(ext, pieces), I64(1)), pieces)
        body_fn = self.parallel_body(node, name, captured_bufs, captured_vars,
                                     fields[:status_index])
        take = outlined.append_basic_block("take")
        work = outlined.append_basic_block("work")
        done = outlined.append_basic_block("done")
        counter = field(status_index + 3)
        status_ptr = field(status_index)
        ob.branch(take)
        ob.position_at_end(take)
        begin = ob.atomic_rmw("add", counter, chunk, "monotonic")
        ob.cbranch(ob.icmp_signed("<", begin, ext), work, done)
        ob.position_at_end(work)
        stop = ob.add(begin, chunk)
        stop = ob.select(ob.icmp_signed("<", stop, ext), stop, ext)
        ob.call(body_fn, args + [ob.add(lo, begin), ob.add(lo, stop), status_ptr])
        ob.branch(take)
        ob.position_at_end(done)
        ob.ret_void()
        # caller side
        b = self.b
        slot = self.entry_alloca(closure_type, "closure", align=8)
        values = [self.bufs[id(x)] for x in captured_bufs] + [self.env[x] for x in captured_vars]
        for k, v in enumerate(values):
            b.store(v, b.gep(slot, [I32(0), I32(k)], inbounds=True, source_etype=closure_type))
        status = b.gep(slot, [I32(0), I32(status_index)], inbounds=True,
                       source_etype=closure_type)
        b.store(I32(0), status)
        b.store(self.expr(node.min), b.gep(slot, [I32(0), I32(status_index + 1)], inbounds=True,
                                           source_etype=closure_type))
        b.store(self.expr(node.extent), b.gep(slot, [I32(0), I32(status_index + 2)],
                                              inbounds=True, source_etype=closure_type))
        b.store(I64(0), b.gep(slot, [I32(0), I32(status_index + 3)], inbounds=True,
                              source_etype=closure_type))
        gomp = self.mb.function("GOMP_parallel", VOID, [PTR, PTR, I32, I32])
        b.call(gomp, [outlined, slot, b.load(self.mb.num_threads, typ=I32), I32(0)])
        failed = b.icmp_signed("!=", b.load(status, typ=I32), I32(0))
        ok = self.fn.append_basic_block("parallel.ok")
        if self.outlined:
            raise CodegenError("nested parallel loops are not supported")
        b.cbranch(failed, self.fail_block(), ok)
        b.position_at_end(ok)

    def parallel_body(self, node: s.For, name: str, bufs: list, variables: list, types: list):
        """``void name.body(ptr noalias buf..., var..., i64 begin, i64 end, ptr status)``:
        one thread's share of a parallel loop. The buffers are distinct allocations or
        noalias arguments, and saying so lets LLVM keep values in registers across stores."""
        fn_type = ir.FunctionType(VOID, types + [I64, I64, PTR])
        body_fn = ir.Function(self.mb.module, fn_type, name + ".body")
        body_fn.linkage = "internal"
        body_fn.attributes.add("nounwind")
        for arg in body_fn.args[:len(bufs)]:
            arg.add_attribute("noalias")
        inner = FunctionEmitter(self.mb, body_fn, outlined=True)
        for arg, buf in zip(body_fn.args, bufs):
            inner.bufs[id(buf)] = arg
        for arg, var in zip(body_fn.args[len(bufs):], variables):
            inner.env[var] = arg
        begin, end, inner.status_ptr = body_fn.args[len(types):]
        inner.counted_loop(node.var, begin, end, lambda: inner.stmt(node.body))
        inner.emit_body(s.NOP)
        return body_fn

    # -- expressions ---------------------------------------------------------------------
    def expr(self, e):
        """The LLVM value of ``e``; a subexpression shared within a statement is emitted
        once (expressions are DAGs)."""
        cache = self.__dict__.setdefault("_values", {})
        hit = cache.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        value = self._emit_expr(e)
        cache[id(e)] = (e, value)
        return value

    def _emit_expr(self, e):
        method = getattr(self, "expr_" + type(e).__name__, None)
        if method is None:
            for base in type(e).__mro__:
                method = getattr(self, "expr_" + base.__name__, None)
                if method is not None:
                    break
        if method is None:
            raise CodegenError(f"LLVM codegen cannot emit expression {type(e).__name__}")
        return method(e)

    def expr_Const(self, e: n.Const):
        ty = reg_type(e.dtype)
        if e.dtype == "bool":
            return ir.Constant(I1, int(bool(e.value)))
        if dtypes.is_float(e.dtype):  # rounded once, here: llvmlite cannot pack 1e6 in half
            return ir.Constant(F32 if e.dtype == "bfloat16" else ty,
                               dtypes.round_float(e.value, e.dtype))
        return ir.Constant(ty, int(e.value))

    def expr_Var(self, e: n.Var):
        try:
            return self.env[e]
        except KeyError:
            raise CodegenError(f"variable {e.name} is used outside its loop or let") from None

    def expr_Broadcast(self, e: n.Broadcast):
        return self.broadcast(self.expr(e.value), e.lanes)

    def broadcast(self, value, lanes: int):
        if _lanes(value) == lanes:
            return value
        vty = ir.VectorType(value.type, lanes)
        if isinstance(value, ir.Constant):
            return ir.Constant(vty, [value] * lanes)
        one = self.b.insert_element(ir.Constant(vty, ir.Undefined), value, I32(0))
        return self.b.shuffle_vector(one, ir.Constant(vty, ir.Undefined),
                                     ir.Constant(ir.VectorType(I32, lanes), [0] * lanes))

    def expr_Ramp(self, e: n.Ramp):
        base, stride = e.base, e.stride
        ty = reg_type(e.dtype)
        if isinstance(base, n.Const) and isinstance(stride, n.Const):
            return ir.Constant(ir.VectorType(ty, e.lanes),
                               [ty(base.value + k * stride.value) for k in range(e.lanes)])
        vb = self.broadcast(self.expr(base), e.lanes)
        if isinstance(stride, n.Const):
            steps = ir.Constant(ir.VectorType(ty, e.lanes),
                                [ty(k * stride.value) for k in range(e.lanes)])
        else:
            ks = ir.Constant(ir.VectorType(ty, e.lanes), [ty(k) for k in range(e.lanes)])
            steps = self.b.mul(self.broadcast(self.expr(stride), e.lanes), ks)
        return self.b.add(vb, steps)

    def operands(self, e):
        a, b = self.expr(e.a), self.expr(e.b)
        la, lb = _lanes(a), _lanes(b)
        if la != lb:
            lanes = max(la, lb)
            a, b = self.broadcast(a, lanes), self.broadcast(b, lanes)
        return a, b

    def expr_BinaryOp(self, e: n.BinaryOp):
        dtype = e.a.dtype
        if isinstance(e, n.CmpOp):
            return self.compare(e, dtype)
        a, b = self.operands(e)
        if isinstance(e, (n.And, n.Or)):
            return self.b.and_(a, b) if isinstance(e, n.And) else self.b.or_(a, b)
        if dtype == "float16" and isinstance(e, (n.FloorDiv, n.FloorMod)):
            # NumPy computes these float16 operations in float32 and rounds once at the end
            wide = reg_type("float32", _lanes(a))
            value = self.float_binary(e, self.b.fpext(a, wide), self.b.fpext(b, wide))
            return self.b.fptrunc(value, a.type)
        if dtypes.is_float(dtype):
            value = self.float_binary(e, a, b)
            return _round_bf16(self, value) if dtype == "bfloat16" else value
        return self.int_binary(e, a, b, dtype)

    def float_binary(self, e, a, b):
        bd = self.b
        t = type(e)
        if t is n.Add:
            return bd.fadd(a, b, flags=_FLOAT_FLAGS)
        if t is n.Sub:
            return bd.fsub(a, b, flags=_FLOAT_FLAGS)
        if t is n.Mul:
            return bd.fmul(a, b, flags=_FLOAT_FLAGS)
        if t is n.Div:
            return bd.fdiv(a, b)
        if t is n.Mod:
            return bd.frem(a, b)
        if t in (n.Min, n.Max):
            name = "minimum" if t is n.Min else "maximum"
            fn = self.intrinsic(f"llvm.{name}.{_suffix(a.type)}", a.type, [a.type, a.type])
            return bd.call(fn, [a, b])
        if t in (n.FloorMod, n.FloorDiv):
            return self.float_floor_divmod(a, b, t is n.FloorDiv)
        raise CodegenError(f"operator {t.__name__} is not defined on floating-point values")

    def float_floor_divmod(self, a, b, want_div: bool):
        """NumPy's floor_divide / mod for floats."""
        bd = self.b
        zero = _splat(a.type, 0.0)
        mod = bd.frem(a, b)
        nonzero = bd.fcmp_unordered("!=", mod, zero)
        sign_differs = bd.xor(bd.fcmp_ordered("<", b, zero), bd.fcmp_ordered("<", mod, zero))
        adjust = bd.and_(nonzero, sign_differs)
        if not want_div:
            fixed = bd.select(adjust, bd.fadd(mod, b), mod)
            copysign = self.intrinsic(f"llvm.copysign.{_suffix(a.type)}", a.type,
                                      [a.type, a.type])
            return bd.select(bd.fcmp_ordered("==", fixed, zero), bd.call(copysign, [zero, b]),
                             fixed)
        div = bd.fdiv(bd.fsub(a, mod), b)
        div = bd.select(adjust, bd.fsub(div, _splat(a.type, 1.0)), div)
        floor = self.intrinsic(f"llvm.floor.{_suffix(a.type)}", a.type, [a.type])
        fl = bd.call(floor, [div])
        fl = bd.select(bd.fcmp_ordered(">", bd.fsub(div, fl), _splat(a.type, 0.5)),
                       bd.fadd(fl, _splat(a.type, 1.0)), fl)
        exact = bd.fdiv(a, b)
        copysign = self.intrinsic(f"llvm.copysign.{_suffix(a.type)}", a.type, [a.type, a.type])
        # a zero quotient takes the sign of a / b: -0.0 // 5.0 == -0.0, -3.0 // -5.0 == 0.0
        fl = bd.select(bd.fcmp_ordered("==", div, zero), bd.call(copysign, [zero, exact]), fl)
        return bd.select(bd.fcmp_ordered("==", b, zero), exact, fl)

    def int_binary(self, e, a, b, dtype):
        bd = self.b
        t = type(e)
        signed = dtypes.is_signed_int(dtype)
        if dtype == "bool" and t in (n.Add, n.Sub):
            if t is n.Sub:  # NumPy refuses it too
                raise CodegenError("'-' is not defined on bool values; use ^ or a cast")
            return bd.or_(a, b)  # NumPy's bool '+' (the interpreter's): logical or, not xor
        if t is n.Add:
            return bd.add(a, b)
        if t is n.Sub:
            return bd.sub(a, b)
        if t is n.Mul:
            return bd.mul(a, b)
        if t in (n.Div, n.Mod, n.FloorDiv, n.FloorMod):
            return self.int_divmod(t, a, b, e.b, signed)
        if t in (n.Min, n.Max):
            prefix = ("s" if signed else "u") + ("min" if t is n.Min else "max")
            fn = self.intrinsic(f"llvm.{prefix}.{_suffix(a.type)}", a.type, [a.type, a.type])
            return bd.call(fn, [a, b])
        if t is n.BitAnd:
            return bd.and_(a, b)
        if t is n.BitOr:
            return bd.or_(a, b)
        if t is n.BitXor:
            return bd.xor(a, b)
        if t in (n.ShiftLeft, n.ShiftRight):
            return self.shift(t is n.ShiftLeft, a, b, e.b, signed, dtype)
        raise CodegenError(f"operator {t.__name__} is not defined on {dtype} values")

    def int_divmod(self, t, a, b, b_expr, signed: bool):
        bd = self.b
        ty = a.type
        const_ok = isinstance(b_expr, n.Const) and b_expr.value != 0 and b_expr.value != -1
        if const_ok:
            safe_b = b
        else:
            is_zero = bd.icmp_signed("==", b, _splat(ty, 0))
            safe_b = bd.select(is_zero, _splat(ty, 1), b)
            if signed:  # INT_MIN / -1 traps on x86: divide by 1 and negate instead
                minus_one = bd.icmp_signed("==", safe_b, _splat(ty, -1))
                safe_b = bd.select(minus_one, _splat(ty, 1), safe_b)
        if signed:
            q, r = bd.sdiv(a, safe_b), bd.srem(a, safe_b)
        else:
            q, r = bd.udiv(a, safe_b), bd.urem(a, safe_b)
        if signed and t in (n.FloorDiv, n.FloorMod):
            nonzero = bd.icmp_signed("!=", r, _splat(ty, 0))
            differ = bd.icmp_signed("<", bd.xor(r, safe_b), _splat(ty, 0))
            adjust = bd.and_(nonzero, differ)
            if t is n.FloorDiv:
                q = bd.select(adjust, bd.sub(q, _splat(ty, 1)), q)
            else:
                r = bd.select(adjust, bd.add(r, safe_b), r)
        result = q if t in (n.Div, n.FloorDiv) else r
        if const_ok:
            return result
        if signed:
            negated = bd.sub(_splat(ty, 0), a)
            neg_result = negated if t in (n.Div, n.FloorDiv) else _splat(ty, 0)
            result = bd.select(bd.icmp_signed("==", b, _splat(ty, -1)), neg_result, result)
        return bd.select(is_zero, _splat(ty, 0), result)

    def shift(self, left: bool, a, b, b_expr, signed: bool, dtype: str):
        bd = self.b
        ty = a.type
        width = dtypes.bits(dtype)
        if isinstance(b_expr, n.Const) and 0 <= b_expr.value < width:
            if left:
                return bd.shl(a, b)
            return bd.ashr(a, b) if signed else bd.lshr(a, b)
        too_far = bd.icmp_unsigned(">=", b, _splat(ty, width))
        safe = bd.select(too_far, _splat(ty, 0), b)
        if left:
            return bd.select(too_far, _splat(ty, 0), bd.shl(a, safe))
        if signed:
            fill = bd.ashr(a, _splat(ty, width - 1))
            return bd.select(too_far, fill, bd.ashr(a, safe))
        return bd.select(too_far, _splat(ty, 0), bd.lshr(a, safe))

    def compare(self, e, dtype):
        a, b = self.operands(e)
        op = {n.EQ: "==", n.NE: "!=", n.LT: "<", n.LE: "<=", n.GT: ">", n.GE: ">="}[type(e)]
        if dtypes.is_float(dtype):
            if op == "!=":
                return self.b.fcmp_unordered(op, a, b)
            return self.b.fcmp_ordered(op, a, b)
        if dtypes.is_signed_int(dtype):
            return self.b.icmp_signed(op, a, b)
        return self.b.icmp_unsigned(op, a, b)

    def expr_Not(self, e):
        v = self.expr(e.a)
        return self.b.xor(v, _splat(v.type, 1))

    def expr_BitNot(self, e):
        v = self.expr(e.a)
        return self.b.xor(v, _splat(v.type, -1))

    def expr_Cast(self, e: n.Cast):
        return self.convert(self.expr(e.value), e.value.dtype, e.dtype)

    def convert(self, v, src: str, dst: str):
        bd = self.b
        lanes = _lanes(v)
        dty = reg_type(dst, lanes)
        if src == dst:
            return v
        if dst == "bool":
            if dtypes.is_float(src):
                return bd.fcmp_unordered("!=", v, _splat(v.type, 0.0))
            return bd.icmp_unsigned("!=", v, _splat(v.type, 0))
        if dtypes.is_float(dst):
            if src == "bool" or dtypes.is_unsigned_int(src):
                out = bd.uitofp(v, dty)
            elif dtypes.is_signed_int(src):
                out = bd.sitofp(v, dty)
            else:
                width = {"float16": 16, "bfloat16": 32, "float32": 32, "float64": 64}
                if width[src] < width[dst]:
                    out = bd.fpext(v, dty)
                elif width[src] > width[dst]:
                    out = bd.fptrunc(v, dty)
                else:
                    out = v
            return _round_bf16(self, out) if dst == "bfloat16" else out
        # integer destination
        if dtypes.is_float(src):
            if src == "float16":  # exact; LLVM 22 drops the NaN check of fptosi.sat.i16.f16
                v = bd.fpext(v, reg_type("float32", lanes))  # on AVX512-FP16 (NaN -> -32768)
            name = "fptosi" if dtypes.is_signed_int(dst) else "fptoui"
            fn = self.intrinsic(f"llvm.{name}.sat.{_suffix(dty)}.{_suffix(v.type)}", dty,
                                [v.type])
            return bd.call(fn, [v])
        sw, dw = v.type.width if lanes == 1 else v.type.element.width, dtypes.bits(dst)
        if src == "bool":
            return bd.zext(v, dty)
        if sw > dw:
            return bd.trunc(v, dty)
        if sw < dw:
            return bd.sext(v, dty) if dtypes.is_signed_int(src) else bd.zext(v, dty)
        return v

    def expr_Reinterpret(self, e: n.Reinterpret):
        v = self.expr(e.value)
        lanes = _lanes(v)
        bd = self.b
        if v.type == reg_type(e.dtype, lanes):
            return v  # same register type (uint8 <-> 8-bit storage types)
        if "bool" in (e.dtype, e.value.dtype):
            raise CodegenError(f"cannot reinterpret {e.value.dtype} as {e.dtype}: bool values "
                               "have no defined bit pattern; compare or cast instead")
        if e.dtype == e.value.dtype:
            return v
        # bfloat16 registers hold float32 values: go through the 16 bits kept in memory
        i16, i32 = reg_type("int16", lanes), reg_type("int32", lanes)
        if e.value.dtype == "bfloat16":
            v = bd.trunc(bd.lshr(bd.bitcast(v, i32), _splat(i32, 16)), i16)
            return v if e.dtype in ("int16", "uint16") else bd.bitcast(v, reg_type(e.dtype, lanes))
        if e.dtype == "bfloat16":
            if e.value.dtype not in ("int16", "uint16"):
                v = bd.bitcast(v, i16)
            wide = bd.shl(bd.zext(v, i32), _splat(i32, 16))
            return bd.bitcast(wide, reg_type("bfloat16", lanes))
        return bd.bitcast(v, reg_type(e.dtype, lanes))

    def expr_Select(self, e: n.Select):
        cond = self.expr(e.cond)
        risky = _reads_unguarded(e.true_value) or _reads_unguarded(e.false_value)
        if _lanes(cond) == 1 and risky:
            return self.branchy_select(cond, e)
        t, f = self.expr(e.true_value), self.expr(e.false_value)
        lanes = max(_lanes(cond), _lanes(t), _lanes(f))
        t, f = self.broadcast(t, lanes), self.broadcast(f, lanes)
        return self.b.select(cond, t, f)

    def branchy_select(self, cond, e):
        bd = self.b
        then_block = self.fn.append_basic_block("select.then")
        else_block = self.fn.append_basic_block("select.else")
        join = self.fn.append_basic_block("select.join")
        bd.cbranch(cond, then_block, else_block)
        outer_values = self._values  # values made in a branch do not dominate the join
        self._values = dict(outer_values)
        bd.position_at_end(then_block)
        t = self.expr(e.true_value)
        t_end = bd.block
        self._values = dict(outer_values)
        bd.position_at_end(else_block)
        f = self.expr(e.false_value)
        f_end = bd.block
        self._values = outer_values
        lanes = max(_lanes(t), _lanes(f))
        if lanes > 1:
            bd.position_at_end(t_end)
            t = self.broadcast(t, lanes)
            bd.position_at_end(f_end)
            f = self.broadcast(f, lanes)
        bd.position_at_end(t_end)
        bd.branch(join)
        bd.position_at_end(f_end)
        bd.branch(join)
        bd.position_at_end(join)
        phi = bd.phi(t.type)
        phi.add_incoming(t, t_end)
        phi.add_incoming(f, f_end)
        return phi

    def expr_Call(self, e: n.Call):
        args = [self.expr(a) for a in e.args]
        lanes = max(_lanes(a) for a in args)
        args = [self.broadcast(a, lanes) for a in args]
        dtype = e.args[0].dtype
        bd = self.b
        if e.name == "abs" and not dtypes.is_float(dtype):
            if dtypes.is_unsigned_int(dtype):
                return args[0]
            fn = self.intrinsic(f"llvm.abs.{_suffix(args[0].type)}", args[0].type,
                                [args[0].type, I1])
            return bd.call(fn, [args[0], ir.Constant(I1, 0)])
        if e.name == "isnan":
            return bd.fcmp_unordered("uno", args[0], args[0])
        if e.name == "isinf":
            fabs = self.intrinsic(f"llvm.fabs.{_suffix(args[0].type)}", args[0].type,
                                  [args[0].type])
            return bd.fcmp_ordered("==", bd.call(fabs, [args[0]]),
                                   _splat(args[0].type, float("inf")))
        math_dtype = "float32" if dtype == "bfloat16" else dtype
        out = mathlib.emit_math(bd, e.name, args, math_dtype)
        return _round_bf16(self, out) if dtype == "bfloat16" else out

    def expr_BufferLoad(self, e: n.BufferLoad):
        buf = e.buffer
        base = self.bufs.get(id(buf))
        if base is None:
            raise CodegenError(f"buffer {buf.name} is used outside its allocation")
        elem = mem_type(buf.dtype)
        align = dtypes.itemsize(buf.dtype)
        index = e.indices[0]
        pred = self.expr(e.predicate) if e.predicate is not None else None
        lanes = index.lanes
        if lanes == 1:
            ptr = self.b.gep(base, [self.expr(index)], source_etype=elem)
            if pred is None:
                raw = self.b.load(ptr, typ=elem, align=align)
            else:
                vty = ir.VectorType(elem, 1)
                fn = self.intrinsic(f"llvm.masked.load.{_suffix(vty)}.p0", vty,
                                    [PTR, I32, ir.VectorType(I1, 1), vty])
                mask = self.b.insert_element(ir.Constant(ir.VectorType(I1, 1), ir.Undefined),
                                             pred, I32(0))
                vec = self.b.call(fn, [ptr, I32(align), mask, ir.Constant(vty, None)])
                raw = self.b.extract_element(vec, I32(0))
            return self.from_memory(raw, buf.dtype)
        vty = ir.VectorType(elem, lanes)
        if _is_unit_ramp(index):
            ptr = self.b.gep(base, [self.expr(index.base)], source_etype=elem)
            if pred is None:
                raw = self.b.load(ptr, typ=vty, align=align)
            else:
                fn = self.intrinsic(f"llvm.masked.load.{_suffix(vty)}.p0", vty,
                                    [PTR, I32, ir.VectorType(I1, lanes), vty])
                raw = self.b.call(fn, [ptr, I32(align), pred, ir.Constant(vty, None)])
            return self.from_memory(raw, buf.dtype)
        ptrs = self.vector_gep(base, self.expr(index), elem)
        mask = pred if pred is not None else _all_true(lanes)
        fn = self.intrinsic(f"llvm.masked.gather.{_suffix(vty)}.v{lanes}p0", vty,
                            [ptrs.type, I32, ir.VectorType(I1, lanes), vty])
        raw = self.b.call(fn, [ptrs, I32(align), mask, ir.Constant(vty, None)])
        return self.from_memory(raw, buf.dtype)

    # -- memory conversions -------------------------------------------------------------
    def to_memory(self, v, dtype: str):
        lanes = _lanes(v)
        if dtype == "bool":
            return self.b.zext(v, mem_type("bool", lanes))
        if dtype == "bfloat16":
            bits = self.b.bitcast(v, reg_type("int32", lanes))
            bits = self.b.lshr(bits, _splat(bits.type, 16))
            return self.b.trunc(bits, mem_type("bfloat16", lanes))
        return v

    def from_memory(self, v, dtype: str):
        lanes = _lanes(v)
        if dtype == "bool":
            return self.b.icmp_unsigned("!=", v, _splat(v.type, 0))
        if dtype == "bfloat16":
            wide = self.b.shl(self.b.zext(v, reg_type("int32", lanes)),
                              _splat(reg_type("int32", lanes), 16))
            return self.b.bitcast(wide, reg_type("bfloat16", lanes))
        return v


# -- helpers --------------------------------------------------------------------------------
def _splat(ty, value):
    if isinstance(ty, ir.VectorType):
        return ir.Constant(ty, [ir.Constant(ty.element, value)] * ty.count)
    return ir.Constant(ty, value)


def _all_true(lanes: int):
    return ir.Constant(ir.VectorType(I1, lanes), [1] * lanes)


def _is_unit_ramp(index) -> bool:
    return isinstance(index, n.Ramp) and isinstance(index.stride, n.Const) \
        and index.stride.value == 1


def _reads_unguarded(e) -> bool:
    return contains(e, lambda x: isinstance(x, n.BufferLoad) and x.predicate is None)


def _round_bf16(emitter: FunctionEmitter, v):
    """Round float32 values to the nearest bfloat16 (ties to even), keeping NaNs."""
    bd = emitter.b
    lanes = _lanes(v)
    ity = reg_type("int32", lanes)
    bits = bd.bitcast(v, ity)
    lsb = bd.and_(bd.lshr(bits, _splat(ity, 16)), _splat(ity, 1))
    rounded = bd.add(bd.add(bits, _splat(ity, 0x7FFF)), lsb)
    rounded = bd.and_(rounded, _splat(ity, 0xFFFF0000 - (1 << 32)))
    out = bd.bitcast(rounded, v.type)
    is_nan = bd.fcmp_unordered("uno", v, v)
    return bd.select(is_nan, v, out)


def _free_vars(node: s.For, env: dict) -> list:
    """Variables defined outside a loop that its body reads, in a stable order."""
    seen: dict[int, n.Var] = {}

    def take(x):
        if isinstance(x, n.Var) and x in env and x is not node.var:
            seen.setdefault(id(x), x)

    from dlc.tir.functor import walk

    walk(node.body, take)
    walk(node.min, take)
    walk(node.extent, take)
    return list(seen.values())


def _buffers_in(node) -> list:
    from dlc.tir.functor import buffers_used

    return buffers_used(node)
