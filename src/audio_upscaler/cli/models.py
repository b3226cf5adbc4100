"""``audio-upscaler models``: registered model families and installed weights."""

from __future__ import annotations

from .common import add_verbose, print_json

NON_NEURAL = [
    {"name": "sbr", "description": "non-neural spectral band replication (fallback and baseline)"},
    {"name": "none", "description": "plain high-quality resampling (soxr)"},
]


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list model families and installed weights")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_verbose(p)
    p.set_defaults(run=run)


def collect() -> dict:
    """Families (at their default size), installed weights, and the non-neural methods."""
    from ..errors import UpscalerError
    from ..models import registry

    weights = []
    for name in registry.available_models():
        try:
            weights.append(registry.model_info(name))
        except UpscalerError as exc:  # one damaged folder must not hide the others
            weights.append({"name": name, "path": str(registry.model_path(name)), "error": str(exc)})
    return {
        "families": [registry.family_info(f) for f in registry.families()],
        "weights": weights,
        "non_neural": NON_NEURAL,
    }


def run(args) -> int:
    listing = collect()
    if args.json:
        print_json(listing)
        return 0
    print("families (default size):")
    for f in listing["families"]:
        flags = ", ".join(k for k in ("streaming", "onnx") if f[k]) or "-"
        low, high = (c / 1000 for c in f["cutoffs_hz"])
        print(f"  {f['family']:<10} {f['parameters'] / 1e6:6.2f} M params  {f['sample_rate'] or 'any'} Hz  "
              f"cutoffs {low:g}-{high:g} kHz  [{flags}]  {f['description']}")
    print("installed weights:")
    for w in listing["weights"] or [{"name": "(none yet: 'auto' falls back to sbr)"}]:
        extra = (f"  {w['task']} ({w['family']}), {w['parameters'] / 1e6:.2f} M params, {w['sample_rate']} Hz, cutoffs "
                 f"{w['cutoffs_hz'][0] / 1000:g}-{w['cutoffs_hz'][1] / 1000:g} kHz, {w['dtype']}, {w['path']}"
                 if "family" in w else f"  unusable: {w['error']}" if "error" in w else "")
        print(f"  {w['name']}{extra}")
    print("non-neural:")
    for m in listing["non_neural"]:
        print(f"  {m['name']:<10} {m['description']}")
    return 0
