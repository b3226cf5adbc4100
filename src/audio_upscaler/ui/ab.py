"""A/B listening: level-matched preview files and a two-player HTML widget.

The louder of input and output is turned down to the loudness (BS.1770, LUFS) of the quieter
one, so a comparison is not won by level. Previews are 16-bit WAV that every browser plays; an
output above ``PREVIEW_MAX_RATE`` is resampled to 48 kHz for the preview only.
In the page, playing one player pauses the other, seeking one moves both, and the switch button
continues from the same position in the other player.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from urllib.parse import quote

PREVIEW_MAX_RATE = 96_000
PREVIEW_RATE = 48_000
BLOCK_FRAMES = 65_536

#: Runs once when the widget loads (Gradio's ``js_on_load``: ``element`` is its container).
PLAYER_JS = """
const players = () => [...element.querySelectorAll('audio[data-ab]')];
element.addEventListener('play', (e) => {
  for (const p of players()) if (p !== e.target) p.pause();
}, true);
element.addEventListener('seeked', (e) => {
  for (const p of players()) if (p !== e.target && Math.abs(p.currentTime - e.target.currentTime) > 0.05)
    p.currentTime = e.target.currentTime;
}, true);
element.addEventListener('click', (e) => {
  if (!e.target.closest('[data-ab-switch]')) return;
  const [a, b] = players();
  if (!a || !b) return;
  const from = !b.paused || (a.paused && element.dataset.current === 'B') ? b : a;
  const to = from === a ? b : a;
  const playing = !from.paused;
  to.currentTime = from.currentTime;
  from.pause();
  if (playing) to.play();
  element.dataset.current = to.dataset.ab;
  element.querySelector('[data-ab-now]').textContent = to.dataset.ab === 'A' ? 'A: input' : 'B: output';
});
"""


def matched_gains(input_lufs: float, output_lufs: float, input_peak: float = 1.0,
                  output_peak: float = 1.0) -> tuple[float, float]:
    """Linear gains ``(input, output)`` that bring both to the quieter loudness (never above 1),
    both turned down further, together, where that would take a sample peak (linear, as read:
    a float file may exceed 1) over full scale; ``(1, 1)`` when either loudness is silent
    (``-inf``) or unknown."""
    if not (math.isfinite(input_lufs) and math.isfinite(output_lufs)):
        return 1.0, 1.0
    target = min(input_lufs, output_lufs)
    gains = 10 ** ((target - input_lufs) / 20), 10 ** ((target - output_lufs) / 20)
    loudest = max(gains[0] * input_peak, gains[1] * output_peak)
    scale = 1.0 / loudest if loudest > 1.0 else 1.0  # the preview would clip one of them: keep them matched
    return gains[0] * scale, gains[1] * scale


def write_preview(source: str | Path, destination: str | Path, gain: float) -> Path:
    """Stream ``source`` into a 16-bit WAV ``destination`` scaled by ``gain`` (flat memory)."""
    import numpy as np

    from .. import io
    from ..dsp.resample import StreamResampler

    with io.open_reader(source) as reader:
        info = reader.info
        rate = info.sample_rate if info.sample_rate <= PREVIEW_MAX_RATE else PREVIEW_RATE
        resampler = StreamResampler(info.sample_rate, rate, info.channels, "hq")
        fmt = io.output_format_for(destination, bit_depth=16)
        with io.open_writer(destination, rate, info.channels, fmt, overwrite=True) as writer:
            for block in reader.blocks(BLOCK_FRAMES):
                writer.write(np.clip(resampler.process(block) * np.float32(gain), -1.0, 1.0))
            writer.write(np.clip(resampler.flush() * np.float32(gain), -1.0, 1.0))
    return Path(destination)


def file_url(path: str | Path) -> str:
    """The page-relative URL at which Gradio serves ``path`` (it must be under an allowed path)."""
    return "gradio_api/file=" + quote(str(path))


def player_html(input_preview: str | Path | None, output_preview: str | Path | None, note: str = "") -> str:
    """The A/B widget for two preview files (an empty hint when there is nothing to compare)."""
    if not (input_preview and output_preview):
        return "<p class='ab-empty'>Run an upscale to compare input (A) and output (B) here.</p>"
    rows = "".join(
        f"<div class='ab-row'><b>{label}</b> <audio data-ab='{key}' controls preload='metadata' "
        f"src='{html.escape(file_url(path), quote=True)}'></audio></div>"
        for key, label, path in (("A", "A: input", input_preview), ("B", "B: output", output_preview))
    )
    return (f"<div class='ab-player'>{rows}<div class='ab-row'><button type='button' data-ab-switch>"
            f"Switch A/B</button> now: <span data-ab-now>A: input</span> <small>{html.escape(note)}</small>"
            "</div></div>")
