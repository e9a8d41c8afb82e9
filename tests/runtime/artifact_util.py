"""Helpers for tests of .dlc artifacts: write bytes to a file, rewrite an artifact's
manifest or sections with fresh checksums, and expect a load to be refused."""

from __future__ import annotations

import json

import pytest

import dlc
from dlc.errors import ArtifactError
from dlc.runtime.artifact import read_artifact, write_artifact


def write(tmp_path, data: bytes, name="model.dlc") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def rewrite(tmp_path, data: bytes, edit, name="edited.dlc") -> str:
    """An artifact whose manifest and sections were changed by ``edit(manifest, sections)``
    and checksummed again (what a writer with a bug, or a deliberate edit, would produce).
    The section table and format version are written afresh."""
    manifest, sections = read_artifact(write(tmp_path, data, "source.dlc"))
    manifest = json.loads(json.dumps(manifest))
    edit(manifest, sections)
    out = tmp_path / name
    write_artifact(out, {k: v for k, v in manifest.items() if k != "sections"}, sections)
    return str(out)


def refused(path, *fragments) -> str:
    """Loading ``path`` raises an ArtifactError: one line naming the file and containing
    every fragment. Returns the message."""
    with pytest.raises(ArtifactError) as info:
        dlc.runtime.load(path)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message
