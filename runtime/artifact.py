"""The one-file artifact (.dlc): manifest, weights, native code, checksums.

Layout (all integers little-endian; docs/reference/artifact.md):

    offset 0   magic  b"DLCMODEL"
           8   u32    format version
          12   u32    reserved (0)
          16   u64    manifest length in bytes (M)
          24   32 B   SHA-256 of the manifest
          56   M B    manifest, UTF-8 JSON
               ...    zero padding to the next multiple of 64: the data area
               ...    sections, each at a 64-byte aligned offset in the data area, each
                      followed by zero padding to the next multiple of 64

The manifest lists each section (name, offset from the start of the data area, size,
SHA-256). Every byte of the file is checked by ``read_artifact`` (header fields, manifest
and section checksums, zero padding, total length) before any native code is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

from dlc.errors import ArtifactError

MAGIC = b"DLCMODEL"
FORMAT_VERSION = 2
_HEADER = struct.Struct("<8sIIQ32s")
_ALIGN = 64


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


def _data_start(manifest_length: int) -> int:
    return _aligned(_HEADER.size + manifest_length)


def encode_artifact(manifest: dict, sections: dict) -> list:
    """The file's bytes, as a list of chunks: header, manifest, padding, sections."""
    table, body, offset = [], [], 0
    for name, data in sections.items():
        data = bytes(data)
        table.append({"name": name, "offset": offset, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
        body.append(data + b"\0" * (_aligned(len(data)) - len(data)))
        offset += _aligned(len(data))
    manifest = dict(manifest, format_version=FORMAT_VERSION, sections=table)
    text = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(text), hashlib.sha256(text).digest())
    padding = b"\0" * (_data_start(len(text)) - _HEADER.size - len(text))
    return [header, text, padding, *body]


def write_artifact(path, manifest: dict, sections: dict) -> int:
    """Write ``sections`` (name -> bytes) and ``manifest`` atomically (a temporary file in
    the same directory, renamed over ``path``); returns the size in bytes. On failure an
    existing file at ``path`` is left untouched."""
    path = os.fspath(path)
    chunks = encode_artifact(manifest, sections)
    atomic_write(path, chunks)
    return sum(len(c) for c in chunks)


def atomic_write(path: str, chunks) -> None:
    """Write ``chunks`` (bytes) to ``path`` through a temporary file and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArtifactError(f"cannot write {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise ArtifactError(f"cannot write {path}: it is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dlc-artifact-")
    except OSError as err:
        raise ArtifactError(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files only their owner can read
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        raise ArtifactError(f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def read_artifact(path) -> tuple[dict, dict]:
    """Read and verify an artifact; returns (manifest, sections name -> bytes).

    Checks, in order: magic number, format version, header, manifest checksum, manifest
    structure, section checksums, padding and total length. Each failure raises an
    ArtifactError with a one-line message naming the file and the problem."""
    path = os.fspath(path)
    data = _read_file(path)
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise ArtifactError(f"{path} is not a dlc artifact (bad magic number; expected a file "
                            "written by 'dlc compile' or CompiledModel.save)")
    if len(data) < _HEADER.size:
        raise ArtifactError(f"{path} is truncated ({len(data)} bytes, shorter than the "
                            f"{_HEADER.size}-byte header)")
    _, version, reserved, length, digest = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path} has artifact format version {version}; this runtime "
                            f"reads version {FORMAT_VERSION}: recompile the model with this "
                            "dlc ('dlc compile')")
    if reserved != 0:
        raise ArtifactError(f"{path} is corrupted (reserved header field is {reserved}, "
                            "not 0)")
    text = data[_HEADER.size:_HEADER.size + length]
    if len(text) != length:
        raise ArtifactError(f"{path} is truncated (manifest cut short: {len(text)} of "
                            f"{length} bytes)")
    if hashlib.sha256(text).digest() != digest:
        raise ArtifactError(f"{path} is corrupted (manifest checksum mismatch)")
    manifest = _parse_manifest(path, text, version)
    base = _data_start(length)
    if any(data[_HEADER.size + length:min(base, len(data))]):
        raise ArtifactError(f"{path} is corrupted (nonzero padding after the manifest)")
    sections, end = {}, base
    for entry in manifest["sections"]:
        name, start, size = entry["name"], base + entry["offset"], entry["size"]
        if start != end:
            raise ArtifactError(f"{path} has an invalid section table (section {name} at "
                                f"offset {entry['offset']}, expected {end - base})")
        chunk = data[start:start + size]
        if len(chunk) != size:
            raise ArtifactError(f"{path} is truncated (section {name} cut short: "
                                f"{len(chunk)} of {size} bytes)")
        if hashlib.sha256(chunk).hexdigest() != entry["sha256"]:
            raise ArtifactError(f"{path} is corrupted (section {name} checksum mismatch)")
        end = start + _aligned(size)
        if len(data) < end:
            raise ArtifactError(f"{path} is truncated (padding after section {name} cut "
                                "short)")
        if any(data[start + size:end]):
            raise ArtifactError(f"{path} is corrupted (nonzero padding after section {name})")
        sections[name] = chunk
    if len(data) < end:
        raise ArtifactError(f"{path} is truncated ({len(data)} of {end} bytes)")
    if len(data) > end:
        raise ArtifactError(f"{path} is corrupted ({len(data) - end} unexpected bytes after "
                            "the last section)")
    return manifest, sections


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path} is a directory, not a .dlc artifact") from None
    except OSError as err:
        raise ArtifactError(f"cannot read {path}: {err.strerror or err}") from None


def _parse_manifest(path: str, text: bytes, version: int) -> dict:
    """The manifest as a dict, with a well-formed section table (it was checksummed, so a
    malformed one was written that way, not damaged in transit)."""
    try:
        manifest = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArtifactError(f"{path} has an unreadable manifest (not UTF-8 JSON)") from None
    except RecursionError:
        raise ArtifactError(f"{path} has an unreadable manifest (nested too deeply)") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path} has an invalid manifest (not a JSON object)")
    if manifest.get("format_version") != version:
        raise ArtifactError(f"{path} has an inconsistent format version (header {version}, "
                            f"manifest {manifest.get('format_version')!r})")
    table = manifest.get("sections")
    if not isinstance(table, list):
        raise ArtifactError(f"{path} has an invalid manifest (no section table)")
    names = set()
    for entry in table:
        ok = (isinstance(entry, dict) and isinstance(entry.get("name"), str)
              and all(isinstance(entry.get(k), int) and not isinstance(entry.get(k), bool)
                      and entry[k] >= 0 for k in ("offset", "size"))
              and isinstance(entry.get("sha256"), str))
        if not ok or entry["name"] in names:
            raise ArtifactError(f"{path} has an invalid section table entry {entry!r}")
        names.add(entry["name"])
    return manifest
