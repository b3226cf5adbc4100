"""Spectrogram-domain metrics: spectral convergence, spectrogram SSIM, centroid / roll-off
distance and MFCC distance. Inputs ``[channels, time]`` of the same shape; results are averaged
over channels. All use a 2048-point Hann STFT with hop 512 (as the LSD)."""

from __future__ import annotations

import functools

import numpy as np
from scipy import fft, ndimage

from .common import as_pair, stft_magnitude

N_FFT = 2048
HOP = 512


def _spectrograms(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = as_pair(reference, estimate)
    return stft_magnitude(ref, N_FFT, HOP), stft_magnitude(est, N_FFT, HOP)


def spectral_convergence(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``|| |S_ref| - |S_est| ||_F / || |S_ref| ||_F`` (0 for identical signals)."""
    ref, est = _spectrograms(reference, estimate)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.linalg.norm(ref - est, axis=(1, 2)) / np.linalg.norm(ref, axis=(1, 2))))


def _ssim(a: np.ndarray, b: np.ndarray, data_range: float, sigma: float = 1.5) -> float:
    """Mean Gaussian-window SSIM of two 2-D images (Wang et al. 2004, K1 = 0.01, K2 = 0.03)."""
    blur = functools.partial(ndimage.gaussian_filter, sigma=sigma, truncate=3.5, mode="reflect")
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def spectrogram_ssim(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SSIM of the log10 power spectrograms (floor 1e-8); 1 for identical signals.

    The data range is that of the reference's log spectrogram.
    """
    ref, est = _spectrograms(reference, estimate)
    log_ref = np.log10(np.maximum(ref**2, 1e-8))
    log_est = np.log10(np.maximum(est**2, 1e-8))
    scores = [_ssim(r, e, max(float(r.max() - r.min()), 1e-6)) for r, e in zip(log_ref, log_est)]
    return float(np.mean(scores))


def _bin_freqs(sample_rate: int) -> np.ndarray:
    return np.arange(N_FFT // 2 + 1) * sample_rate / N_FFT


def spectral_centroid_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mean over frames of ``|centroid_ref - centroid_est|`` in Hz (magnitude-weighted
    centroids; a silent frame has centroid 0)."""
    ref, est = _spectrograms(reference, estimate)
    freqs = _bin_freqs(sample_rate)[None, :, None]

    def centroid(mag: np.ndarray) -> np.ndarray:
        return (freqs * mag).sum(1) / np.maximum(mag.sum(1), 1e-12)

    return float(np.abs(centroid(ref) - centroid(est)).mean())


def rolloff_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                     roll_percent: float = 0.99) -> float:
    """Mean over frames of the roll-off difference in Hz; the roll-off is the lowest frequency
    below which ``roll_percent`` of the frame's power lies (0.99 watches the top band)."""
    ref, est = _spectrograms(reference, estimate)
    freqs = _bin_freqs(sample_rate)

    def rolloff(mag: np.ndarray) -> np.ndarray:
        cumulative = np.cumsum(mag**2, axis=1)
        index = np.argmax(cumulative >= roll_percent * cumulative[:, -1:, :], axis=1)
        return freqs[index]

    return float(np.abs(rolloff(ref) - rolloff(est)).mean())


@functools.lru_cache(maxsize=32)
def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = 80) -> np.ndarray:
    """Triangular filters ``[n_mels, n_fft // 2 + 1]`` equally spaced on the HTK mel scale from
    0 Hz to Nyquist, each normalized to unit area (Slaney style)."""
    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = to_hz(np.linspace(0.0, to_mel(np.array(sample_rate / 2)), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (high - low))


def mfcc(x: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_mels: int = 80) -> np.ndarray:
    """MFCCs ``[channels, n_mfcc, frames]``: power STFT -> mel filterbank -> dB -> DCT-II (ortho)."""
    power = stft_magnitude(x, N_FFT, HOP) ** 2
    mel = np.einsum("mf,cft->cmt", mel_filterbank(sample_rate, N_FFT, n_mels), power)
    return fft.dct(10.0 * np.log10(np.maximum(mel, 1e-10)), type=2, norm="ortho", axis=1)[:, :n_mfcc]


def mfcc_distance(reference: np.ndarray, estimate: np.ndarray, sample_rate: int,
                  n_mfcc: int = 20) -> float:
    """Mean over frames of the Euclidean distance between MFCC vectors ``c1..c{n_mfcc-1}``
    (``c0``, the overall level, is left out), in dB units."""
    ref, est = as_pair(reference, estimate)
    diff = mfcc(ref, sample_rate, n_mfcc)[:, 1:] - mfcc(est, sample_rate, n_mfcc)[:, 1:]
    return float(np.sqrt((diff**2).sum(1)).mean())
