"""Upscale settings shared by Studio and Batch: the controls, their parsing, and a cache of
:class:`audio_upscaler.pipeline.Upscaler` objects (models are loaded on first use, then kept)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..errors import UpscalerError

RATES = (44_100, 48_000, 88_200, 96_000, 176_400, 192_000, 352_800, 384_000)
FORMATS = ("flac", "wav", "aiff", "alac", "mp3", "ogg", "opus", "m4a")  # m4a: AAC; alac: Apple Lossless in .m4a
LOSSLESS = ("flac", "wav", "aiff", "alac")
BIT_DEPTHS = ("16", "24", "32 (float)")
STEREO = ("independent", "mid-side")


def model_choices() -> list[str]:
    """``auto``, ``sbr``, ``none`` and every installed model (read now, so new exports appear)."""
    from ..models.registry import upscaler_models

    return ["auto", "sbr", "none", *upscaler_models()]


@dataclass(frozen=True)
class Options:
    """One set of upscale settings, checked. Rates in Hz, levels in dBFS."""

    model: str
    rate: int
    container: str
    bit_depth: int | None
    stereo: str
    normalize_dbfs: float | None
    codec_check: bool = False

    def output_format(self):
        """The :class:`audio_upscaler.io.OutputFormat` (raises for rates the format cannot store)."""
        from ..io import output_format_for

        fmt = output_format_for(f"out.{self.extension}", format=self.container, bit_depth=self.bit_depth)
        fmt.validate_rate(self.rate)
        return fmt

    @property
    def extension(self) -> str:
        """The output files' extension (no dot)."""
        from ..io_formats import extension_for

        return extension_for(self.container)

    def upscaler_key(self) -> tuple:
        return (self.model, self.rate, self.stereo, self.normalize_dbfs, self.codec_check)


def parse_options(model, rate, container, bit_depth, stereo, normalize, level, codec_check=False) -> Options:
    """Options from the raw control values; :class:`UpscalerError` for anything invalid."""
    if model not in model_choices():
        raise UpscalerError(f"unknown model '{model}'; reload the page to refresh the list")
    try:
        rate = int(float(rate))
    except (TypeError, ValueError, OverflowError):  # OverflowError: "inf"
        raise UpscalerError(f"target rate must be a number of Hz, not {rate!r}") from None
    if container not in FORMATS:
        raise UpscalerError(f"output format must be one of {', '.join(FORMATS)}")
    if stereo not in STEREO:
        raise UpscalerError(f"stereo mode must be one of {', '.join(STEREO)}")
    depth = int(str(bit_depth).split()[0]) if container in LOSSLESS else None
    options = Options(model, rate, container, depth, stereo, float(level) if normalize else None, bool(codec_check))
    options.output_format()  # fail now: wrong bit depth for the format, rate the format cannot hold
    return options


class UpscalerCache:
    """Keeps the last ``size`` :class:`Upscaler` objects by settings, so their band extenders
    (neural weights) are loaded once; ``Upscaler`` keeps no per-file state, so sessions share them."""

    def __init__(self, size: int = 8):
        self.size = size
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, options: Options):
        from ..pipeline import Upscaler

        key = options.upscaler_key()
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        upscaler = Upscaler(options.model, options.rate, stereo=options.stereo, normalize_dbfs=options.normalize_dbfs,
                            codec_check=options.codec_check)
        with self._lock:
            self._items[key] = upscaler
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return upscaler


@dataclass
class Controls:
    """The Gradio components of one settings panel (values in :func:`parse_options` order)."""

    model: object
    rate: object
    container: object
    bit_depth: object
    stereo: object
    normalize: object
    level: object
    codec_check: object

    def inputs(self) -> list:
        return [self.model, self.rate, self.container, self.bit_depth, self.stereo, self.normalize, self.level,
                self.codec_check]


def build_controls(prefix: str) -> Controls:
    """Create the settings components (inside the current Gradio layout); ``prefix`` makes the
    element ids unique per tab."""
    import gradio as gr

    with gr.Group():
        with gr.Row():
            model = gr.Dropdown(model_choices(), value="auto", label="Model", elem_id=f"{prefix}_model",
                                info="auto picks by analysis; sbr = band replication; none = resampling only")
            rate = gr.Dropdown(list(RATES), value=48_000, label="Target rate (Hz)", allow_custom_value=True,
                               elem_id=f"{prefix}_rate")
        with gr.Row():
            container = gr.Dropdown(list(FORMATS), value="flac", label="Output format", elem_id=f"{prefix}_format")
            bit_depth = gr.Dropdown(list(BIT_DEPTHS), value="24", label="Bit depth (WAV/FLAC/AIFF)",
                                    elem_id=f"{prefix}_depth")
            stereo = gr.Dropdown(list(STEREO), value="independent", label="Stereo", elem_id=f"{prefix}_stereo")
        with gr.Row():
            normalize = gr.Checkbox(False, label="Peak-normalize", elem_id=f"{prefix}_normalize")
            level = gr.Slider(-12.0, 0.0, value=-1.0, step=0.5, label="Peak level (dBFS)", elem_id=f"{prefix}_level")
            codec_check = gr.Checkbox(False, label="Codec check (MP3/AAC/Opus/Vorbis files)", elem_id=f"{prefix}_codec_check",
                                      info="restore: re-encode with the file's codec and take back what it would "
                                           "have kept; more faithful, about 2x slower")
    return Controls(model, rate, container, bit_depth, stereo, normalize, level, codec_check)
