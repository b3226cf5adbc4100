"""Family ``apnet``: frame-domain amplitude/phase network (the fast default candidate).

In the spirit of AP-BWE and the Vocos heads: the DSP-resampled input is turned into STFT
frames; per-frame features (log-amplitude, cosine and sine of the phase) go through a pointwise
projection, a stack of cutoff-conditioned ConvNeXt blocks over time, and two heads that predict
the full spectrum's log-amplitude and phase; the output is the inverse STFT. Work runs at frame
rate (``sample_rate / hop`` frames per second), not sample rate, which is what makes it fast.

Both heads are residual on a prior spectrum and start at zero, so an untrained model outputs the
prior: log-amplitude = prior log-amplitude + head, and the phase is the angle of (prior unit
phasor + a 2-D head output), i.e. ``atan2`` of two outputs as in AP-BWE, computed as a normalized
phasor so the gradient stays finite. With ``prior="copy"`` (default) the prior is the band below
the cutoff copied upwards with coherent phase (``blocks.copy_up_bins``, the idea of spectral band
replication), so training starts from an SBR-like extension and learns the envelope and fine
structure corrections; ``prior="none"`` uses the input spectrum itself.

Codec restoration (``fill_holes_db``, set in the shipped ``restore`` weights): the output keeps
every STFT bin of the input except those where the predicted amplitude is at least that many dB
louder (fully predicted from ``FILL_HOLES_RAMP_DB`` further up, blended in between). What the
codec kept stays as decoded, so waveform metrics such as SI-SDR lose next to nothing there, while
spectral holes and the band above the codec's cutoff, where the decoded spectrum is far below the
prediction, take the prediction. ``kept_bins="shrink"`` lets the model turn a kept bin down (never
up) to its predicted amplitude, keeping the decoded phase: quantization noise that made a bin too
loud can be removed without touching the phase, which SI-SDR rewards (with the true amplitudes
that alone gains 0.4-0.6 dB SI-SDR on 64-128 kbps MP3 music). ``kept_bins="rescale"`` sets every kept
bin to its predicted amplitude, up or down, still with the decoded phase (with the true amplitudes,
on the fixture's 128 kbps MP3 chorale: +5 dB SI-SDR, LSD 0.72 -> 0.62); it trusts the amplitude
head more.

``fill_phase_db`` (20 in the shipped ``restore``) re-analyses the filled output: every bin louder
than the input, where the input lies no more than that many dB under it, takes the input's phase
(its amplitude stays; blended over ``FILL_HOLES_RAMP_DB`` at both edges, so that float rounding
cannot flip a bin). Such a bin is a partial hole: the codec kept a quantized remnant that still
carries the original's phase, so the fill adds to the original instead of adding an unrelated
component to the error. A real hole (only leakage left, far under the fill) and the band above
the cutoff keep the predicted phase. This is done after the inverse STFT, on the output's own
spectrum: the amplitudes the heads predict are meant for their own, incoherent phases, and with
coherent phases in their place the overlap-add comes out louder (measured: SI-SDR worse, not better).

``fill_ceiling_db`` bounds what is filled: no output bin below the cutoff may exceed the loudest
decoded bin within about 4.5 kHz and one frame around it (``FILL_CEILING_BLOCK``) by more than
that many dB, and none above the cutoff the loudest decoded bin in the ``FILL_CEILING_EDGE_HZ``
below the cutoff (same frames). A codec zeroes only what fell under its quantization step, so what
it removed was never much louder than what it kept nearby, and a spectrum rarely rises past its
band edge; without the bound, models trained with ``kept_bins=rescale`` or ``coding_rates``
sometimes predicted single bins 30-40 dB too loud (bursts heard as chirps; seen at 18.7 kHz below
and at 20.1 kHz right above the cutoff of the fixture's 128 kbps speech).

``fill_loud_db`` / ``fill_loud_cut_db`` turn loud fills down: a predicted bin louder than the input
that lies within ``fill_loud_db`` of its frame's loudest input bin loses up to ``fill_loud_cut_db``
(none at that distance, all of it ``FILL_LOUD_RAMP_DB`` closer; the prediction must still be
``fill_holes_db`` over the input to be used). On corpus training clips coded as MP3 64/128 kbps the
shipped ``restore`` filled holes 40-60 dB under the frame's peak 2-9 dB louder than the original
(median), and a fill with its own phase adds its energy to the waveform error: the loud fills
carried most of the SI-SDR the fills cost while being few of the filled bins (model card).

The spectra are handled as (real, imag) pairs (:class:`~.blocks.RealSTFT`/``RealISTFT``, which
use ``torch.stft``/``istft`` in eager mode and DFT-basis convolutions for ONNX export), so the
whole model exports to ONNX and traces to TorchScript.

Geometry: frames sit on a ``hop`` grid anchored at the input start, so chunks whose starts
differ by multiples of ``hop`` and carry :meth:`~APNet.context_samples` of context on each side
reproduce a long call exactly. Within ``n_fft / 2`` of the very ends of one call the inverse STFT
sees fewer frames, so those samples differ from a longer call (the pipeline always supplies
context there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UpscalerError
from .base import UpscalerModel
from .blocks import ChannelLayerNorm, ConvNeXt1d, CutoffEmbedding, FiLM, RealISTFT, RealSTFT, copy_up_bins
from .registry import register

LOG_AMP_FLOOR = 1e-5
#: ``fill_holes_db``: the prediction takes over gradually over this many dB above the threshold
#: (a smooth mask: no switching noise between frames, and a small numeric change stays small).
FILL_HOLES_RAMP_DB = 3.0
#: ``fill_loud_db``: the cut grows from nothing at ``fill_loud_db`` under the frame's loudest input
#: bin to the full ``fill_loud_cut_db`` this many dB further up.
FILL_LOUD_RAMP_DB = 20.0
KEPT_BINS = ("input", "shrink", "rescale")  # what fill_holes_db does with the bins it keeps
#: ``fill_ceiling_db``: the neighbourhood whose loudest decoded bin bounds a fill below the cutoff
#: is the bin's block of ``FILL_CEILING_BLOCK`` bins and ``FILL_CEILING_BLOCKS`` blocks either side
#: (about +-4.5 kHz at 1024 points and 48 kHz; +-1.5 kHz also capped the wide holes of 64 kbps MP3
#: and cost 0.013 in LSD ratio on the fixture music), over the frame and its two neighbours. Block
#: maxima keep it cheap (a sliding 193-bin maximum quadrupled the model's run time).
FILL_CEILING_BLOCK = 16
FILL_CEILING_BLOCKS = 6
#: ``fill_ceiling_db``: the band above the cutoff is capped by the loudest decoded bin this far below it.
FILL_CEILING_EDGE_HZ = 4500.0
#: ``fill_holes_db``: bins below this frequency (Hz) always keep the input. Codecs spend their bits
#: on the lowest band and leave no holes there, but a quiet DC or sub-bass bin reads as one, and the
#: prediction there is poor: on speech after digital silence the shipped ``restore`` weights put a
#: DC offset of -28 dB into frames whose decoded DC bin lay at -53 to -75 dB (SI-SDR of a 320 kbps
#: MP3 56 -> 23 dB).
FILL_MIN_HZ = 100.0
#: frames over which bin 0 is averaged to estimate a DC offset (:func:`_without_dc`; 9 frames of the
#: shipped models span 64 ms at 48 kHz, 2.5 periods of 40 Hz; 5 to 65 frames measured alike, 1
#: (zeroing bin 0) much worse)
DC_FRAMES = 9
LOG_AMP_MAX = 8.0  # exp(8) ~ 3000 in STFT magnitude: far above any full-scale signal


@dataclass
class APNetConfig:
    """Constructor settings of :class:`APNet` (YAML: ``configs/apnet.yaml``)."""

    sample_rate: int = 48_000
    n_fft: int = 1024
    hop: int = 256
    dim: int = 192
    mult: float = 3.0
    n_blocks: int = 6
    kernel_size: int = 7
    cond_dim: int = 64
    prior: str = "copy"
    fill_holes_db: float | None = None  # keep input bins unless the prediction is this much louder
    kept_bins: str = "input"  # with fill_holes_db: "input" (as they are), "shrink" (may be turned down)
    #                           or "rescale" (set to the predicted amplitude); the decoded phase is kept
    fill_ceiling_db: float | None = None  # at most this far above the loudest decoded bin nearby / below the cutoff
    fill_phase_db: float | None = None  # after the fill, a louder output bin whose input lies at most this
    #                                     many dB under it (a partial hole) takes the input's phase
    fill_loud_db: float | None = None  # a fill within this many dB of its frame's loudest input bin ...
    fill_loud_cut_db: float = 0.0  # ... is turned down by up to this many dB (ramped over FILL_LOUD_RAMP_DB)


def _floored_amplitude(re: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
    """``|re + i im|`` floored at ``LOG_AMP_FLOOR`` (finite log and gradient); any shape."""
    return (re.square() + im.square()).clamp_min(LOG_AMP_FLOOR**2).sqrt()


def _without_dc(re: torch.Tensor, im: torch.Tensor,
                spectrum: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """``spectrum`` (log-amplitude, phase cosine, phase sine) ``[N, bins, frames]`` of the
    Hann-windowed STFT ``(re, im)``, for the frames with a DC offset removed (bins 0 and 1 change).

    A constant ``d`` adds ``d * n_fft / 2`` to bin 0 and ``-d * n_fft / 4`` to bin 1 of every frame
    (the periodic Hann window's spectrum). Its estimate is bin 0's mean over ``DC_FRAMES`` frames
    around each frame (real content down there changes faster), which is taken out of bin 0, and
    half of it out of bin 1. The network and the fill bounds (ceiling, loud fills) see the result:
    a DC offset of 0.01 otherwise moved ``default``'s band above the cutoff (LSD-HF +2 to +15 % on
    the fixture clips). The spectrum the heads correct, and the bins a hole-filling model keeps,
    stay the input's.
    """
    dc = nn.functional.avg_pool1d(re[:, :1], DC_FRAMES, stride=1, padding=DC_FRAMES // 2, count_include_pad=False)
    low_re, low_im = torch.cat([re[:, :1] - dc, re[:, 1:2] + 0.5 * dc], dim=1), im[:, :2]
    mag = _floored_amplitude(low_re, low_im)
    low = (mag.log(), low_re / mag, low_im / mag)
    return tuple(torch.cat([bins, whole[:, 2:]], dim=1) for bins, whole in zip(low, spectrum))


@register("apnet")
class APNet(UpscalerModel):
    """STFT-frame ConvNeXt predicting log-amplitude and phase; ``[B, C, T] -> [B, C, T]``."""

    config_class = APNetConfig
    description = "frame-domain amplitude/phase ConvNeXt (fast, non-causal, bounded context)"
    supports_streaming = True  # bounded receptive field: chunked/streamed output equals offline
    supports_onnx = True  # real-valued STFT pair; blocks.conv_stft swaps in DFT convolutions for export
    # The shared tests train from scratch (a 5x loss drop); test_apnet.py covers the copy prior.
    tiny_config = dict(n_fft=256, hop=64, dim=32, n_blocks=2, cond_dim=16, prior="none")
    tune_space = {"dim": [64, 128, 192, 256], "n_blocks": {"low": 3, "high": 8}, "kernel_size": [5, 7, 9]}

    def __init__(self, config: APNetConfig):
        super().__init__(config)
        c = config
        if c.prior not in ("copy", "none"):
            raise UpscalerError(f"apnet prior must be 'copy' or 'none', got {c.prior!r}")
        if c.kept_bins not in KEPT_BINS:
            raise UpscalerError(f"apnet kept_bins must be one of {', '.join(KEPT_BINS)}, got {c.kept_bins!r}")
        bins = c.n_fft // 2 + 1
        self.stft = RealSTFT(c.n_fft, c.hop)
        self.istft = RealISTFT(c.n_fft, c.hop)
        self.cutoff_embed = CutoffEmbedding(c.cond_dim, nyquist_hz=c.sample_rate / 2)
        self.embed = nn.Conv1d(3 * bins, c.dim, 1)
        self.embed_film = FiLM(c.cond_dim, c.dim)
        self.blocks = nn.ModuleList(
            ConvNeXt1d(c.dim, c.mult, c.kernel_size, cond_dim=c.cond_dim) for _ in range(c.n_blocks)
        )
        self.norm = ChannelLayerNorm(c.dim)
        self.amp_head = nn.Conv1d(c.dim, bins, 1)
        self.phase_head = nn.Conv1d(c.dim, 2 * bins, 1)
        for head in (self.amp_head, self.phase_head):  # start as the identity: output = input
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        bin_hz = torch.arange(bins, dtype=torch.float32) * (c.sample_rate / c.n_fft)
        self.register_buffer("_fillable", (bin_hz >= FILL_MIN_HZ).float(), persistent=False)  # [bins]

    # ------------------------------------------------------------------ geometry

    def alignment(self) -> int:
        return self.config.hop

    def receptive_field(self) -> int:
        """Frames reach ``n_blocks * (kernel - 1) / 2`` frames each side; each frame spans
        ``n_fft`` samples for analysis and again for overlap-add (and once more with
        ``fill_phase_db``, which analyses the output again); bin 0's DC estimate
        (:func:`_without_dc`) reaches ``DC_FRAMES // 2`` frames further."""
        c = self.config
        frames = c.n_blocks * (c.kernel_size // 2) + DC_FRAMES // 2 + (1 if c.fill_ceiling_db is not None else 0)
        reanalysis = c.n_fft if c.fill_phase_db is not None else 0  # fill_phase_db's second STFT
        return 2 * (frames * c.hop + c.n_fft + reanalysis) + 1

    # ------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """``x [B, C, T]`` at ``sample_rate``, ``cutoff_hz [B]`` (Hz; a scalar applies to all) -> ``[B, C, T]``."""
        b, ch, t = x.shape
        n = self.valid_length(t)
        flat = nn.functional.pad(x.reshape(b * ch, t), (0, n - t))
        cutoff = torch.as_tensor(cutoff_hz, dtype=torch.float32, device=x.device).reshape(-1).expand(b)
        cutoff = cutoff.repeat_interleave(ch)  # [N]: one per flattened channel
        cond = self.cutoff_embed(cutoff)

        in_re, in_im = self.stft(flat)  # [N, bins, frames] each
        mag = _floored_amplitude(in_re, in_im)  # |X| floored, finite gradient
        spectrum = (mag.log(), in_re / mag, in_im / mag)  # the prior the heads correct
        seen = _without_dc(in_re, in_im, spectrum)  # what the network and the fill bounds see
        in_log_amp, seen_log_amp = spectrum[0], seen[0]
        if self.config.prior == "copy":  # start from the band below the cutoff copied upwards
            c = self.config
            source = copy_up_bins(cutoff, c.n_fft, c.hop, c.sample_rate)[:, :, None]
            source = source.expand_as(mag)
            spectrum, seen = (tuple(t.gather(1, source) for t in group) for group in (spectrum, seen))
        log_amp, phase_re, phase_im = spectrum
        feats = torch.cat(seen, dim=1)

        h = self.embed_film(self.embed(feats), cond)
        for block in self.blocks:
            h = block(h, cond)
        h = self.norm(h)

        out_log_amp = (log_amp + self.amp_head(h)).clamp(max=LOG_AMP_MAX)
        if self.config.fill_ceiling_db is not None:
            out_log_amp = self._fill_ceiling(out_log_amp, seen_log_amp, cutoff)
        if self.config.fill_loud_db is not None:
            out_log_amp = self._quieter_loud_fills(out_log_amp, seen_log_amp)
        d_re, d_im = self.phase_head(h).chunk(2, dim=1)
        re, im = phase_re + d_re, phase_im + d_im
        scale = out_log_amp.exp() / (re.square() + im.square() + 1e-9).sqrt()  # amplitude / |phasor|
        out_re, out_im = re * scale, im * scale
        if self.config.fill_holes_db is not None:  # keep the input's bins where it is not a hole
            louder = out_log_amp - in_log_amp  # natural log of the amplitude ratio
            take = ((louder * (20 / math.log(10)) - self.config.fill_holes_db) / FILL_HOLES_RAMP_DB).clamp(0.0, 1.0)
            take = take * self._fillable[: take.shape[1], None]  # [bins, 1]: never the lowest bins
            kept_re, kept_im = in_re, in_im
            if self.config.kept_bins != "input":  # to the predicted amplitude, phase kept
                gain = (louder.clamp(max=0.0) if self.config.kept_bins == "shrink" else louder).exp()
                kept_re, kept_im = in_re * gain, in_im * gain
            out_re, out_im = kept_re + take * (out_re - kept_re), kept_im + take * (out_im - kept_im)
        y = self.istft(out_re, out_im, length=n)
        if self.config.fill_phase_db is not None:
            y = self._partial_holes_in_phase(y, in_re, in_im, mag, n)
        return y[:, :t].reshape(b, ch, t)

    def _partial_holes_in_phase(self, y: torch.Tensor, in_re: torch.Tensor, in_im: torch.Tensor,
                                in_mag: torch.Tensor, n: int) -> torch.Tensor:
        """``y [N, n]`` -> ``[N, n]``: output bins louder than the input ``[N, bins, frames]``, with
        the input at most ``fill_phase_db`` under them, take the input's phase (module docstring)."""
        re, im = self.stft(y)
        amp = (re.square() + im.square()).clamp_min(LOG_AMP_FLOOR**2).sqrt()
        louder_db = (amp / in_mag).log() * (20 / math.log(10))
        # 1 from FILL_HOLES_RAMP_DB over the input to that much under fill_phase_db, ramps in between:
        # no hard edge, so nearby arithmetic (float32, ONNX) cannot flip a bin's phase
        weight = ((louder_db / FILL_HOLES_RAMP_DB).clamp(0.0, 1.0)
                  * ((self.config.fill_phase_db - louder_db) / FILL_HOLES_RAMP_DB).clamp(0.0, 1.0))
        re = re + weight * (in_re * (amp / in_mag) - re)
        im = im + weight * (in_im * (amp / in_mag) - im)
        return self.istft(re, im, length=n)

    def _quieter_loud_fills(self, out_log_amp: torch.Tensor, in_log_amp: torch.Tensor) -> torch.Tensor:
        """``[N, bins, frames]`` log-amplitudes -> the same: predictions louder than the input that lie
        within ``fill_loud_db`` of the frame's loudest input bin are turned down, by nothing at that
        distance up to ``fill_loud_cut_db`` from ``FILL_LOUD_RAMP_DB`` closer (module docstring)."""
        c, db = self.config, 20 / math.log(10)
        from_peak_db = (out_log_amp - in_log_amp.amax(dim=1, keepdim=True)) * db
        louder_db = (out_log_amp - in_log_amp) * db
        weight = (((from_peak_db + c.fill_loud_db) / FILL_LOUD_RAMP_DB).clamp(0.0, 1.0)
                  * (louder_db / FILL_HOLES_RAMP_DB).clamp(0.0, 1.0))
        return out_log_amp - weight * (c.fill_loud_cut_db / db)

    def _fill_ceiling(self, out_log_amp: torch.Tensor, in_log_amp: torch.Tensor, cutoff_hz: torch.Tensor) -> torch.Tensor:
        """Bins capped at the local decoded maximum (below ``cutoff_hz [N]``) or the edge band's
        maximum (above it) + ``fill_ceiling_db`` (see the module docstring); log-amplitudes
        (natural log) ``[N, bins, frames]``."""
        c, size = self.config, FILL_CEILING_BLOCK
        bins = in_log_amp.shape[1]
        framed = nn.functional.max_pool2d(in_log_amp[:, None], (1, 3), stride=1, padding=(0, 1))  # frame +- 1
        peak = nn.functional.max_pool2d(framed, (size, 1), ceil_mode=True)  # [N, 1, blocks, frames]
        peak = nn.functional.max_pool2d(peak, (2 * FILL_CEILING_BLOCKS + 1, 1), stride=1, padding=(FILL_CEILING_BLOCKS, 0))
        local_max = peak[:, :, :, None].expand(-1, -1, -1, size, -1).flatten(2, 3)[:, 0, :bins]  # per bin again
        bin_hz = torch.arange(bins, device=in_log_amp.device, dtype=in_log_amp.dtype) * (c.sample_rate / c.n_fft)
        below = bin_hz[None, :, None] < cutoff_hz[:, None, None]
        edge = below & (bin_hz[None, :, None] >= cutoff_hz[:, None, None] - FILL_CEILING_EDGE_HZ)
        edge_max = framed[:, 0].masked_fill(~edge, math.log(LOG_AMP_FLOOR)).amax(1, keepdim=True)  # floor: in_log_amp's least
        edge_max = torch.where(edge.any(1, keepdim=True), edge_max, LOG_AMP_MAX)  # no bin under the cutoff (cutoff 0): no cap
        ceiling = torch.where(below, local_max, edge_max) + c.fill_ceiling_db * (math.log(10) / 20)
        return torch.minimum(out_log_amp, ceiling)
