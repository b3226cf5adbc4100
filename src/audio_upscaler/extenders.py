"""Band extenders: what predicts the missing high band, chosen by name.

A band extender turns the DSP-resampled signal ``[channels, time]`` at the output rate into a
full-band signal of the same shape whose content above the input's cutoff is the prediction;
the pipeline keeps only that part (see :func:`audio_upscaler.dsp.bands.merge_bands`), unless the
extender restores the whole band (``keeps_low_band`` false: codec-restoration models).

Names: ``sbr`` (non-neural spectral band replication), ``none`` (plain resampling), and every
neural model known to :mod:`audio_upscaler.models` once that package exists. ``auto`` picks
by analysis (see :func:`choose_extender`). With ``backend="onnxruntime"`` the neural names are
the models exported to ONNX (:mod:`audio_upscaler.export.onnx_backend`; torch is never imported).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from .errors import UpscalerError

NON_NEURAL = ("sbr", "none")
#: Runtimes for neural models: PyTorch checkpoints, or ONNX exports run by onnxruntime.
BACKENDS = ("torch", "onnxruntime")


class BandExtender(Protocol):
    """What the pipeline needs from a band extender."""

    name: str
    #: False when the extender's whole output replaces the input (codec restoration)
    keeps_low_band: bool

    def context_samples(self, sample_rate: int) -> int:
        """Samples of context needed on each side of a chunk for exact chunked output."""

    def alignment(self, sample_rate: int) -> int:
        """Chunk starts must be multiples of this many samples (frame or stride grid)."""

    def extend(self, base: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
        """``base [C, T]`` at ``sample_rate`` -> full-band ``[C, T]`` (zero delay)."""


class NativeRateExtender:
    """Base of the neural band extenders: a model that runs at its own ``native`` rate (0 = any)
    inside a pipeline at another rate. Each chunk is resampled to the native rate with soxr,
    processed by :meth:`_run` and resampled back; context, look-ahead and alignment are reported
    at the pipeline's rate (plus a margin for the resampler's edge transients).

    Subclasses set ``native_rate``, ``model_context``, ``model_lookahead`` and
    ``model_alignment`` (samples at the native rate) and implement :meth:`_run`.
    """

    #: Extra context (seconds) covering the resampler's edge transients.
    RESAMPLE_MARGIN_S = 0.02
    native_rate: int
    model_context: int
    model_lookahead: int
    model_alignment: int

    def __init__(self, name: str, keeps_low_band: bool):
        self.name = name
        self.keeps_low_band = keeps_low_band

    def _native(self, sample_rate: int) -> int:
        return self.native_rate or int(sample_rate)

    def _at_rate(self, samples: int, sample_rate: int) -> int:
        """Native-rate samples -> samples at ``sample_rate`` (plus the resampling margin)."""
        native = self._native(sample_rate)
        if native == sample_rate:
            return samples
        return math.ceil(samples * sample_rate / native) + math.ceil(self.RESAMPLE_MARGIN_S * sample_rate)

    def context_samples(self, sample_rate: int) -> int:
        return self._at_rate(self.model_context, sample_rate)

    def lookahead_samples(self, sample_rate: int) -> int:
        """Future input (samples at ``sample_rate``) an output sample depends on."""
        return self._at_rate(self.model_lookahead, sample_rate)

    def alignment(self, sample_rate: int) -> int:
        """Smallest step at ``sample_rate`` that is a whole number of model alignment steps."""
        step = self.model_alignment * int(sample_rate)
        return step // math.gcd(step, self._native(sample_rate))

    def extend(self, base: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
        """``base [C, T]`` float32 at ``sample_rate`` -> full-band ``[C, T]`` float32."""
        from .dsp.resample import resample

        native = self._native(sample_rate)
        x = base if native == sample_rate else resample(base, sample_rate, native)
        y = self._run(np.ascontiguousarray(x, np.float32), min(float(cutoff_hz), native / 2))
        if native != sample_rate:
            y = resample(y, native, sample_rate)
            n = base.shape[1]
            y = y[:, :n] if y.shape[1] >= n else np.pad(y, ((0, 0), (0, n - y.shape[1])))
        return y.astype(np.float32, copy=False)

    def _run(self, x: np.ndarray, cutoff_hz: float) -> np.ndarray:
        """The model on ``x [C, T]`` at the native rate -> ``[C, T]``."""
        raise NotImplementedError


class _SBR:
    """Adapter giving the DSP band replication the extender interface."""

    name = "sbr"
    keeps_low_band = True

    def __init__(self) -> None:
        from .dsp.bandext import SpectralBandReplication

        self._sbr = SpectralBandReplication()

    def context_samples(self, sample_rate: int) -> int:
        return self._sbr.context_samples(sample_rate)

    def alignment(self, sample_rate: int) -> int:
        return self._sbr.alignment(sample_rate)

    def extend(self, base: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
        return self._sbr.extend(base, sample_rate, cutoff_hz)


def lookahead_samples(extender: BandExtender, sample_rate: int) -> int:
    """Future input samples (at ``sample_rate``) one output sample of ``extender`` depends on:
    its own ``lookahead_samples`` (neural extenders), else its symmetric context."""
    own = getattr(extender, "lookahead_samples", None)
    return own(sample_rate) if own is not None else extender.context_samples(sample_rate)


class KeptLowBand:
    """``inner`` (a restoration model, which replaces the whole band) used as a band extender:
    the pipeline keeps the input below the cutoff and takes ``inner``'s output above it. For
    decoded lossy files with no codec holes to fill (:meth:`audio_upscaler.pipeline.Upscaler`'s
    plan), where the decoded band is as good as the model's. Everything else is ``inner``'s."""

    keeps_low_band = True

    def __init__(self, inner: BandExtender) -> None:
        self.inner = inner

    def __getattr__(self, attr: str):
        return getattr(self.inner, attr)


class AirExtension:
    """``inner`` (a neural extender whose prediction stops at its native Nyquist frequency, 24 kHz
    for a 48 kHz model) continued above that top by band replication, for ``air`` at high output
    rates: a 96 kHz output then gets content up to 48 kHz instead of an empty band over 24 kHz.
    Same interface as ``inner``; context and alignment cover both stages."""

    #: Band replication starts this far under the inner model's Nyquist frequency: the top few
    #: hundred Hz of its output lie in the resampler's transition band.
    TOP_FRACTION = 0.96

    def __init__(self, inner: BandExtender, top_hz: float) -> None:
        self.inner, self.top_hz = inner, float(top_hz)
        self.name, self.keeps_low_band = inner.name, inner.keeps_low_band
        self._sbr = _SBR()

    def context_samples(self, sample_rate: int) -> int:
        return self.inner.context_samples(sample_rate) + self._own_context(sample_rate)

    def lookahead_samples(self, sample_rate: int) -> int:
        return lookahead_samples(self.inner, sample_rate) + self._own_context(sample_rate)

    def _own_context(self, sample_rate: int) -> int:
        from .dsp.bands import merge_context

        return self._sbr.context_samples(sample_rate) + merge_context(sample_rate, self.top_hz)

    def alignment(self, sample_rate: int) -> int:
        return math.lcm(self.inner.alignment(sample_rate), self._sbr.alignment(sample_rate))

    def extend(self, base: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
        """``base [C, T]`` -> ``[C, T]``: the inner prediction, with band replication above
        ``max(top_hz, cutoff_hz)`` (band replication adds only above its cutoff).

        Input content that reaches above ``top_hz`` (a cutoff over the inner model's Nyquist
        frequency, such as a 96 kHz recording) lies where the inner model's output is empty, so
        there band replication works on ``base``: a band extender has nothing to add under such a
        cutoff (the pipeline keeps the input there) and is not run; a restoration model's output
        (used whole) is taken up to ``top_hz`` and ``base`` above it."""
        cutoff_hz = float(cutoff_hz)
        if cutoff_hz <= self.top_hz:
            predicted = self.inner.extend(base, sample_rate, cutoff_hz)
        elif self.keeps_low_band:
            predicted = base
        else:
            from .dsp.bands import merge_bands

            predicted = merge_bands(self.inner.extend(base, sample_rate, cutoff_hz), base, sample_rate, self.top_hz)
        return self._sbr.extend(predicted, sample_rate, max(self.top_hz, cutoff_hz))


def with_air(extender: BandExtender | None, sample_rate: int) -> BandExtender | None:
    """``extender`` continued by band replication above its native Nyquist frequency when that
    lies under ``sample_rate / 2`` (a neural model at 48 kHz in a 96 kHz pipeline); else itself."""
    native = getattr(extender, "native_rate", 0)
    if extender is None or not native or native >= sample_rate:
        return extender
    return AirExtension(extender, AirExtension.TOP_FRACTION * native / 2)


def available_names(backend: str = "torch") -> list[str]:
    """Every name :func:`get_extender` accepts, besides ``auto``."""
    return [*NON_NEURAL, *_neural_names(backend)]


def _neural_names(backend: str = "torch") -> list[str]:
    if backend == "onnxruntime":
        from .export import onnx_backend

        return onnx_backend.available_models()
    try:
        from .models import registry
    except ImportError:
        return []
    return list(registry.available_models())


def get_extender(name: str, backend: str = "torch") -> BandExtender | None:
    """Build the extender called ``name``; ``None`` for ``none`` (plain resampling)."""
    if name == "none":
        return None
    if name == "sbr":
        return _SBR()
    if backend == "onnxruntime":
        from .export import onnx_backend

        return onnx_backend.load_extender(name)  # an installed export's name or a folder/.onnx path
    if name in _neural_names():
        from .models import registry

        return registry.load_extender(name)
    choices = ", ".join(["auto", *available_names()])
    raise UpscalerError(f"unknown model '{name}'; choose one of: {choices}")


def choose_extender(requested: str, full_band: bool, lossy: bool, backend: str = "torch",
                    why_lossy: str = "lossy-codec fingerprint found") -> tuple[str, str]:
    """Resolve ``auto`` to a concrete name. Returns ``(name, reason)``; ``why_lossy`` words the
    reason when ``lossy``. On onnxruntime the reason also says when the chosen installed export
    cannot be checked against the installed weights of its name
    (:func:`~audio_upscaler.export.onnx_backend.source_note`)."""
    name, reason = _choose(requested, full_band, lossy, backend, why_lossy)
    if backend == "onnxruntime" and name not in NON_NEURAL:
        from .export import onnx_backend

        note = onnx_backend.source_note(name)
        if note:
            reason = f"{reason}; {note}"
    return name, reason


def _choose(requested: str, full_band: bool, lossy: bool, backend: str, why_lossy: str) -> tuple[str, str]:
    if requested != "auto":
        return requested, "chosen by the user"
    if full_band:
        return "none", "the input is already full band; resampling only"
    neural = _neural_names(backend)
    if lossy and "restore" in neural:
        return "restore", why_lossy
    if "default" in neural:
        if lossy:
            if backend == "onnxruntime":  # the shipped restore is installed; what is missing is its export
                return "default", (f"{why_lossy}, but no 'restore' model is exported to ONNX "
                                   "(`audio-upscaler export restore` makes one)")
            return "default", f"{why_lossy}, but no 'restore' model is installed"
        return "default", "band-limited input"
    if backend == "onnxruntime":
        return "sbr", ("band-limited input (no model exported to ONNX: `audio-upscaler export default "
                       "--format onnx` makes one; using band replication)")
    return "sbr", "band-limited input (no neural model installed; using band replication)"
