"""Where files live: local paths, object-store URIs and pyarrow filesystems.

A ``Location`` is a filesystem and a path on it. Local files keep ``filesystem=None``
and plain OS paths, so the local code paths (``os.stat``, memory maps) stay as they
were; anything else goes through a ``pyarrow.fs.FileSystem``:

* ``s3://bucket/key``, ``gs://`` (``gcs://``), ``abfs://`` (``abfss://``) and
  ``hdfs://`` URIs are opened with ``pyarrow.fs.FileSystem.from_uri``, so credentials
  come from the environment and the usual files as pyarrow's filesystems read them
  (``AWS_*``, ``~/.aws``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_*``), and URI
  options such as ``?endpoint_override=host:port&scheme=http`` are honoured. One
  filesystem is made per scheme, host and options, and reused.
* ``file://`` URIs are local paths.
* A ``pyarrow.fs.FileSystem`` given with a path uses that path on that filesystem.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from shoal.errors import CatalogError

#: URI schemes read through pyarrow's filesystems.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "hdfs")

_filesystems: dict[tuple[str, str, str], pafs.FileSystem] = {}
_filesystems_lock = threading.Lock()


@dataclass(frozen=True)
class Location:
    """``path`` on ``filesystem`` (``None``: the local OS filesystem, ``path`` an OS path)."""

    filesystem: pafs.FileSystem | None
    path: str
    #: How the location is shown in messages and EXPLAIN (the URI the user gave).
    display: str

    @property
    def is_local(self) -> bool:
        return self.filesystem is None

    def child(self, name: str) -> Location:
        if self.filesystem is None:
            return Location(None, os.path.join(self.path, name), os.path.join(self.display, name))
        return Location(
            self.filesystem,
            f"{self.path.rstrip('/')}/{name}",
            f"{self.display.rstrip('/')}/{name}",
        )


def is_remote_uri(path: str) -> bool:
    scheme = urlsplit(path).scheme.lower()
    return scheme in REMOTE_SCHEMES


def resolve(path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None) -> Location:
    """The location a user's path names (see the module docstring)."""
    text = os.fspath(path)
    if filesystem is not None:
        if not isinstance(filesystem, pafs.FileSystem):
            raise CatalogError(
                f"filesystem must be a pyarrow.fs.FileSystem, got {type(filesystem).__name__}"
            )
        if isinstance(filesystem, pafs.LocalFileSystem):
            return Location(None, os.path.abspath(text), text)
        return Location(filesystem, text.rstrip("/") or text, f"{filesystem.type_name}:{text}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return Location(None, parts.path, text)
    if scheme not in REMOTE_SCHEMES:
        return Location(None, text, text)
    key = (scheme, parts.netloc, parts.query)
    try:
        fs, fs_path = pafs.FileSystem.from_uri(text)
    except (OSError, ValueError) as err:
        raise CatalogError(f"cannot open {text}: {err}") from err
    with _filesystems_lock:
        # One filesystem per store and options: its connections and caches are shared.
        fs = _filesystems.setdefault(key, fs)
    return Location(fs, fs_path.rstrip("/") or fs_path, text.split("?", 1)[0])


def file_type(loc: Location) -> pafs.FileType:
    if loc.filesystem is None:
        if os.path.isdir(loc.path):
            return pafs.FileType.Directory
        return pafs.FileType.File if os.path.exists(loc.path) else pafs.FileType.NotFound
    try:
        return loc.filesystem.get_file_info(loc.path).type
    except OSError as err:
        raise CatalogError(f"cannot look at {loc.display}: {err}") from err


def file_version(loc: Location) -> tuple[int, int]:
    """``(mtime_ns, size)`` of a file: a footer read under one version is reused while it holds."""
    if loc.filesystem is None:
        stat = os.stat(loc.path)
        return stat.st_mtime_ns, stat.st_size
    info = loc.filesystem.get_file_info(loc.path)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(loc.display)
    return (info.mtime_ns or 0), (info.size or 0)


def list_files(loc: Location, suffixes: tuple[str, ...]) -> list[Location]:
    """A file, a folder (searched recursively for ``suffixes``, skipping names that start
    with ``.`` or ``_``) or a glob (``*``, ``?``, ``[``), as sorted files."""
    fs = loc.filesystem
    assert fs is not None, "local paths are listed by catalog.sources.resolve_paths"
    pattern = loc.path
    if any(ch in pattern for ch in "*?["):
        base = _glob_base(pattern)
        infos = _walk(fs, base)
        found = [i for i in infos if fnmatch.fnmatchcase(i.path, pattern)]
    else:
        kind = file_type(loc)
        if kind == pafs.FileType.File:
            return [loc]
        if kind != pafs.FileType.Directory:
            raise CatalogError(f"no such file or folder: {loc.display}")
        found = [
            i
            for i in _walk(fs, pattern)
            if i.base_name.endswith(suffixes) and not i.base_name.startswith((".", "_"))
        ]
    if not found:
        raise CatalogError(f"no {'/'.join(suffixes)} files found at {loc.display}")
    root = loc.display.split("://", 1)[0] + "://" if "://" in loc.display else ""
    return [
        Location(fs, i.path, f"{root}{i.path}" if root else i.path)
        for i in sorted(found, key=lambda i: i.path)
    ]


def _glob_base(pattern: str) -> str:
    parts = pattern.split("/")
    base = []
    for part in parts:
        if any(ch in part for ch in "*?["):
            break
        base.append(part)
    return "/".join(base)


def _walk(fs: pafs.FileSystem, base: str) -> list[pafs.FileInfo]:
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except OSError as err:
        raise CatalogError(f"cannot list {base}: {err}") from err
    return [i for i in infos if i.type == pafs.FileType.File]


def within(target: str, allowed: tuple[str, ...]) -> bool:
    """Is ``target`` (a local path or URI) inside one of the ``allowed`` directories?

    Local paths are compared after resolving symlinks and ``..``; URIs by scheme,
    bucket and path prefix at a ``/`` boundary (their query options are ignored).
    """
    t_remote = is_remote_uri(target)
    for root in allowed:
        if is_remote_uri(root) != t_remote:
            continue
        if t_remote:
            a, b = urlsplit(target), urlsplit(root)
            if a.scheme.lower() != b.scheme.lower() or a.netloc != b.netloc:
                continue
            tp, rp = _clean(a.path), _clean(b.path)
            if ".." in tp.split("/"):
                return False
        else:
            tp, rp = os.path.realpath(_local(target)), os.path.realpath(_local(root))
        if tp == rp or tp.startswith(rp.rstrip("/") + "/"):
            return True
    return False


def _clean(path: str) -> str:
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


def _local(path: str) -> str:
    return urlsplit(path).path if path.lower().startswith("file://") else path
