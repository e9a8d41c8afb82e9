"""Conversions to and from the storage-only ML dtypes (dlc/ops/small_floats.py): compiled
code (through Cast), the NumPy twin used for constant folding, ml_dtypes and ONNX's own
helpers must agree bit for bit; IsNaN/IsInf on float8 inputs."""

import ml_dtypes
import numpy as np
import pytest
from helpers import run_interpreter, run_native
from onnx import numpy_helper

import dlc
from dlc import dtypes, te
from dlc.graph import GraphBuilder
from dlc.ops import small_floats as sf

FLOATS = list(sf.FLOAT_FORMATS)
FLOAT8 = ["float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"]
NO_SPECIALS = ["float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"]


def np_dt(name):
    return getattr(ml_dtypes, name) if hasattr(ml_dtypes, name) else np.dtype(name)


def compile_casts(x, targets):
    """One compiled model casting input ``x`` to each (dtype, attrs) of ``targets``."""
    g = GraphBuilder("casts")
    s = g.input("x", x.shape, x.dtype)
    g.output(*[g.op("Cast", s, to=dst, **attrs) for dst, attrs in targets])
    return dlc.compile(g.build()).run(x)


def codes(dtype):
    """Every canonical byte of ``dtype`` (bits beyond its width clear)."""
    return np.arange(1 << sf.width(dtype), dtype=np.uint8).view(np_dt(dtype))


def float32_sweep():
    """Every sign, exponent and top 7 mantissa bits, with low bits that make exact ties,
    neighbours of ties and sticky bits for every small float's rounding position."""
    high = np.arange(1 << 16, dtype=np.uint32) << 16
    low = np.array([0, 1, 0x4000, 0x7FFF, 0x8000, 0x8001, 0xC000, 0xFFFF], np.uint32)
    return (high[:, None] | low[None, :]).ravel().view(np.float32)


