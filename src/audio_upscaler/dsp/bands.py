"""Band merge: keep the original band, take the extension only above the cutoff.

``merge_bands`` computes ``base + highpass(extension - base)`` with a linear-phase (centred,
zero-delay) Kaiser FIR high-pass ``delta - lowpass``. Because the two branches are exactly
complementary there is no comb filtering at the seam, and where ``extension == base`` the output
is ``base`` bit for bit.

Placement of the crossover: the whole transition lies *below* the cutoff, from
``cutoff - width`` to ``cutoff`` (centred ``width / 2`` below it). The cutoff is where the
input's content ends, so its last few hundred hertz are already the roll-off of an anti-alias or
codec filter; blending there means that everything above the cutoff comes from the extension at
full level (no hole at the seam), while below ``cutoff - width`` the output equals ``base``
within the filter's ripple (-90 dB). :func:`crossover_band` returns that interval.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import firwin, kaiserord, oaconvolve

from ..errors import UpscalerError

#: Ripple of the crossover in both bands (dB below the level of ``extension - base``).
ATTENUATION_DB = 90.0
#: Default crossover width (Hz); never more than a quarter of the cutoff.
DEFAULT_WIDTH_HZ = 400.0


def crossover_band(sample_rate: int, cutoff_hz: float, width_hz: float | None = None) -> tuple[float, float]:
    """``(low, high)`` Hz of the transition: output is ``base`` below ``low``, ``extension`` above ``high``."""
    width = _width(cutoff_hz, width_hz)
    if not 0 < cutoff_hz <= sample_rate / 2 or width <= 0:
        raise UpscalerError(
            f"cutoff {cutoff_hz:.0f} Hz must lie between 0 and the Nyquist frequency {sample_rate / 2:.0f} Hz"
        )
    return cutoff_hz - width, float(cutoff_hz)


def merge_bands(base: np.ndarray, extension: np.ndarray, sample_rate: int, cutoff_hz: float,
                width_hz: float | None = None) -> np.ndarray:
    """Merge ``base`` and ``extension`` (both float32 ``[C, T]`` at ``sample_rate``) -> ``[C, T]``.

    Below ``cutoff_hz - width_hz`` the result is ``base``, above ``cutoff_hz`` it is
    ``extension`` (both within -90 dB of ``extension - base``); zero delay.
    """
    base = np.asarray(base, dtype=np.float32)
    extension = np.asarray(extension, dtype=np.float32)
    if base.shape != extension.shape or base.ndim != 2:
        raise ValueError(f"base and extension must be equal [C, T] arrays, got {base.shape} and {extension.shape}")
    lowpass = crossover_taps(sample_rate, cutoff_hz, width_hz)
    diff = extension - base
    if diff.shape[1] == 0:
        return base.copy()
    low = oaconvolve(diff, lowpass[None, :], mode="same", axes=-1)
    return (base + (diff - low)).astype(np.float32)


def merge_context(sample_rate: int, cutoff_hz: float, width_hz: float | None = None) -> int:
    """Samples of context needed on each side of a chunk so chunked merge equals one-shot merge."""
    return (crossover_taps(sample_rate, cutoff_hz, width_hz).size - 1) // 2


def crossover_taps(sample_rate: int, cutoff_hz: float, width_hz: float | None = None) -> np.ndarray:
    """The crossover's low-pass (odd length, float32, read-only); the high-pass is ``delta - taps``."""
    low, high = crossover_band(sample_rate, cutoff_hz, width_hz)
    return _design(int(sample_rate), round(low, 3), round(high, 3))


def _width(cutoff_hz: float, width_hz: float | None) -> float:
    return float(width_hz) if width_hz is not None else min(DEFAULT_WIDTH_HZ, cutoff_hz / 4)


@lru_cache(maxsize=64)
def _design(sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    nyquist = sample_rate / 2
    numtaps, beta = kaiserord(ATTENUATION_DB, (high_hz - low_hz) / nyquist)
    numtaps |= 1  # odd: a whole-sample centre, so zero delay
    taps = firwin(numtaps, (low_hz + high_hz) / 2, window=("kaiser", beta), fs=sample_rate).astype(np.float32)
    taps.flags.writeable = False
    return taps
