"""Integrated loudness (ITU-R BS.1770-4), measured block by block in flat memory.

The K-weighting pre-filter (a +4 dB high shelf and a 38 Hz high-pass) is designed for any
sample rate from its analog prototype, which reproduces the standard's 48 kHz coefficients.
Mean squares are collected per 100 ms step; four consecutive steps form one 400 ms gating
block (75 % overlap).  Block loudness values go into a fine histogram (0.01 LU bins holding
the summed block energy), so the two gates (absolute -70 LUFS, relative -10 LU) need no
per-block storage: the error this adds is below 0.01 LU.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
STEP_SECONDS = 0.1  # 400 ms blocks with 75 % overlap advance by 100 ms
STEPS_PER_BLOCK = 4
_HIST_TOP_LUFS = 30.0
_HIST_BIN_LU = 0.01
_N_BINS = round((_HIST_TOP_LUFS - ABSOLUTE_GATE_LUFS) / _HIST_BIN_LU)


def k_weighting_sos(sample_rate: int) -> np.ndarray:
    """Second-order sections ``[2, 6]`` of the BS.1770 K-weighting filter at ``sample_rate``.

    Below about 3.4 kHz the shelf's centre (1.68 kHz) lies above the Nyquist frequency, where
    the bilinear design turns unstable; the shelf is then left out (a pass-through section).
    """
    # Stage 1: high shelf (head acoustics); analog prototype parameters fitted to BS.1770.
    shelf_hz = 1681.974450955533
    k = np.tan(np.pi * shelf_hz / sample_rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
        1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0,
    ]
    if shelf_hz >= 0.5 * sample_rate:
        shelf = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    # Stage 2: RLB high-pass.
    k = np.tan(np.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    highpass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, highpass])


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights ``[channels]``.

    Up to 5 channels: L, R, C, Ls, Rs (weights 1, 1, 1, 1.41, 1.41), as pyloudnorm does.
    6 to 8 channels: the 5.1/7.1 order L, R, C, LFE, Ls, Rs, ... with the LFE (index 3)
    left out and every surround channel weighted 1.41.
    """
    if channels <= 5:
        return np.array([1.0, 1.0, 1.0, 1.41, 1.41][:channels])
    return np.array([1.0, 1.0, 1.0, 0.0] + [1.41] * (channels - 4))


def block_loudness(weighted_energy: np.ndarray) -> np.ndarray:
    """LUFS of channel-weighted mean squares (any shape)."""
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(weighted_energy)


class LoudnessMeter:
    """Integrated loudness of a stream fed as blocks ``[channels, n]`` (float, full scale 1.0)."""

    def __init__(self, sample_rate: int, channels: int):
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._sos = k_weighting_sos(self.sample_rate)
        self._zi = np.zeros((2, self.channels, 2))
        self._weights = channel_weights(self.channels)
        self._step = max(1, round(STEP_SECONDS * self.sample_rate))
        self._partial = np.zeros((self.channels, 0))  # squared K-weighted samples of the open step
        self._recent = np.zeros((self.channels, 0))  # energy sums of the last (<= 3) full steps
        self._energy = np.zeros(_N_BINS)  # summed weighted block energy per loudness bin
        self._count = np.zeros(_N_BINS, dtype=np.int64)

    def update(self, block: np.ndarray) -> None:
        """Add samples ``[channels, n]``."""
        y, self._zi = sosfilt(self._sos, np.asarray(block, dtype=np.float64), axis=-1, zi=self._zi)
        squared = np.concatenate([self._partial, y * y], axis=1)
        n_steps = squared.shape[1] // self._step
        used = n_steps * self._step
        self._partial = squared[:, used:]
        if n_steps == 0:
            return
        steps = squared[:, :used].reshape(self.channels, n_steps, self._step).sum(axis=2)
        steps = np.concatenate([self._recent, steps], axis=1)
        self._recent = steps[:, -(STEPS_PER_BLOCK - 1):]
        if steps.shape[1] < STEPS_PER_BLOCK:
            return
        sums = np.cumsum(np.pad(steps, ((0, 0), (1, 0))), axis=1)
        blocks = (sums[:, STEPS_PER_BLOCK:] - sums[:, :-STEPS_PER_BLOCK]) / (STEPS_PER_BLOCK * self._step)
        self._add_blocks(self._weights @ blocks)

    def _add_blocks(self, energy: np.ndarray) -> None:
        loudness = block_loudness(energy)
        keep = loudness >= ABSOLUTE_GATE_LUFS
        bins = np.clip(((loudness[keep] - ABSOLUTE_GATE_LUFS) / _HIST_BIN_LU).astype(np.int64), 0, _N_BINS - 1)
        self._energy += np.bincount(bins, weights=energy[keep], minlength=_N_BINS)
        self._count += np.bincount(bins, minlength=_N_BINS)

    def integrated(self) -> float:
        """Gated integrated loudness in LUFS; ``-inf`` when no block passes the gates
        (shorter than 400 ms, or quieter than -70 LUFS throughout)."""
        if self._count.sum() == 0:
            return float("-inf")
        relative_gate = block_loudness(self._energy.sum() / self._count.sum()) + RELATIVE_GATE_LU
        first = int(np.ceil((relative_gate - ABSOLUTE_GATE_LUFS) / _HIST_BIN_LU))
        first = min(max(first, 0), _N_BINS - 1)
        count = self._count[first:].sum()
        if count == 0:
            return float("-inf")
        return float(block_loudness(self._energy[first:].sum() / count))