def same_bits(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, what
    bad = np.nonzero(got.view(np.uint8) != want.view(np.uint8))[0]
    assert bad.size == 0, f"{what}: {bad.size} differ, first at {bad[:5]}: " \
                          f"{got.view(np.uint8)[bad[:5]]} != {want.view(np.uint8)[bad[:5]]}"


# -- decoding ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", sf.SMALL_FLOATS)
def test_decode_every_code(dtype):
    x = codes(dtype)
    want = x.astype(np.float32)  # NaNs included: ml_dtypes' payloads and signs
    (got,) = compile_casts(x, [("float32", {})])
    same_bits(got.view(np.uint32), want.view(np.uint32), "compiled")
    same_bits(sf.decode_array(x).view(np.uint32), want.view(np.uint32), "reference")


@pytest.mark.parametrize("dtype", sf.SMALL_FLOATS)
def test_decode_to_other_dtypes(dtype):
    x = codes(dtype)
    wide = x.astype(np.float32)
    targets = ["float16", "bfloat16", "float64", "int8", "uint8", "int32", "int64", "bool"]
    outs = compile_casts(x, [(t, {}) for t in targets])
    for t, got in zip(targets, outs):
        want = dtypes.astype(wide, t)  # exact float32, then dlc's conversion from float32
        same_bits(got, want, t)
        same_bits(sf.convert_array(x, t), want, f"{t} reference")
        if t in ("float16", "bfloat16", "float64"):
            same_bits(got, x.astype(np_dt(t)), f"{t} as ml_dtypes converts")


def test_reading_ignores_bits_beyond_the_width():
    raw = np.array([0xF1, 0x31, 0xFE, 0x8A], np.uint8)
    for dtype, want in [("int4", [1, 1, -2, -6]), ("uint4", [1, 1, 14, 10]),
                        ("int2", [1, 1, -2, -2]), ("uint2", [1, 1, 2, 2]),
                        ("float4_e2m1fn", [0.5, 0.5, -4.0, -1.0])]:
        x = raw.view(np_dt(dtype))
        (got,) = compile_casts(x, [("float32", {})])
        np.testing.assert_array_equal(got, want, err_msg=dtype)
        np.testing.assert_array_equal(sf.convert_array(x, "float32"), want, err_msg=dtype)


# -- encoding ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOATS)
def test_encode_float32_sweep(dtype):
    """Round to nearest even, subnormals, overflow, infinities, NaN and -0, with and
    without saturate, against ml_dtypes (ONNX's reference: astype, or saturate_cast)."""
    x = float32_sweep()
    outs = compile_casts(x, [(dtype, {"saturate": 1}), (dtype, {"saturate": 0})])
    keep = ~np.isnan(x) if dtype in NO_SPECIALS else slice(None)
    with np.errstate(all="ignore"):
        for sat, got in zip((1, 0), outs):
            ref = sf.convert_array(x, dtype, saturate=bool(sat))
            same_bits(got, ref, f"compiled vs reference, saturate={sat}")
            if sat and dtype in FLOAT8:
                want = numpy_helper.saturate_cast(x, np_dt(dtype))
            else:
                want = x.astype(np_dt(dtype))
            same_bits(got[keep], want[keep], f"compiled vs ml_dtypes, saturate={sat}")


@pytest.mark.parametrize("dtype", FLOATS)
def test_encode_special_values(dtype):
    f = sf.FLOAT_FORMATS[dtype]
    top = sf.max_finite(dtype)
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 4 * top, -4 * top], np.float32)
    sat, nosat = compile_casts(x, [(dtype, {"saturate": 1}), (dtype, {"saturate": 0})])
    sat, nosat = sat.astype(np.float32), nosat.astype(np.float32)
    signed_zero = f.special != "fnuz"
    assert np.signbit(sat[5]) == signed_zero and sat[4] == 0 and not np.signbit(sat[4])
    if f.special == "none":  # no NaN, no infinity: NaN is +0, the rest saturates
        for got in (sat, nosat):
            np.testing.assert_array_equal(got, [0, 0, top, -top, 0, 0, top, -top])
            assert not np.signbit(got[:2]).any()
        return
    np.testing.assert_array_equal(sat[2:4], [top, -top])
    np.testing.assert_array_equal(sat[6:], [top, -top])
    assert np.isnan(sat[:2]).all() and np.isnan(nosat[:2]).all()
    if f.special == "ieee":
        np.testing.assert_array_equal(nosat[2:4], [np.inf, -np.inf])
        np.testing.assert_array_equal(nosat[6:], [np.inf, -np.inf])
    else:
        assert np.isnan(nosat[[2, 3, 6, 7]]).all()


def test_encode_rounds_ties_to_even():
    # e4m3fn: 1 + k/8; halfway points go to the even mantissa; 464 (between 448 and the
    # NaN pattern) is a tie that stays at 448, just above it overflows
    x = np.array([1.0625, 1.1875, 1.3125, 464.0, 465.0, 2.0**-10, 3 * 2.0**-10,
                  2.0**-10 + 2.0**-20], np.float32)
    sat, nosat = compile_casts(x, [("float8_e4m3fn", {"saturate": 1}),
                                   ("float8_e4m3fn", {"saturate": 0})])
    np.testing.assert_array_equal(sat.astype(np.float32),
                                  [1.0, 1.25, 1.25, 448, 448, 0, 2.0**-8, 2.0**-9])
    assert np.isnan(nosat.astype(np.float32)[4])
    np.testing.assert_array_equal(nosat.astype(np.float32)[:4], [1.0, 1.25, 1.25, 448])


OTHER_SOURCES = ["float16", "bfloat16", "float64", "int8", "uint8", "int16", "int32", "int64",
                 "uint64", "bool"]


