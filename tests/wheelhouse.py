"""A folder of wheels made from the distributions installed in this environment, for tests
that run a real `pip install` without a network: pip given `--no-index --find-links` to
it installs exactly the versions installed here, from this machine's own files.

Each wheel is repacked from the installed files its RECORD lists (as `pip` installed them
from the original wheel), uncompressed, with the tags its WHEEL file recorded. Console
scripts (outside site-packages) are left out: pip writes them anew from entry_points.txt.
Byte-code caches and the installer's own records (INSTALLER, REQUESTED, direct_url.json)
are left out too, and RECORD is written afresh from the files as they are now.

Two distributions can install the same files (an environment set up before TensorFlow
became an extra holds both `tensorflow` and `tensorflow-cpu`, 1.3 GB in common). A file
already packed into an earlier wheel of the folder is left out of the later ones, so it is
packed and installed once: the installed tree is the same, at half the bytes.

A pin of `tensorflow-cpu` where only `tensorflow` is installed (the instructor's set-up,
which needs the full package for tf_keras) is packed from `tensorflow`'s files under the
pinned name: the same release and the same dependencies, without GPU kernels' use here.

Several tests of one run need the same wheels (TensorFlow's alone is 1.7 GB, tens of seconds
to repack on a loaded machine), so with a cache folder (`CACHE`, set by tests/conftest.py
to one folder shared by the run's xdist workers) a wheel is packed once per run and linked
into each test's folder. A wheel is the same bytes whoever packs it (fixed dates, stored,
RECORD order), so a linked one is exactly what that test would have packed; one that
leaves out files an earlier wheel of the folder packed depends on that folder and is
never taken from the cache.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import re
import zipfile
from importlib import metadata
from pathlib import Path

INSTALLER_FILES = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}

# The run's folder of wheels packed so far (see the module's docstring); None packs afresh.
CACHE: Path | None = None


def _tag(wheel_text: str) -> str:
    """The compressed tag set of a WHEEL file (`py2.py3-none-any`), for the file name."""
    parts: list[list[str]] = [[], [], []]
    for line in wheel_text.splitlines():
        if line.startswith("Tag:"):
            for i, part in enumerate(line.split(":", 1)[1].strip().split("-")):
                if part not in parts[i]:
                    parts[i].append(part)
    if not parts[0]:
        raise ValueError("the WHEEL file names no tag")
    return "-".join(".".join(p) for p in parts)


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


# A pinned distribution that may be absent here, and the installed one of the same release.
SAME_RELEASE = {"tensorflow-cpu": "tensorflow"}


def _renamed(file: str, data: bytes, info_dir: str, new_info_dir: str, name: str) -> tuple[str, bytes]:
    """A file of a distribution repacked under another name: its .dist-info folder and the
    Name field of its METADATA follow the new name."""
    if not file.startswith(info_dir + "/"):
        return file, data
    file = new_info_dir + file[len(info_dir):]
    if file.endswith("/METADATA"):
        data = re.sub(rb"^Name: .*$", b"Name: " + name.encode(), data, count=1, flags=re.MULTILINE)
    return file, data


def repack(dist: metadata.Distribution, dest: Path, packed: set[Path] | None = None,
           as_name: str | None = None) -> Path:
    """One installed distribution as a wheel in `dest`; returns the wheel's path. Files
    whose installed path is in `packed` are left out; those packed are added to it. With
    `as_name`, the wheel is that distribution's (see SAME_RELEASE)."""
    packed = set() if packed is None else packed
    name = re.sub(r"[-_.]+", "_", as_name or dist.metadata["Name"])
    version = dist.version
    if dist.files is None:
        raise ValueError(f"{name} {version} was installed without a RECORD: it cannot be repacked")
    info_dirs = {f.parts[0] for f in dist.files if f.parts and f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1:
        raise ValueError(f"{name}: expected one .dist-info folder in RECORD, found {sorted(info_dirs)}")
    (info_dir,) = info_dirs
    new_info_dir = f"{name}-{version}.dist-info" if as_name else info_dir
    wheel = dest / f"{name}-{version}-{_tag(dist.read_text('WHEEL') or '')}.whl"
    rows = []
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as zf:
        for file in dist.files:
            if ".." in file.parts or "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            if file.parts[0] == info_dir and file.name in INSTALLER_FILES:
                continue
            path = Path(dist.locate_file(file)).resolve()
            if path in packed:
                continue
            packed.add(path)
            if not path.is_file():
                raise FileNotFoundError(f"{name}: {file} is listed in RECORD but not installed")
            arcname, data = _renamed(file.as_posix(), path.read_bytes(), info_dir, new_info_dir, name)
            info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0o777 | 0o100000) << 16
            zf.writestr(info, data)
            rows.append((arcname, _digest(data), str(len(data))))
        record = f"{new_info_dir}/RECORD"
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*rows, (record, "", "")])
        zf.writestr(zipfile.ZipInfo(record, date_time=(1980, 1, 1, 0, 0, 0)), out.getvalue())
    return wheel


def wheelhouse(requirements: list[str], dest: Path) -> Path:
    """Wheels for every `name==version` pin in `requirements` (comments and blank lines
    skipped), each repacked from this environment; fails when a pin is not what is
    installed here, since pip would then not find it."""
    dest.mkdir(parents=True, exist_ok=True)
    packed: set[Path] = set()
    for line in requirements:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        name, as_name = name.strip(), None
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            twin = SAME_RELEASE.get(name.lower().replace("_", "-"))
            if twin is None:
                raise
            dist, as_name = metadata.distribution(twin), name
        if dist.version != version.strip():
            raise ValueError(f"{line}: {dist.version} is installed here")
        _repack_or_link(dist, dest, packed, as_name)
    return dest


def _installed_paths(dist: metadata.Distribution) -> set[Path]:
    """The paths `repack` would consider for packing, resolved as it resolves them."""
    return {Path(dist.locate_file(f)).resolve() for f in dist.files or ()
            if ".." not in f.parts and "__pycache__" not in f.parts and f.suffix != ".pyc"}


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links refused: a copy is the same bytes
        import shutil
        shutil.copyfile(source, target)


def _repack_or_link(dist: metadata.Distribution, dest: Path, packed: set[Path], as_name: str | None) -> Path:
    """`repack`, through CACHE when the wheel does not depend on what `dest` already holds."""
    if CACHE is None or dist.files is None:
        return repack(dist, dest, packed, as_name)
    paths = _installed_paths(dist)
    if paths & packed:  # this wheel would leave files out: it belongs to this folder only
        return repack(dist, dest, packed, as_name)
    slot = CACHE / re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dist.metadata['Name']}-{dist.version}-{as_name or ''}")
    cached = next(slot.glob("*.whl"), None) if slot.is_dir() else None
    if cached is None:
        slot.mkdir(parents=True, exist_ok=True)
        building = slot / f".building-{os.getpid()}"  # two workers may pack it at once: both land whole
        building.mkdir(exist_ok=True)
        wheel = repack(dist, building, set(), as_name)
        cached = slot / wheel.name
        os.replace(wheel, cached)
        building.rmdir()
    target = dest / cached.name
    _link(cached, target)
    packed |= paths
    return target
