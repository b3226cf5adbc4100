"""Shared fixtures."""

from __future__ import annotations

import pytest

from audio_upscaler.audio import Audio

from .signals import band_limited


@pytest.fixture
def speechlike_8k() -> Audio:
    """Three seconds of 8 kHz, band-limited content."""
    return band_limited(48_000, 3.0, 8_000)
