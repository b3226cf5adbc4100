"""Real codec round trips: same shape, sample-aligned, lossy in the expected way."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from audio_upscaler import codecs
from audio_upscaler.errors import UpscalerError

from .signals import xcorr_peak_lag


def broadband(sample_rate: int, seconds: float, channels: int = 1, seed: int = 7) -> np.ndarray:
    """Bursts of white noise plus an exponential chirp: ``[channels, T]`` float32, peak < 1."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    chirp = signal.chirp(t, 100.0, seconds, 0.45 * sample_rate, method="logarithmic")
    gate = (np.sin(2 * np.pi * 3.0 * t) > 0).astype(float)
    x = 0.3 * chirp + 0.15 * gate * rng.standard_normal((channels, n))
    return x.astype(np.float32)


def test_measured_delays_match_the_documented_constants():
    rate = 44100
    # LAME: 576 encoder delay + 529 decoder delay; AAC: 1024 priming samples (ADTS keeps them).
    assert codecs.codec_delay(codecs.codec_setting("mp3", 128), rate) == 576 + 529
    assert codecs.codec_delay(codecs.codec_setting("mp3", vbr_quality=2), rate) == 576 + 529
    assert codecs.codec_delay(codecs.codec_setting("aac", 128), rate) == 1024
    # Ogg demuxers apply Opus' pre-skip (312 at 48 kHz) and Vorbis' first-block overlap.
    assert codecs.codec_delay(codecs.codec_setting("opus", 96), 48000) == 0
    assert codecs.codec_delay(codecs.codec_setting("vorbis", 128), rate) == 0


@pytest.mark.parametrize("codec,kwargs,rate,channels", [
    ("mp3", {"bitrate_kbps": 32}, 44100, 1),     # LAME lowers the coded rate here
    ("mp3", {"bitrate_kbps": 128}, 48000, 2),
    ("mp3", {"bitrate_kbps": 320}, 44100, 1),
    ("mp3", {"vbr_quality": 5}, 44100, 2),
    ("aac", {"bitrate_kbps": 64}, 44100, 1),
    ("aac", {"bitrate_kbps": 192}, 48000, 2),
    ("opus", {"bitrate_kbps": 24}, 48000, 2),    # SILK/hybrid mode, decoder leads slightly
    ("opus", {"bitrate_kbps": 128}, 44100, 1),   # via 48 kHz
    ("opus", {"bitrate_kbps": 320}, 48000, 1),   # above libopus's 256 kbps/channel: capped
    ("vorbis", {"bitrate_kbps": 64}, 44100, 1),
    ("vorbis", {"vbr_quality": 8}, 22050, 2),
    ("mp3", {"bitrate_kbps": 96}, 96000, 1),     # coded at 48 kHz
    ("mp3", {"bitrate_kbps": 128, "mp3_quality": 5}, 44100, 2),  # the codec check's faster LAME setting
])
def test_roundtrip_keeps_shape_and_alignment(codec, kwargs, rate, channels):
    x = broadband(rate, 1.0, channels)
    y = codecs.roundtrip(x, rate, codec, **kwargs)
    assert y.shape == x.shape and y.dtype == np.float32
    assert xcorr_peak_lag(x, y) == 0
    corr = float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))
    assert corr > 0.5, corr


def test_mp3_quality_changes_the_encoding_not_its_alignment():
    """LAME's algorithm quality (the codec check codes at 5, the MP3 tasks at 2): another encode,
    not a copy, with the same length and delay."""
    x = broadband(44100, 1.0, 1)
    fine, fast = (codecs.roundtrip(x, 44100, "mp3", 128, mp3_quality=q) for q in (2, 5))
    assert not np.array_equal(fine, fast)
    assert np.array_equal(fine, codecs.roundtrip(x, 44100, "mp3", 128))  # 2 is the default
    assert xcorr_peak_lag(fine, fast) == 0


def test_higher_bitrate_means_smaller_error_and_wider_band():
    rate = 44100
    x = broadband(rate, 1.0)
    errors, top_energy = [], []
    for kbps in (48, 128, 320):
        y = codecs.roundtrip(x, rate, "mp3", kbps)
        errors.append(float(np.mean((y - x) ** 2)))
        f, p = signal.welch(y[0], rate, nperseg=2048)
        top_energy.append(float(p[f > 16000].sum() / p.sum()))
    assert errors[0] > errors[1] > errors[2]
    f, p = signal.welch(x[0], rate, nperseg=2048)
    # 48 kbps LAME low-passes far below 16 kHz; 320 kbps keeps most of the content up there.
    assert top_energy[0] < 1e-3 * p[f > 16000].sum() / p.sum()
    assert top_energy[2] > 0.5 * p[f > 16000].sum() / p.sum()


def test_roundtrip_is_deterministic_and_handles_odd_shapes():
    rate = 32000
    x = broadband(rate, 0.5, channels=3)
    y1 = codecs.roundtrip(x, rate, "aac", 96)
    y2 = codecs.roundtrip(x, rate, "aac", 96)
    np.testing.assert_array_equal(y1, y2)
    assert y1.shape == (3, x.shape[1])
    assert codecs.roundtrip(x[:, :100], rate, "opus", 64).shape == (3, 100)
    assert codecs.roundtrip(x[:, :0], rate, "vorbis").shape == (3, 0)


@pytest.mark.parametrize("kwargs,message", [
    ({"codec": "wma"}, "unknown codec"),
    ({"codec": "mp3", "bitrate_kbps": 128, "vbr_quality": 2}, "not both"),
    ({"codec": "aac", "vbr_quality": 2}, "no quality mode"),
    ({"codec": "mp3", "bitrate_kbps": 1000}, "bitrate must be within"),
    ({"codec": "vorbis", "vbr_quality": 11}, "quality must be within"),
])
def test_bad_requests_raise_upscaler_error(kwargs, message):
    with pytest.raises(UpscalerError, match=message):
        codecs.roundtrip(np.zeros((1, 1000), np.float32), 44100, **kwargs)


def test_bad_audio_raises_upscaler_error():
    with pytest.raises(UpscalerError, match="channels, time"):
        codecs.roundtrip(np.zeros(1000, np.float32), 44100, "mp3")
    with pytest.raises(UpscalerError, match="NaN"):
        codecs.roundtrip(np.full((1, 1000), np.nan, np.float32), 44100, "mp3")
