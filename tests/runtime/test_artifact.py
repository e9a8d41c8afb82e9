"""The .dlc artifact: round trip, and every way a file can be wrong (corrupted, truncated,
another format version or kind, code for a CPU this one is not, not a file at all). Each is
an ArtifactError with a one-line message naming the problem, raised before any native code
is loaded; a failed save leaves an existing file untouched."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import numpy as np
import pytest
from artifact_util import refused, rewrite, write
from tiny_models import AWKWARD_NAMES, constant_value, constants_model, small_model, small_reference

import dlc
from dlc.errors import ArtifactError
from dlc.runtime import artifact, cpu_features, loader
from dlc.runtime.artifact import FORMAT_VERSION, read_artifact


def _layout(data: bytes) -> dict:
    """Offsets of the parts of an artifact: header fields, manifest, sections."""
    length = struct.unpack_from("<Q", data, 16)[0]
    manifest = json.loads(data[56:56 + length])
    base = (56 + length + 63) // 64 * 64
    return {"manifest": (56, 56 + length), "base": base, "sections": {
        s["name"]: (base + s["offset"], base + s["offset"] + s["size"])
        for s in manifest["sections"]}}


# -- round trip ---------------------------------------------------------------------------
def test_round_trip(compiled, tmp_path):
    path = tmp_path / "small.dlc"
    size = compiled.save(path)
    assert size == os.path.getsize(path)
    model = dlc.runtime.load(path)
    x = np.random.default_rng(0).standard_normal((2, 12)).astype(np.float32)
    got = model.run(x)
    for a, b, want in zip(got, compiled.run(x), small_reference(x)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    assert model.input_names == ["x"]
    assert model.output_names == ["y", "x_copy", "k"]
    assert model(x=x)[0].shape == (2, 8)  # keywords, and __call__


def test_manifest_contents(saved, tmp_path):
    manifest, sections = read_artifact(write(tmp_path, saved))
    assert manifest["kind"] == loader.ARTIFACT_KIND
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["dlc_version"] == dlc.__version__
    assert manifest["inputs"] == [{"name": "x", "shape": [2, 12], "dtype": "float32"}]
    assert [o["name"] for o in manifest["outputs"]] == ["y", "x_copy", "k"]
    target = manifest["target"]
    assert target["string"].startswith("llvm") and target["cpu"]
    assert set(target["required_features"]) >= {"sse4_2"} or target["cpu"] == "x86-64"
    plan = manifest["plan"]
    assert plan["entry"] and plan["arena_bytes"] >= 0 and "memory" in plan
    assert manifest["kernels"] and all(isinstance(k, str) for k in manifest["kernels"])
    assert set(sections) == {"library", "weights", "constants"}
    assert sections["library"].startswith(b"\x7fELF")
    for entry in manifest["sections"]:
        assert entry["offset"] % 64 == 0 and len(entry["sha256"]) == 64
    assert manifest["constants"] == [{"name": "k", "offset": 0, "shape": [2, 3],
                                      "dtype": "int64"}]
    needs = manifest["library_metadata"]["entries"][plan["entry"]]
    assert 0 < needs["arena_bytes"] <= plan["arena_bytes"]
    assert needs["input_bytes"] == [2 * 12 * 4] and needs["output_bytes"] == [2 * 8 * 4, 2 * 12 * 4]


@pytest.mark.parametrize("relu", [True, False], ids=["with-kernels", "constants-only"])
def test_constant_outputs_with_awkward_names(tmp_path, relu):
    """Constant outputs are stored by position, their names only in the manifest's JSON, so
    names that np.savez takes as its own arguments (file, allow_pickle), paths and unicode
    all round-trip, with their dtypes."""
    model = dlc.compile(constants_model(tmp_path / "c.onnx", AWKWARD_NAMES, relu))
    model.save(tmp_path / "c.dlc")
    loaded = dlc.runtime.load(tmp_path / "c.dlc")
    assert loaded.output_names == AWKWARD_NAMES + ["y"] * relu
    x = np.array([-1, 0, 2], np.float32)
    outputs = loaded.run(x) if relu else loaded.run()
    for k, name in enumerate(AWKWARD_NAMES):
        assert outputs[k].dtype == constant_value(k).dtype, name
        np.testing.assert_array_equal(outputs[k], constant_value(k), err_msg=name)
    if relu:
        np.testing.assert_array_equal(outputs[-1], np.maximum(x, 0))
    manifest, sections = read_artifact(tmp_path / "c.dlc")
    assert [c["name"] for c in manifest["constants"]] == AWKWARD_NAMES
    assert ("library" in sections) == relu


def test_saved_file_is_readable_by_others(compiled, tmp_path):
    path = tmp_path / "m.dlc"
    compiled.save(path)
    assert os.stat(path).st_mode & 0o044 == 0o044


# -- corruption ---------------------------------------------------------------------------
def test_flipped_byte_in_manifest(saved, tmp_path, no_native_code):
    start, end = _layout(saved)["manifest"]
    for offset in (start, (start + end) // 2, end - 1):
        data = bytearray(saved)
        data[offset] ^= 0x20
        refused(write(tmp_path, bytes(data)), "corrupted", "manifest checksum")


@pytest.mark.parametrize("section", ["library", "weights", "constants"])
def test_flipped_byte_in_each_section(saved, tmp_path, no_native_code, section):
    start, end = _layout(saved)["sections"][section]
    for offset in (start, (start + end) // 2, end - 1):
        data = bytearray(saved)
        data[offset] ^= 0x01
        refused(write(tmp_path, bytes(data)), "corrupted", f"section {section} checksum")


@pytest.mark.parametrize("offset, fragment", [
    (0, "bad magic"), (7, "bad magic"), (8, "format version"), (12, "reserved"),
    (16, "manifest checksum"), (23, "truncated"), (24, "manifest checksum"),
    (55, "manifest checksum")])
def test_flipped_byte_in_header(saved, tmp_path, no_native_code, offset, fragment):
    """Offsets 16-23 hold the manifest length: a small change reads the wrong bytes, a large
    one runs past the end of the file."""
    data = bytearray(saved)
    data[offset] ^= 0x01
    refused(write(tmp_path, bytes(data)), fragment)


def test_flipped_byte_in_padding(saved, tmp_path, no_native_code):
    layout = _layout(saved)
    gaps = [(layout["manifest"][1], layout["base"])]
    ends = sorted(layout["sections"].values())
    gaps += [(end, nxt[0]) for end, nxt in zip([e for _, e in ends], ends[1:])]
    gaps = [(a, b) for a, b in gaps if b > a]
    assert gaps, "expected padding somewhere in the file"
    for start, _ in gaps:
        data = bytearray(saved)
        data[start] = 0xFF
        refused(write(tmp_path, bytes(data)), "nonzero padding")


def test_every_flipped_byte_is_caught(saved, tmp_path, no_native_code):
    """Sampled through the whole file: any damaged byte is refused."""
    offsets = sorted(set(range(0, len(saved), max(len(saved) // 150, 1))) | {len(saved) - 1})
    for offset in offsets:
        data = bytearray(saved)
        data[offset] ^= 0x80
        with pytest.raises(ArtifactError) as info:
            dlc.runtime.load(write(tmp_path, bytes(data)))
        assert "\n" not in str(info.value)


def test_truncation_at_many_offsets(saved, tmp_path, no_native_code):
    layout = _layout(saved)
    points = {0, 1, 7, 8, 12, 16, 24, 55, 56, 57, layout["manifest"][1] - 1,
              layout["manifest"][1], layout["base"], len(saved) - 1}
    for start, end in layout["sections"].values():
        points |= {start, start + 1, (start + end) // 2, end - 1, end}
    points |= set(range(0, len(saved), max(len(saved) // 60, 1)))
    for size in sorted(p for p in points if p < len(saved)):
        path = write(tmp_path, saved[:size])
        with pytest.raises(ArtifactError) as info:
            dlc.runtime.load(path)
        message = str(info.value)
        assert "\n" not in message
        expected = "bad magic" if size < 8 else "truncated"
        assert expected in message, (size, message)


def test_trailing_bytes(saved, tmp_path, no_native_code):
    refused(write(tmp_path, saved + b"\0" * 64), "unexpected bytes after the last section")


def test_wrong_magic(saved, tmp_path, no_native_code):
    refused(write(tmp_path, b"NOTADLC!" + saved[8:]), "not a dlc artifact", "magic")


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY", b"\x08\x07\x12\x03onnx" * 10,
                                     b"\x7fELF\x02\x01\x01" + b"\0" * 100])
def test_other_file_types(tmp_path, content, no_native_code):
    refused(write(tmp_path, content, "model.bin"), "not a dlc artifact")


def test_other_format_version(saved, tmp_path, no_native_code):
    data = bytearray(saved)
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    refused(write(tmp_path, bytes(data)), f"format version {FORMAT_VERSION + 1}",
            "recompile")


def test_older_format_version(saved, tmp_path, no_native_code):
    """Version 1 stored constant outputs as np.savez keywords; this runtime reads only the
    current version and says to recompile."""
    data = bytearray(saved)
    struct.pack_into("<I", data, 8, 1)
    refused(write(tmp_path, bytes(data)), "format version 1;",
            f"this runtime reads version {FORMAT_VERSION}", "recompile")


def _with_manifest_text(tmp_path, saved: bytes, old: bytes, new: bytes) -> str:
    """The artifact with ``old`` replaced by ``new`` in its manifest's text, and the header's
    length and checksum recomputed."""
    manifest, sections = read_artifact(write(tmp_path, saved))
    header, text, _, *body = artifact.encode_artifact(manifest, sections)
    assert old in text
    text = text.replace(old, new, 1)
    header = struct.pack("<8sIIQ32s", b"DLCMODEL", FORMAT_VERSION, 0, len(text),
                         hashlib.sha256(text).digest())
    pad = b"\0" * ((56 + len(text) + 63) // 64 * 64 - 56 - len(text))
    return write(tmp_path, b"".join([header, text, pad, *body]))


def test_manifest_version_disagrees_with_header(saved, tmp_path, no_native_code):
    path = _with_manifest_text(tmp_path, saved, b'"format_version": %d' % FORMAT_VERSION,
                               b'"format_version": 7')
    refused(path, "inconsistent format version")


def test_manifest_nested_too_deeply(saved, tmp_path, no_native_code):
    """Deep enough for json.loads to raise RecursionError."""
    path = _with_manifest_text(tmp_path, saved, b'"name": ',
                               b'"name": ' + b"[" * 100_000 + b"]" * 100_000 + b', "x": ')
    refused(path, "unreadable manifest", "nested too deeply")


def test_other_artifact_kind(saved, tmp_path, no_native_code):
    path = rewrite(tmp_path, saved, lambda m, s: m.update(kind="dlc-tuning-cache"))
    refused(path, "'dlc-tuning-cache'", "not a compiled dlc model")


@pytest.mark.parametrize("key", ["plan", "inputs", "target"])
def test_manifest_missing_a_field(saved, tmp_path, no_native_code, key):
    path = rewrite(tmp_path, saved, lambda m, s: m.pop(key))
    refused(path, "invalid manifest", repr(key))


def test_missing_section(saved, tmp_path, no_native_code):
    refused(rewrite(tmp_path, saved, lambda m, s: s.pop("library")), "no library section")
    refused(rewrite(tmp_path, saved, lambda m, s: s.pop("weights")), "no weights section")


def test_library_section_that_is_not_a_library(saved, tmp_path, no_native_code):
    path = rewrite(tmp_path, saved, lambda m, s: s.update(library=b"\x7fELF" + b"\0" * 60))
    refused(path, "section library")


def test_non_cpu_target(saved, tmp_path, no_native_code):
    path = rewrite(tmp_path, saved,
                   lambda m, s: m["target"].update(string="cuda -arch=sm_90"))
    refused(path, "cuda", "CPU")


# -- CPU features -------------------------------------------------------------------------
def test_required_feature_missing_from_manifest_edit(saved, tmp_path, no_native_code):
    path = rewrite(tmp_path, saved, lambda m, s: m["target"]["required_features"].append(
        "avx9000"))
    message = refused(path, "avx9000", "lacks", "recompile")
    assert "--target" in message


def test_required_feature_missing_from_host(saved, tmp_path, no_native_code, monkeypatch):
    manifest, _ = read_artifact(write(tmp_path, saved))
    required = manifest["target"]["required_features"]
    if not required:
        pytest.skip("this artifact needs no extensions beyond baseline x86-64")
    flags = cpu_features.host_flags() or frozenset(required)
    monkeypatch.setattr(cpu_features, "host_flags", lambda: flags - {required[-1]})
    refused(write(tmp_path, saved), required[-1], "lacks")


def test_unknown_host_flags_do_not_block(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(cpu_features, "host_flags", lambda: None)
    assert dlc.runtime.load(write(tmp_path, saved)).run(np.zeros((2, 12), np.float32))


def test_other_machine_architecture(saved, tmp_path, no_native_code, monkeypatch):
    monkeypatch.setattr(loader.platform, "machine", lambda: "aarch64")
    refused(write(tmp_path, saved), "x86-64", "aarch64")


@pytest.mark.parametrize("cpu, mattr, present, absent", [
    ("x86-64", "", [], ["sse4_2", "avx"]),
    ("x86-64-v2", "", ["sse4_2", "popcnt"], ["avx"]),
    ("x86-64-v3", "", ["avx2", "fma", "bmi2"], ["avx512f"]),
    ("x86-64-v4", "-avx512bw", ["avx512f"], ["avx512bw"]),
    ("haswell", "+avx512f", ["avx2", "avx512f"], []),
    ("some-future-cpu", "+avx2,+fma", ["avx2", "fma"], ["avx512f"]),
])
def test_required_features_of_targets(cpu, mattr, present, absent):
    required = cpu_features.required_features(mattr, cpu)
    assert set(present) <= set(required) and not set(absent) & set(required)


def test_artifact_for_an_older_cpu_loads(tmp_path):
    model = dlc.compile(small_model(tmp_path / "s.onnx"), target="llvm -mcpu=x86-64-v2")
    model.save(tmp_path / "v2.dlc")
    manifest, _ = read_artifact(tmp_path / "v2.dlc")
    assert "sse4_2" in manifest["target"]["required_features"]
    assert "avx" not in manifest["target"]["required_features"]
    x = np.ones((2, 12), np.float32)
    np.testing.assert_allclose(dlc.runtime.load(tmp_path / "v2.dlc").run(x)[0],
                               small_reference(x)[0], rtol=1e-5)


# -- not a file ---------------------------------------------------------------------------
def test_directory_instead_of_file(tmp_path):
    (tmp_path / "model.dlc").mkdir()
    refused(tmp_path / "model.dlc", "is a directory")


def test_missing_file(tmp_path):
    refused(tmp_path / "absent.dlc", "no such file")


# -- saving -------------------------------------------------------------------------------
def _leftovers(directory) -> list:
    return [p.name for p in directory.iterdir() if p.name.startswith(".dlc-")]


def test_failed_rename_leaves_existing_file_untouched(compiled, tmp_path, monkeypatch):
    path = tmp_path / "model.dlc"
    path.write_bytes(b"the previous artifact")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifact.os, "replace", fail)
    with pytest.raises(ArtifactError, match="cannot write .*No space left on device"):
        compiled.save(path)
    assert path.read_bytes() == b"the previous artifact"
    assert _leftovers(tmp_path) == []


def test_failure_while_writing_leaves_existing_file_untouched(compiled, tmp_path,
                                                              monkeypatch):
    path = tmp_path / "model.dlc"
    path.write_bytes(b"the previous artifact")
    monkeypatch.setattr(artifact.os, "fsync", lambda fd: (_ for _ in ()).throw(
        OSError(5, "Input/output error")))
    with pytest.raises(ArtifactError, match="Input/output error"):
        compiled.save(path)
    assert path.read_bytes() == b"the previous artifact"
    assert _leftovers(tmp_path) == []


def test_interrupted_save_leaves_nothing(compiled, tmp_path, monkeypatch):
    path = tmp_path / "model.dlc"
    path.write_bytes(b"old")
    monkeypatch.setattr(artifact.os, "fsync", lambda fd: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        compiled.save(path)
    assert path.read_bytes() == b"old" and _leftovers(tmp_path) == []


def test_save_to_missing_directory(compiled, tmp_path):
    with pytest.raises(ArtifactError, match="does not exist"):
        compiled.save(tmp_path / "absent" / "model.dlc")


def test_save_onto_a_directory(compiled, tmp_path):
    (tmp_path / "model.dlc").mkdir()
    with pytest.raises(ArtifactError, match="is a directory"):
        compiled.save(tmp_path / "model.dlc")
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_save_to_unwritable_directory(compiled, tmp_path):
    directory = tmp_path / "ro"
    directory.mkdir()
    (directory / "model.dlc").write_bytes(b"old")
    directory.chmod(0o555)
    try:
        with pytest.raises(ArtifactError, match="cannot write"):
            compiled.save(directory / "model.dlc")
        assert (directory / "model.dlc").read_bytes() == b"old"
    finally:
        directory.chmod(0o755)


def test_save_replaces_an_existing_artifact(compiled, tmp_path):
    path = tmp_path / "model.dlc"
    path.write_bytes(b"old")
    compiled.save(path)
    assert dlc.runtime.load(path).run(np.zeros((2, 12), np.float32))[0].shape == (2, 8)
