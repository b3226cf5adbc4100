"""Web UI (Gradio): Studio, Batch, Model Lab and Benchmark tabs over the library.

``audio-upscaler ui`` starts it; in Python, :func:`audio_upscaler.ui.app.build_app` returns
the ``gradio.Blocks`` and :func:`audio_upscaler.ui.app.launch` serves it. Importing this
package does not import Gradio (``pip install 'audio-upscaler[ui]'``).
"""

from .settings import UISettings

__all__ = ["UISettings"]
