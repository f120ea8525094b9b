"""Where a call's audio comes from and goes to (``audio.input`` / ``audio.output``).

Sources give one 20 ms frame (48 kHz mono int16) per ``read()``; sinks take one
per ``write()``. The media worker's own 20 ms clock paces both, so the
tone, WAV and silence sources and the WAV and null sinks need no sound card
(none exists on CI machines). ``default`` uses the sound card through
sounddevice and falls back, with a warning, to silence / null.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import math
import re
import threading
import wave
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from media_worker.codecs import FRAME_BYTES, FRAME_SAMPLES, SAMPLE_RATE, SILENCE

log = logging.getLogger(__name__)


class Source(Protocol):
    def read(self) -> bytes: ...
    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, pcm: bytes) -> None: ...
    def close(self) -> None: ...


class SilenceSource:
    def read(self) -> bytes:
        return SILENCE

    def close(self) -> None:
        pass


class ToneSource:
    """A phase-continuous sine at ``hz``."""

    def __init__(self, hz: float, amplitude: float = 0.3) -> None:
        self._step = 2 * math.pi * hz / SAMPLE_RATE
        self._phase = 0.0
        self._amplitude = amplitude * 32767

    def read(self) -> bytes:
        phases = self._phase + self._step * np.arange(FRAME_SAMPLES)
        self._phase = float((self._phase + self._step * FRAME_SAMPLES) % (2 * math.pi))
        return bytes((np.sin(phases) * self._amplitude).astype(np.int16).tobytes())

    def close(self) -> None:
        pass


def _to_pipeline_format(raw: bytes, rate: int, channels: int, width: int) -> np.ndarray:
    if width != 2:
        raise ValueError("only 16-bit WAV files are supported")
    samples = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(samples):
        positions = np.arange(0, len(samples), rate / SAMPLE_RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return samples.astype(np.int16)


class WavSource:
    """A 16-bit WAV file at any rate and channel count; silence after its end, or
    from its start again with ``loop`` (music on hold, a bot's announcement)."""

    def __init__(self, path: str, loop: bool = False) -> None:
        with wave.open(path, "rb") as wav:
            raw = wav.readframes(wav.getnframes())
            self._samples = _to_pipeline_format(raw, wav.getframerate(), wav.getnchannels(),
                                                wav.getsampwidth())
        self._offset = 0
        self._loop = loop and len(self._samples) > 0

    def read(self) -> bytes:
        chunk = self._samples[self._offset:self._offset + FRAME_SAMPLES]
        self._offset += FRAME_SAMPLES
        if self._loop and len(chunk) < FRAME_SAMPLES:
            self._offset = FRAME_SAMPLES - len(chunk)
            chunk = np.concatenate([chunk, self._samples[:self._offset]])
        data = chunk.tobytes()
        return data + bytes(FRAME_BYTES - len(data))

    def close(self) -> None:
        pass


class NullSink:
    def write(self, pcm: bytes) -> None:
        pass

    def close(self) -> None:
        pass


class WavSink:
    """Writes 48 kHz mono 16-bit. The header is patched after every frame
    (``writeframes``), so the file is a whole WAV of what was heard at any moment:
    a tool that reads it when the session's DEINIT arrives finds the call in it,
    whenever the worker gets round to closing the sink."""

    def __init__(self, path: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._wav = wave.open(path, "wb")  # noqa: SIM115
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)

    def write(self, pcm: bytes) -> None:
        self._wav.writeframes(pcm)

    def close(self) -> None:
        self._wav.close()


class _DeviceStream:
    """A sounddevice raw stream decoupled from our clock by a short queue."""

    def __init__(self, output: bool) -> None:
        import sounddevice

        self._queue: collections.deque[bytes] = collections.deque(maxlen=10)
        self._lock = threading.Lock()
        kind = sounddevice.RawOutputStream if output else sounddevice.RawInputStream
        self._stream = kind(samplerate=SAMPLE_RATE, channels=1, dtype="int16",
                            blocksize=FRAME_SAMPLES, callback=self._callback)
        self._output = output
        self._stream.start()

    def _callback(self, data: Any, frames: int, _time: Any, _status: Any) -> None:
        with self._lock:
            if self._output:
                chunk = self._queue.popleft() if self._queue else SILENCE
                data[:] = chunk[:len(data)]
            else:
                self._queue.append(bytes(data))

    def read(self) -> bytes:
        with self._lock:
            return self._queue.popleft() if self._queue else SILENCE

    def write(self, pcm: bytes) -> None:
        with self._lock:
            self._queue.append(pcm)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


def open_source(spec: str) -> Source:
    if spec == "silence":
        return SilenceSource()
    if spec.startswith("tone:"):
        return ToneSource(float(spec[5:]))
    if spec.startswith("file:"):
        return WavSource(spec[5:])
    if spec.startswith("loop:"):
        return WavSource(spec[5:], loop=True)
    try:
        return _DeviceStream(output=False)
    except Exception as exc:
        log.warning("audio.input: no sound card (%s); sending silence", exc)
        return SilenceSource()


def sid_file_name(sid: str) -> str:
    """A file name for a session id, which the peer chose: Conversations' sids are
    base64 (``/``, ``+``), and a hostile one may say ``../``. Only letters, digits,
    ``_`` and ``-`` stay; a sid that needed changes gets a short hash of itself, so
    two sids never share a name."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", sid)
    if cleaned == sid and 0 < len(sid) <= 64:
        return sid
    return f"{cleaned[:48]}-{hashlib.sha256(sid.encode()).hexdigest()[:12]}"


def open_sink(spec: str, sid: str) -> Sink:
    """``file:`` paths may contain ``{sid}`` so concurrent calls get files of their own;
    the sid is made a safe file name first (:func:`sid_file_name`)."""
    if spec == "null":
        return NullSink()
    if spec.startswith("file:"):
        return WavSink(spec[5:].replace("{sid}", sid_file_name(sid)))
    try:
        return _DeviceStream(output=True)
    except Exception as exc:
        log.warning("audio.output: no sound card (%s); discarding received audio", exc)
        return NullSink()
