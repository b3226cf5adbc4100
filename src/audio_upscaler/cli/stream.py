"""``audio-upscaler stream``: upscale standard input (raw PCM or WAV) to standard output as it
arrives, or with ``--live`` from the default audio input to the default output.

The output starts ``latency`` samples late (printed on stderr) unless ``--trim`` drops them so
that it lines up with the input.
"""

from __future__ import annotations

import sys

from ..extenders import BACKENDS as RUNTIMES
from .common import add_verbose

ENCODINGS = ("s16", "s24", "s32", "f32")


def add_parser(sub) -> None:
    p = sub.add_parser("stream", help="upscale raw PCM or WAV from stdin to stdout in real time (or --live audio)")
    p.add_argument("-m", "--model", default="auto", help="auto (default), sbr, none, a model name or (onnxruntime) an export folder")
    p.add_argument("-r", "--rate", type=int, default=48_000, help="output sample rate in Hz (default 48000)")
    p.add_argument("--input-rate", type=int, help="sample rate of raw input (WAV input carries its own)")
    p.add_argument("--channels", type=int, default=1, help="channels of raw input (default 1)")
    p.add_argument("--encoding", choices=ENCODINGS, default="s16", help="sample format of raw input (default s16)")
    p.add_argument("--output-encoding", choices=ENCODINGS, help="sample format of the output (default: the input's)")
    p.add_argument("--raw-output", action="store_true", help="write raw PCM even when the input is WAV")
    p.add_argument("--block", type=int, default=1024, help="input samples per processing block (default 1024)")
    p.add_argument("--cutoff", type=float, metavar="HZ", help="where the input's content ends (default: its Nyquist frequency)")
    p.add_argument("--quality", default="vhq", choices=("vhq", "hq", "mq", "lq", "linear"),
                   help="resampler quality (lower qualities have less latency)")
    p.add_argument("--runtime", "--backend", dest="runtime", default="torch", choices=RUNTIMES,
                   help="runtime of neural models")
    p.add_argument("--no-limiter", action="store_true", help="do not limit peaks")
    p.add_argument("--trim", action="store_true", help="drop the first LATENCY output samples (output aligned with the input)")
    p.add_argument("--live", action="store_true", help="play the default audio input through the model (needs sounddevice)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    add_verbose(p)
    p.set_defaults(run=run)


def run(args) -> int:
    from .. import pcm
    from ..errors import UpscalerError

    if args.live:
        return _live(args)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    head = source.read(4)
    if head == b"RIFF":
        (fmt, data_bytes), pending = pcm.read_wav_start(source, head), b""
    else:
        if args.input_rate is None:
            raise UpscalerError("raw PCM input needs --input-rate (or send a WAV stream)")
        fmt, pending, data_bytes = pcm.PCMFormat(args.input_rate, args.channels, args.encoding), head, None
    wav_out = head == b"RIFF" and not args.raw_output
    out_fmt = pcm.PCMFormat(args.rate, fmt.channels, args.output_encoding or fmt.encoding)
    streamer = _streamer(args, fmt.sample_rate, fmt.channels)
    if wav_out:
        sink.write(pcm.wav_header(out_fmt))
    writer = _Writer(sink, out_fmt.encoding, skip=streamer.latency_samples if args.trim else 0)
    def partial(size: int) -> None:
        if not args.quiet:
            print(f"note: the input ended inside a sample frame; its last {size} byte{'s' * (size > 1)} "
                  f"(less than one {fmt.frame_bytes}-byte frame) were dropped", file=sys.stderr)

    for block in pcm.read_blocks(source, fmt, args.block, pending, data_bytes, on_partial=partial):
        writer.write(streamer.feed(block))
    writer.write(streamer.flush())
    if wav_out and sink.seekable():  # a regular file: fill in the real length
        sink.seek(0)
        sink.write(pcm.wav_header(out_fmt, writer.frames))
    sink.flush()
    return 0


def _streamer(args, input_rate: int, channels: int):
    from ..streaming import StreamingUpscaler

    streamer = StreamingUpscaler(args.model, input_rate, args.rate, args.block, channels=channels, cutoff_hz=args.cutoff,
                                 quality=args.quality, limiter=not args.no_limiter, backend=args.runtime)
    if not args.quiet:
        print(f"streaming with '{streamer.name}' ({streamer.reason}): {input_rate} Hz -> {args.rate} Hz, {channels} ch, block {args.block}; "
              f"latency {streamer.latency_samples} samples ({1000 * streamer.latency_seconds:.1f} ms)", file=sys.stderr)
    return streamer


class _Writer:
    """Encode blocks to a binary sink (TPDF dither for integer output), dropping the first ``skip`` frames."""

    def __init__(self, sink, encoding: str, skip: int = 0):
        import numpy as np

        self.sink, self.encoding, self.skip, self.frames = sink, encoding, skip, 0
        self.bits = {"s16": 16, "s24": 24}.get(encoding)  # dither where the format's resolution is audible
        self.rng = np.random.default_rng(0)

    def write(self, block) -> None:
        from ..dsp.finish import tpdf_dither
        from ..pcm import encode

        cut = min(self.skip, block.shape[1])
        block, self.skip = block[:, cut:], self.skip - cut
        if block.shape[1]:
            if self.bits:
                block = tpdf_dither(block, self.bits, self.rng)
            self.sink.write(encode(block, self.encoding))
            self.sink.flush()
            self.frames += block.shape[1]


def _live(args) -> int:
    """Microphone/line input -> model -> default output, until Ctrl-C."""
    from ..errors import UpscalerError

    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:  # OSError: the PortAudio library is missing
        raise UpscalerError(f"--live needs the sounddevice package and PortAudio ({exc}); pip install sounddevice") from None
    try:
        device = sd.query_devices(kind="input")
        sd.query_devices(kind="output")
    except Exception as exc:  # PortAudioError or ValueError when there is no device
        raise UpscalerError(f"--live needs an audio input and output device: {exc}") from None
    input_rate = args.input_rate or int(device["default_samplerate"])
    channels = min(args.channels, int(device["max_input_channels"])) or 1
    streamer = _streamer(args, input_rate, channels)
    with sd.InputStream(input_rate, args.block, channels=channels, dtype="float32") as mic, \
            sd.OutputStream(args.rate, channels=channels, dtype="float32") as speaker:
        while True:
            block, _ = mic.read(args.block)
            out = streamer.feed(block.T)
            if out.shape[1]:
                speaker.write(out.T.copy())
