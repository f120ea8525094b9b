"""Where a received file may land: sanitised names, never overwriting, partial first.

A name comes from the peer (XEP-0234 <name/>), so it is hostile until proven
otherwise: no directories, no parent references, no control or bidi-override
characters, no leading dot (hidden files), no device names, length-limited in
UTF-8 bytes. The file is written as ``<name>.part`` and renamed only once
complete and verified.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

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
    (also not another transfer's partial file)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    else:
        ext = f".{ext}"
    candidate = directory / name
    n = 1
    while candidate.exists() or candidate.with_name(candidate.name + PARTIAL_SUFFIX).exists():
        n += 1
        candidate = directory / f"{stem} ({n}){ext}"
    return candidate


def inside(directory: Path, path: Path) -> bool:
    """True when ``path`` resolves inside ``directory`` (defence in depth)."""
    return os.path.commonpath([directory.resolve(), path.resolve()]) == str(directory.resolve())
