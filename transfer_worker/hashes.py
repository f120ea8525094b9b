"""XEP-0300 digests of whole files, computed once per version of a file.

A sender announces the hash of the whole file (XEP-0234 §7.1), also when it
resumes from an offset: reading a gigabyte again for each send is the price
of nothing. A digest is remembered under what identifies a version of the
file — device, inode, size and modification time in nanoseconds — so a second
send or a resume costs a ``stat``; a file changed in between (any of those
differ) is hashed again. The cache is bounded and lives in the worker; the
blocking functions here run in threads (hashlib releases the GIL).

The receiving side keeps the state of an unfinished digest the same way, so a
transfer resumed in the same worker continues it instead of reading the
partial file again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# XEP-0300 algorithm names and their hashlib constructors.
HASHES: dict[str, Callable[[], Any]] = {
    "sha-256": hashlib.sha256,
    "sha3-256": hashlib.sha3_256,
    "blake2b-256": lambda: hashlib.blake2b(digest_size=32),
}
READ = 1024 * 1024
MAX_ENTRIES = 256

Version = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


def version_of(stat: os.stat_result) -> Version:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def digest_file(digest: Any, path: Path, length: int | None = None) -> Any:
    """Feed ``digest`` the first ``length`` bytes of ``path`` (all when None); never
    through a symbolic link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        buffer = memoryview(bytearray(READ))
        remaining = length
        while remaining is None or remaining > 0:
            count = fh.readinto(buffer if remaining is None else buffer[:min(READ, remaining)])
            if not count:
                break
            digest.update(buffer[:count])
            if remaining is not None:
                remaining -= count
    return digest


class FileDigests:
    """Whole-file digests by file version (thread-safe, bounded, least recently used
    dropped first)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._done: OrderedDict[tuple[Version, str], str] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self.computed = 0  # how many files were actually read (for tests)

    def hexdigest(self, path: Path, algo: str) -> str:
        """The digest of ``path`` with ``algo``; read only if this version is new."""
        before = version_of(os.stat(path, follow_symlinks=False))
        key = (before, algo)
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
        value = str(digest_file(HASHES[algo](), path).hexdigest())
        self.computed += 1
        if version_of(os.stat(path, follow_symlinks=False)) == before:  # unchanged meanwhile
            with self._lock:
                self._done[key] = value
                while len(self._done) > self._max:
                    self._done.popitem(last=False)
        return value


class PartialDigests:
    """SHA-256 states of partial files left unfinished, by (path, version), so that a
    resume in the same worker continues the digest instead of rereading the bytes."""

    def __init__(self, max_entries: int = 64) -> None:
        self._states: OrderedDict[tuple[str, Version], Any] = OrderedDict()
        self._max = max_entries

    def keep(self, path: Path, digest: Any) -> None:
        try:
            key = (str(path), version_of(os.stat(path, follow_symlinks=False)))
        except OSError:
            return
        self._states[key] = digest.copy()
        while len(self._states) > self._max:
            self._states.popitem(last=False)

    def take(self, path: Path, length: int) -> Any | None:
        """The kept state of ``path`` if the file is still exactly what it hashed."""
        try:
            version = version_of(os.stat(path, follow_symlinks=False))
        except OSError:
            return None
        state = self._states.pop((str(path), version), None)
        return state if state is not None and version[2] == length else None
