"""Neural band-extension models: one interface (:mod:`.base`), one registry (:mod:`.registry`),
shared blocks (:mod:`.blocks`) and one module per family.

Importing this package is light (no torch); torch is imported when a model is built or loaded.
"""

from .registry import available_models, build, build_from_yaml, families, load_extender, load_model

__all__ = ["available_models", "build", "build_from_yaml", "families", "load_extender", "load_model"]
