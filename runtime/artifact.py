"""The one-file artifact (.dlc): manifest, weights, native code, checksums.

Layout (all integers little-endian; docs/reference/artifact.md):

    offset 0   magic  b"DLCMODEL"
           8   u32    format version
          12   u32    reserved (0)
          16   u64    manifest length in bytes (M)
          24   32 B   SHA-256 of the manifest
          56   M B    manifest, UTF-8 JSON
               ...    zero padding to the next multiple of 64: the data area
               ...    sections, each at a 64-byte aligned offset in the data area

The manifest lists each section (name, offset from the start of the data area, size,
SHA-256). Every check (magic,
version, manifest checksum, section checksums, CPU features) runs before any native code
is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile

from dlc.errors import ArtifactError

MAGIC = b"DLCMODEL"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIQ32s")
_ALIGN = 64


def _data_start(manifest_length: int) -> int:
    end = _HEADER.size + manifest_length
    return (end + _ALIGN - 1) // _ALIGN * _ALIGN


def write_artifact(path, manifest: dict, sections: dict) -> int:
    """Write ``sections`` (name -> bytes) and ``manifest`` atomically; returns the size."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ArtifactError(f"cannot write {path}: directory {directory} does not exist")
    table, body, offset = [], [], 0
    for name, data in sections.items():
        table.append({"name": name, "offset": offset, "size": len(data),
                      "sha256": hashlib.sha256(data).hexdigest()})
        pad = (-len(data)) % _ALIGN
        body.append(bytes(data) + b"\0" * pad)
        offset += len(data) + pad
    manifest = dict(manifest, format_version=FORMAT_VERSION, sections=table)
    text = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(text), hashlib.sha256(text).digest())
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dlc-artifact-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(header)
            f.write(text)
            f.write(b"\0" * (_data_start(len(text)) - _HEADER.size - len(text)))
            for chunk in body:
                f.write(chunk)
        os.replace(tmp, path)
    except OSError as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise ArtifactError(f"cannot write {path}: {err.strerror or err}") from None
    return os.path.getsize(path)


def read_artifact(path) -> tuple[dict, dict]:
    """Read and verify an artifact; returns (manifest, sections name -> bytes)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ArtifactError(f"{path} is a directory, not a .dlc artifact") from None
    except OSError as err:
        raise ArtifactError(f"{path}: {err.strerror or err}") from None
    if len(data) < _HEADER.size or data[:8] != MAGIC:
        raise ArtifactError(f"{path} is not a dlc artifact (bad magic number)")
    magic, version, _, length, digest = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ArtifactError(f"{path} has artifact format version {version}; this runtime "
                            f"reads version {FORMAT_VERSION}: recompile the model")
    text = data[_HEADER.size:_HEADER.size + length]
    if len(text) != length:
        raise ArtifactError(f"{path} is truncated (manifest cut short)")
    if hashlib.sha256(text).digest() != digest:
        raise ArtifactError(f"{path} is corrupted (manifest checksum mismatch)")
    try:
        manifest = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):  # pragma: no cover - checksummed
        raise ArtifactError(f"{path} has an unreadable manifest") from None
    sections = {}
    base = _data_start(length)
    for entry in manifest.get("sections", []):
        start, size = base + entry["offset"], entry["size"]
        chunk = data[start:start + size]
        if len(chunk) != size:
            raise ArtifactError(f"{path} is truncated (section {entry['name']} cut short)")
        if hashlib.sha256(chunk).hexdigest() != entry["sha256"]:
            raise ArtifactError(f"{path} is corrupted (section {entry['name']} checksum "
                                "mismatch)")
        sections[entry["name"]] = chunk
    return manifest, sections
