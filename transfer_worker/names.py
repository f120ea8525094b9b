"""Where a received file may land: sanitised names, never overwriting, partial first.

A name comes from the peer (XEP-0234 <name/>), so it is hostile until proven
otherwise: no directories, no parent references, no control or bidi-override
characters, no leading dot (hidden files), no device names, length-limited in
UTF-8 bytes. The file is written as ``<name>.part`` and renamed only once
complete and verified.
"""

from __future__ import annotations

import errno
import os
import unicodedata
from pathlib import Path
from typing import BinaryIO

MAX_NAME_BYTES = 200  # leaves room for " (n)" and ".part" under NAME_MAX 255
PARTIAL_SUFFIX = ".part"
_FORBIDDEN = set('/\\:*?"<>|')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
             *(f"lpt{i}" for i in range(1, 10))}


def sanitize(name: str | None, fallback: str = "received-file") -> str:
    """A safe base name for ``name`` (never empty, never a path)."""
    text = unicodedata.normalize("NFC", name or "")
    # Keep only the last path component, whatever separator the sender used.
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        "_" if (ch in _FORBIDDEN or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Zl",
                                                                  "Zp")) else ch
        for ch in text
    )
    cleaned = cleaned.strip().strip(".").strip()
    if not cleaned or cleaned in (".", ".."):
        cleaned = fallback
    stem, dot, _ext = cleaned.rpartition(".")
    base = stem if dot else cleaned
    if base.lower() in _RESERVED:
        cleaned = f"_{cleaned}"
    return _truncate(cleaned)


def _truncate(name: str) -> str:
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = f".{ext}" if dot and 0 < len(ext.encode()) <= 16 else ""
    stem = stem if ext else name
    budget = MAX_NAME_BYTES - len(ext.encode())
    cut = stem.encode()[:budget].decode("utf-8", "ignore")
    return cut + ext


def unique_path(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name (2)``, ``name (3)``... so nothing is overwritten
    (also not another transfer's partial file). An entry of any kind counts as taken,
    a dangling symbolic link too (``lexists``: links are never followed)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    else:
        ext = f".{ext}"
    candidate = directory / name
    n = 1
    while os.path.lexists(candidate) or os.path.lexists(
            candidate.with_name(candidate.name + PARTIAL_SUFFIX)):
        n += 1
        candidate = directory / f"{stem} ({n}){ext}"
    return candidate


def claim_partial(directory: Path, name: str) -> tuple[Path, Path]:
    """A final path and its ``.part`` file, created here and now with ``O_EXCL`` and
    ``O_NOFOLLOW``: whatever already stands at a name (a file, a planted link, another
    transfer's claim) keeps it, and we take the next free one."""
    for _ in range(1000):
        final = unique_path(directory, name)
        partial = final.with_name(final.name + PARTIAL_SUFFIX)
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue  # taken between the look and the claim
        os.close(fd)
        return final, partial
    raise FileExistsError(f"no free name for {name!r} in {directory}")


def open_partial(path: Path) -> BinaryIO:
    """Open our own partial file for writing, never through a symbolic link."""
    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "r+b")


def commit_name(partial: Path, final: Path) -> Path:
    """Give the finished ``partial`` its final name without replacing anything that
    stands there now: ``link`` fails where ``rename`` would overwrite, so a name
    taken meanwhile (or a planted link) moves the file to ``name (2)``..."""
    for _ in range(1000):
        try:
            os.link(partial, final, follow_symlinks=False)
        except FileExistsError:
            final = unique_path(final.parent, final.name)
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            # A file system without hard links (FAT, some FUSE mounts): rename where
            # nothing stands, checked just before (a narrower guarantee, the best there).
            if os.path.lexists(final):
                final = unique_path(final.parent, final.name)
                continue
            os.rename(partial, final)
            return final
        os.unlink(partial)
        return final
    raise FileExistsError(f"no free name for {final.name!r} in {final.parent}")


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.EXDEV}


def inside(directory: Path, path: Path) -> bool:
    """True when ``path`` resolves inside ``directory`` (defence in depth)."""
    return os.path.commonpath([directory.resolve(), path.resolve()]) == str(directory.resolve())
