"""The adversarial phase of training: discriminators with their own optimizer.

Each generator step (once ``loss.adversarial_start`` is reached) first updates the
discriminators on real vs generated (detached) audio, then returns the generator's adversarial
and feature-matching terms, weighted by the config, for the trainer to add to its loss.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..losses import AdversarialLoss, feature_matching_loss
from ..models.discriminators import CombinedDiscriminator
from .config import LossSection


class AdversarialPhase:
    """Discriminators ``config.discriminators`` (names or mappings for ``CombinedDiscriminator``)."""

    def __init__(self, config: LossSection, sample_rate: int, device: torch.device,
                 wrap: Callable[[nn.Module], nn.Module], make_optimizer: Callable):
        self.config = config
        specs = [{"name": d, "sample_rate": sample_rate} if d == "patchgan" else d for d in config.discriminators]
        self.discriminator = CombinedDiscriminator(specs).to(device)
        self.net = wrap(self.discriminator)
        self.optimizer = make_optimizer(self.discriminator.parameters())
        self.loss = AdversarialLoss(config.adversarial_loss)

    def step(self, fake: torch.Tensor, real: torch.Tensor, scaler: torch.amp.GradScaler,
             grad_clip: float | None) -> tuple[torch.Tensor, dict]:
        """Update the discriminators; return the generator's weighted adversarial loss and parts."""
        self.net.train()
        d_loss = self.loss.discriminator_loss(self.net(real), self.net(fake.detach()))
        self.optimizer.zero_grad(set_to_none=True)
        scaler.scale(d_loss).backward()
        if grad_clip:
            scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.discriminator.parameters(), grad_clip)
        scaler.step(self.optimizer)

        with torch.no_grad():
            real_out = self.net(real)
        fake_out = self.net(fake)
        adv = self.loss.generator_loss(fake_out)
        fm = feature_matching_loss([o.features for o in real_out], [o.features for o in fake_out])
        total = self.config.adversarial_weight * adv + self.config.feature_matching_weight * fm
        return total, {"d_loss": float(d_loss.detach()), "g_adv": float(adv.detach()), "feature_matching": float(fm.detach())}

    def state_dict(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