@pytest.mark.parametrize("src", OTHER_SOURCES)
def test_encode_from_other_dtypes(src):
    """Through float32, as ml_dtypes converts (saturate=0 is its astype). Every pair
    through the NumPy twin, one target per source compiled (the same code)."""
    rng = np.random.default_rng(0)
    if src == "bool":
        x = np.array([True, False, True])
    elif src in ("float16", "bfloat16", "float64"):
        x = rng.standard_normal(4000) * np.exp2(rng.uniform(-20, 15, 4000))
        x = np.concatenate([x, [np.inf, -np.inf, 0.0, -0.0]]).astype(np_dt(src))
    else:
        info = np.iinfo(src)
        x = np.concatenate([np.arange(-600, 600).clip(info.min, info.max).astype(src),
                            np.array([info.min, info.max], src)])
    for dtype in FLOATS:
        with np.errstate(all="ignore"):
            want = x.astype(np.float32).astype(np_dt(dtype))
        same_bits(sf.convert_array(x, dtype, saturate=False), want, f"{dtype} reference")
    dtype = FLOATS[OTHER_SOURCES.index(src) % len(FLOATS)]
    (got,) = compile_casts(x, [(dtype, {"saturate": 0})])
    same_bits(got, sf.convert_array(x, dtype, saturate=False), f"{dtype} compiled")


E8M0_SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-127, 1.5 * 2.0**-127,
                          2.0**-130, 2.0**-149, 3e38, 0.75 * 2.0**-127, -6.0], np.float32)
E8M0_WANT = {  # (saturate, round_mode) -> codes of E8M0_SPECIALS (the sign is ignored)
    (1, "up"): [0, 0, 254, 254, 255, 0, 1, 0, 0, 254, 0, 130],
    (1, "down"): [0, 0, 254, 254, 255, 0, 0, 0, 0, 254, 0, 129],
    (1, "nearest"): [0, 0, 254, 254, 255, 0, 1, 0, 0, 254, 0, 130],
    (0, "up"): [255, 255, 255, 255, 255, 0, 1, 255, 255, 255, 0, 130],
    (0, "down"): [255, 255, 255, 255, 255, 0, 0, 255, 255, 254, 255, 129],
    (0, "nearest"): [255, 255, 255, 255, 255, 0, 1, 255, 255, 255, 0, 130],
}


def test_encode_e8m0_against_onnx_for_normal_floats():
    x = float32_sweep()
    exponent = (x.view(np.uint32) >> 23) & 0xFF
    normal = (exponent > 0) & (exponent < 255)
    modes = list(E8M0_WANT)
    outs = compile_casts(x, [("float8_e8m0fnu", {"saturate": s, "round_mode": m})
                             for s, m in modes])
    for (sat, mode), got in zip(modes, outs):
        ref = sf.convert_array(x, "float8_e8m0fnu", bool(sat), mode)
        same_bits(got, ref, f"compiled vs reference {sat} {mode}")
        want = numpy_helper.to_float8e8m0(x, bool(sat), mode)
        same_bits(got[normal], want[normal], f"compiled vs onnx {sat} {mode}")


def test_encode_e8m0_special_values():
    """Zero, infinities, float32 subnormals and overflow follow the spec's table: the
    extreme value with saturate, else NaN; finite values round by round_mode."""
    modes = list(E8M0_WANT)
    outs = compile_casts(E8M0_SPECIALS, [("float8_e8m0fnu", {"saturate": s, "round_mode": m})
                                         for s, m in modes])
    for key, got in zip(modes, outs):
        np.testing.assert_array_equal(got.view(np.uint8), E8M0_WANT[key], err_msg=str(key))
        np.testing.assert_array_equal(
            sf.convert_array(E8M0_SPECIALS, "float8_e8m0fnu", *key).view(np.uint8),
            E8M0_WANT[key], err_msg=str(key))


# -- sub-byte integers -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", sf.SMALL_INTS)
def test_small_int_storage_and_range(dtype):
    lo, hi = sf.int_range(dtype)
    info = ml_dtypes.iinfo(np_dt(dtype))
    assert (lo, hi) == (info.min, info.max)
    values = np.arange(lo, hi + 1)
    stored = values.astype(np_dt(dtype)).view(np.uint8)  # ml_dtypes keeps the low bits
    np.testing.assert_array_equal(stored, values & ((1 << sf.width(dtype)) - 1))


