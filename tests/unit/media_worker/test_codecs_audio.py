"""Codecs and audio sources/sinks: a known tone in, the same tone out."""

import wave

import numpy as np
import pytest

from media_worker.audio import ToneSource, WavSink, WavSource, open_sink, open_source
from media_worker.codecs import FRAME_BYTES, OpusCodec, PcmuCodec


def dominant_hz(pcm: bytes, rate: int = 48000) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("codec", [OpusCodec(), PcmuCodec()], ids=["opus", "pcmu"])
def test_codec_keeps_a_tone(codec):
    tone = ToneSource(440)
    out = b"".join(codec.decode(codec.encode(tone.read())) for _ in range(50))
    assert len(out) == 50 * FRAME_BYTES
    assert abs(dominant_hz(out[FRAME_BYTES * 10:]) - 440) < 5


def test_opus_conceals_with_plc_and_fec():
    codec = OpusCodec(fec=True)
    tone = ToneSource(660)
    packets = [codec.encode(tone.read()) for _ in range(20)]
    for p in packets[:10]:
        codec.decode(p)
    assert len(codec.conceal(packets[11])) == FRAME_BYTES  # FEC from the next packet
    assert len(codec.conceal(None)) == FRAME_BYTES  # PLC


def test_wav_sink_and_source_round_trip(tmp_path):
    path = tmp_path / "t.wav"
    sink = WavSink(str(path))
    tone = ToneSource(1000)
    for _ in range(25):
        sink.write(tone.read())
    sink.close()
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getnframes()) == (48000, 1, 25 * 960)
    source = WavSource(str(path))
    frames = b"".join(source.read() for _ in range(25))
    assert abs(dominant_hz(frames) - 1000) < 5
    assert source.read() == bytes(FRAME_BYTES)  # silence after the end
    looped = open_source(f"loop:{path}")
    again = b"".join(looped.read() for _ in range(50))
    assert again[:len(frames)] == frames and again[len(frames):] == frames  # on repeat


def test_wav_source_converts_rate_and_channels(tmp_path):
    path = tmp_path / "s.wav"
    t = np.arange(16000) / 16000
    stereo = np.stack([np.sin(2 * np.pi * 300 * t)] * 2, axis=1) * 10000
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(stereo.astype("<i2").tobytes())
    source = WavSource(str(path))
    frames = b"".join(source.read() for _ in range(50))
    assert abs(dominant_hz(frames) - 300) < 5


def test_default_devices_fall_back_without_a_sound_card(caplog):
    source = open_source("default")
    sink = open_sink("default", "sid1")
    assert len(source.read()) == FRAME_BYTES
    sink.write(bytes(FRAME_BYTES))
    source.close()
    sink.close()


def test_a_recording_is_a_whole_wav_before_it_is_closed(tmp_path):
    """Read while still open (as a tool reacting to DEINIT may): every frame written
    so far is in it and the header says so."""
    import wave

    path = tmp_path / "open.wav"
    sink = WavSink(str(path))
    tone = ToneSource(440)
    for _ in range(25):
        sink.write(tone.read())
    with wave.open(str(path)) as readable:
        assert readable.getnframes() == 25 * 960
        assert len(readable.readframes(readable.getnframes())) == 25 * 960 * 2
    sink.close()
