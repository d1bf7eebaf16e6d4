"""The run's wheel cache (tests/wheelhouse.py) hands a test exactly the bytes it would have
packed itself, and never a wheel whose content depends on what its folder already held."""
from __future__ import annotations

from importlib import metadata

import pytest

import wheelhouse


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(wheelhouse, "CACHE", tmp_path / "cache")
    return tmp_path / "cache"


def _pin(name: str) -> str:
    return f"{name}=={metadata.version(name)}"


def test_a_cached_wheel_is_the_bytes_a_fresh_repack_gives(tmp_path, cache):
    fresh = wheelhouse.repack(metadata.distribution("six"), _folder(tmp_path / "fresh"))
    first = wheelhouse.wheelhouse([_pin("six"), _pin("idna")], tmp_path / "first")
    second = wheelhouse.wheelhouse([_pin("six")], tmp_path / "second")
    linked = second / fresh.name
    assert (first / fresh.name).read_bytes() == linked.read_bytes() == fresh.read_bytes()
    assert linked.stat().st_ino == (first / fresh.name).stat().st_ino  # linked, not packed again
    assert sorted(p.name for p in first.iterdir()) == sorted(
        wheelhouse.repack(metadata.distribution(n), _folder(tmp_path / n)).name for n in ("six", "idna"))
    assert len(list(cache.glob("*/*.whl"))) == 2


def test_a_wheel_that_would_leave_files_out_is_packed_for_its_folder_only(tmp_path, cache):
    """The same distribution twice in one folder: the second wheel holds only its RECORD, as
    without a cache, and the cache keeps the whole first one."""
    whole = wheelhouse.repack(metadata.distribution("six"), _folder(tmp_path / "whole"))
    dest = _folder(tmp_path / "dest")
    packed: set = set()
    first = wheelhouse._repack_or_link(metadata.distribution("six"), dest, packed, None)
    assert first.read_bytes() == whole.read_bytes()
    again = wheelhouse._repack_or_link(metadata.distribution("six"), _folder(tmp_path / "other"), packed, None)
    import zipfile
    with zipfile.ZipFile(again) as zf:
        assert [n for n in zf.namelist() if not n.endswith("/RECORD")] == []
    assert next(cache.glob("*/*.whl")).read_bytes() == whole.read_bytes()


def _folder(path):
    path.mkdir(parents=True)
    return path