@pytest.mark.parametrize("dtype", sf.SMALL_INTS)
def test_small_ints_from_integers_wrap(dtype):
    """Integers keep their low bits (ONNX: discard the higher bits and reinterpret), worked
    out here with shifts, not by asking ml_dtypes."""
    bits, signed = sf.INT_FORMATS[dtype]
    srcs = {"int8": np.arange(-128, 128), "uint8": np.arange(256),
            "int32": np.arange(-300, 300), "int64": np.array([-2**63, -2**40 - 3, 2**62 + 9]),
            "uint64": np.array([0, 2**64 - 1, 2**63 + 6], np.uint64), "bool": np.array([0, 1])}
    for src, values in srcs.items():
        x = values.astype(src)
        low = np.array([int(v) & ((1 << bits) - 1) for v in values.tolist()])
        want = low - ((low >> (bits - 1)) << bits) if signed else low
        (got,) = compile_casts(x, [(dtype, {})])
        np.testing.assert_array_equal(got.astype(np.int64), want, err_msg=f"{src} compiled")
        np.testing.assert_array_equal(sf.convert_array(x, dtype).astype(np.int64), want,
                                      err_msg=f"{src} reference")


#: Float to sub-byte integer, dlc's choice where ONNX leaves it undefined (out of range):
#: truncate toward zero, saturate to the type's range, NaN -> 0. Worked out by hand.
FLOAT_INPUTS = [-9.0, -8.5, -8.0, -2.5, -0.9, -0.0, 0.0, 0.9, 1.5, 7.9, 8.0, 15.5, 16.0, 17.0,
                3e9, -3e9, np.inf, -np.inf, np.nan]
FLOAT_TO_SMALL_INT = {
    "int4": [-8, -8, -8, -2, 0, 0, 0, 0, 1, 7, 7, 7, 7, 7, 7, -8, 7, -8, 0],
    "uint4": [0, 0, 0, 0, 0, 0, 0, 0, 1, 7, 8, 15, 15, 15, 15, 0, 15, 0, 0],
    "int2": [-2, -2, -2, -2, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, -2, 1, -2, 0],
    "uint2": [0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 3, 3, 3, 3, 0, 3, 0, 0],
}


@pytest.mark.parametrize("src", ["float32", "float64", "float16", "bfloat16"])
def test_small_ints_from_floats_saturate(src):
    with np.errstate(over="ignore"):
        x = np.array(FLOAT_INPUTS, np.float64).astype(np_dt(src))  # 3e9 is inf in float16
    outs = compile_casts(x, [(t, {}) for t in FLOAT_TO_SMALL_INT])
    for (t, want), got in zip(FLOAT_TO_SMALL_INT.items(), outs):
        np.testing.assert_array_equal(got.astype(np.int32), want, err_msg=f"{src} -> {t}")
        np.testing.assert_array_equal(sf.convert_array(x, t).astype(np.int32), want,
                                      err_msg=f"{src} -> {t} reference")


def test_small_ints_from_small_floats_saturate():
    """float8 sources follow the same rule (448 is float8_e4m3fn's largest value)."""
    values = [-9.0, -2.5, 1.5, 8.0, 16.0, 448.0, np.nan]
    x = np.array(values, np.float32).astype(np_dt("float8_e4m3fn"))
    want = {"int4": [-8, -2, 1, 7, 7, 7, 0], "uint4": [0, 0, 1, 8, 15, 15, 0],
            "int2": [-2, -2, 1, 1, 1, 1, 0], "uint2": [0, 0, 1, 3, 3, 3, 0]}
    outs = compile_casts(x, [(t, {}) for t in want])
    for (t, w), got in zip(want.items(), outs):
        np.testing.assert_array_equal(got.astype(np.int32), w, err_msg=t)
        np.testing.assert_array_equal(sf.convert_array(x, t).astype(np.int32), w, err_msg=t)


@pytest.mark.parametrize("dtype", sf.SMALL_INTS)
def test_small_ints_to_other_dtypes(dtype):
    x = codes(dtype)
    targets = ["float32", "float16", "bfloat16", "float64", "int8", "uint8", "int16", "uint64",
               "bool"]
    outs = compile_casts(x, [(t, {}) for t in targets])
    for t, got in zip(targets, outs):
        want = x.astype(np_dt(t))
        np.testing.assert_array_equal(got, want, err_msg=t)
        np.testing.assert_array_equal(sf.convert_array(x, t), want, err_msg=t)


# -- between two storage dtypes ----------------------------------------------------------
STORAGE = sf.SMALL_FLOATS + sf.SMALL_INTS


@pytest.mark.parametrize("src", STORAGE)
def test_between_storage_dtypes(src):
    """Exactly through float32 (to integers: a small float truncates and saturates, a small
    integer keeps its low bits). Every pair through the NumPy twin; two targets per source
    compiled (the same code)."""
    x = codes(src)
    wide = x.astype(np.float32)
    targets = [t for t in STORAGE if t != src]
    for t in targets:
        if t in sf.SMALL_INTS and src in sf.SMALL_INTS:
            want = sf.convert_array(dtypes.astype(wide, "int32"), t)
        else:
            want = sf.convert_array(wide, t, saturate=True)
        same_bits(sf.convert_array(x, t, saturate=True), want, f"{src} -> {t}")
    k = STORAGE.index(src)
    picked = [targets[k % len(targets)], targets[(k + 5) % len(targets)]]
    outs = compile_casts(x, [(t, {"saturate": 1}) for t in picked])
    for t, got in zip(picked, outs):
        same_bits(got, sf.convert_array(x, t, saturate=True), f"{src} -> {t} compiled")


def test_tensor_expressions_on_the_interpreter_and_native():
    """The conversions as te expressions, through the loop-IR interpreter and LLVM."""
    x = float32_sweep()[::499].copy()
    a = te.placeholder(x.shape, "float32", name="a")

    def cast_to(dtype):
        return lambda i: sf.convert_expr(a[i], dtype, False)

    outs = [te.compute(x.shape, cast_to(t), name=f"o{k}")
            for k, t in enumerate(["float8_e4m3fn", "float8_e5m2fnuz", "float4_e2m1fn",
                                   "int4"])]
    back = te.compute(x.shape, lambda i: sf.to_float32_expr(outs[1][i]), name="back")
    sch = dlc.Schedule([a, *outs, back])
    want = [sf.convert_array(x, o.dtype, saturate=False) for o in outs]
    want.append(sf.decode_array(want[1]))
    for how, run in (("interpreter", run_interpreter), ("native", run_native)):
        for k, (got, w) in enumerate(zip(run(sch, [x]), want)):
            same_bits(got, w, f"{how}, output {k}")


# -- IsNaN / IsInf on float8 -------------------------------------------------------------
@pytest.mark.parametrize("dtype", FLOAT8)
def test_isnan_isinf_on_float8(dtype):
    x = codes(dtype)
    wide = x.astype(np.float32)
    g = GraphBuilder("nan")
    s = g.input("x", x.shape, dtype)
    g.output(g.op("IsNaN", s), g.op("IsInf", s), g.op("IsInf", s, detect_negative=0),
             g.op("IsInf", s, detect_positive=0))
    nan, inf, pos, neg = dlc.compile(g.build()).run(x)
    np.testing.assert_array_equal(nan, np.isnan(wide))
    np.testing.assert_array_equal(inf, np.isinf(wide))
    np.testing.assert_array_equal(pos, np.isposinf(wide))
    np.testing.assert_array_equal(neg, np.isneginf(wide))
    assert inf.any() == (dtype == "float8_e5m2") and nan.any()


def test_isnan_rejects_other_storage_dtypes():
    g = GraphBuilder("bad")
    for dtype in ("float4_e2m1fn", "int4", "float8_e8m0fnu"):
        with pytest.raises(dlc.ModelError, match="supported"):
            g.op("IsNaN", g.input(f"x_{dtype}", (2,), dtype))
