"""The GhostV2 GAN as a LightningModule: manual optimisation of the generator and the discriminator.

One training step follows ../shared/conformance/network/README.md §7.3-7.4. Differences from the reference,
all fixes: the identity model and the eye FAN are frozen and kept out of the optimised/checkpointed modules (no
gradients pile up in them), the running adversarial loss is detached (and averaged over DDP processes, so that
they all take the same --discr_force decision), losses use the actual batch size, Adam's beta1 defaults to the
float 0.0, and D's parameters are toggled off during the generator step (the reference computed D gradients
there and zeroed them before D's step: same updates, less work).
"""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import nn

from models.adaptive_wing import FAN, detect_landmarks
from utils.training.config import TrainingConfig
from utils.training.losses import discriminator_loss, generator_losses

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a torch.compile wrapper (whose state_dict keys carry ``_orig_mod.``)."""
    return getattr(module, "_orig_mod", module)


def _gradients_already_computed() -> None:
    """The optimizer-step closure of manual optimisation: backward has run before the step."""


class GhostV2Module(pl.LightningModule):
    """Generator G and discriminator D trained against each other, with frozen identity (and eye) models.

    ``generator``: AEI-Net, ``generator(target, identity)`` → (swapped, attributes) and ``get_attr``;
    ``discriminator``: multiscale D; ``face_embedder``: images [-1, 1] → [N, 512] (differentiable w.r.t. the
    images, frozen); ``eye_detector``: the AdaptiveWingLoss FAN when the eye loss is on.
    Only G, D and the running adversarial loss are part of the Lightning checkpoint.
    """

    def __init__(
        self,
        config: TrainingConfig,
        generator: nn.Module,
        discriminator: nn.Module,
        face_embedder: nn.Module,
        eye_detector: FAN | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        # Frozen helpers live outside the module tree: no optimiser, no DDP, no checkpoint entries.
        self.frozen = {"face_embedder": self._freeze(face_embedder)}
        if eye_detector is not None:
            self.frozen["eye_detector"] = self._freeze(eye_detector)
        self.register_buffer(
            "loss_adv_accumulated", torch.tensor(float(config.initial_loss_adv_accumulated), dtype=torch.float32)
        )
        self.save_hyperparameters(config.as_dict())

    @staticmethod
    def _freeze(module: nn.Module) -> nn.Module:
        return module.eval().requires_grad_(False)

    @property
    def face_embedder(self) -> nn.Module:
        return self.frozen["face_embedder"]

    @property
    def eye_detector(self) -> FAN | None:
        return self.frozen.get("eye_detector")

    def _move_frozen(self) -> None:
        for name, module in self.frozen.items():
            self.frozen[name] = module.to(self.device).eval()

    def on_fit_start(self) -> None:
        self._move_frozen()

    def on_train_start(self) -> None:
        self.generator.train()
        self.discriminator.train()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Identity embeddings [N, 512] of images [N, 3, 256, 256] in [-1, 1] (gradient flows to the images)."""
        return self.face_embedder(images)

    def _eye_heatmaps(
        self, target: torch.Tensor, swapped: torch.Tensor
    ) -> tuple[list[torch.Tensor] | None, torch.Tensor | None, torch.Tensor | None]:
        if self.eye_detector is None:
            return None, None, None
        with torch.no_grad():
            target_eyes, target_left, target_right, _ = detect_landmarks(target, self.eye_detector)
        swapped_eyes, swapped_left, swapped_right, _ = detect_landmarks(swapped, self.eye_detector)
        return [target_left, target_right, swapped_left, swapped_right], target_eyes, swapped_eyes

    def training_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        source_for_identity, source, target, same_person = batch
        optimizer_g, optimizer_d = self.optimizers()
        schedulers = self.lr_schedulers() if self.config.use_scheduler else None
        with torch.no_grad():
            source_embedding = self.embed(source_for_identity)
        diff_person = torch.ones_like(same_person)
        if self.config.diff_eq_same:
            same_person = diff_person

        # Generator step.
        self.toggle_optimizer(optimizer_g)
        optimizer_g.zero_grad(set_to_none=True)
        swapped, target_attributes = self.generator(target, source_embedding)
        fake_scores = self.discriminator(swapped)
        swapped_embedding = self.embed(swapped)
        eye_heatmaps, target_eyes, swapped_eyes = self._eye_heatmaps(target, swapped)
        losses = generator_losses(
            unwrap(self.generator).get_attr, swapped, target, target_attributes, fake_scores, source_embedding,
            swapped_embedding, eye_heatmaps, self.loss_adv_accumulated, diff_person, same_person,
            self.config.loss_weights,
        )
        self.manual_backward(losses.total)
        optimizer_g.step()
        if schedulers is not None:
            schedulers[0].step()
        self.untoggle_optimizer(optimizer_g)
        # Every process must take the same --discr_force decision: the processes share the previous value and
        # the update is linear, so the mean of their updated values is the update by their mean adversarial loss.
        self.loss_adv_accumulated.copy_(self.trainer.strategy.reduce(losses.adversarial_accumulated, reduce_op="mean"))

        # Discriminator step (on the swapped faces computed before G's update).
        self.toggle_optimizer(optimizer_d)
        optimizer_d.zero_grad(set_to_none=True)
        loss_d = discriminator_loss(self.discriminator, swapped, source, diff_person)
        self.manual_backward(loss_d)
        if self.discriminator_may_step():
            self._uncounted_step(optimizer_d)
        if schedulers is not None:
            schedulers[1].step()
        self.untoggle_optimizer(optimizer_d)

        logged = {
            "lossG": losses.total, "lossD": loss_d, "loss_adv": losses.adversarial, "loss_attr": losses.attributes,
            "loss_id": losses.identity, "loss_rec": losses.reconstruction,
        }
        if self.eye_detector is not None:
            logged["loss_eyes"] = losses.eyes
        logged = {name: value.detach().float() for name, value in logged.items()}
        if schedulers is not None:
            logged["scheduler_G_lr"] = torch.tensor(schedulers[0].get_last_lr()[0])
            logged["scheduler_D_lr"] = torch.tensor(schedulers[1].get_last_lr()[0])
        self.log_dict(logged, prog_bar=False, on_step=True, on_epoch=False, batch_size=target.shape[0])
        return {
            "source": source.detach(), "target": target.detach(), "swapped": swapped.detach(),
            "target_eyes": target_eyes, "swapped_eyes": swapped_eyes, "losses": logged,
            "loss_adv_accumulated": float(self.loss_adv_accumulated),
        }

    def _uncounted_step(self, optimizer: LightningOptimizer) -> None:
        """``optimizer.step()`` without adding to ``global_step``, which counts G steps only (one per batch).

        The reference switches off the counting hooks of D's Lightning optimizer; the strategy's public
        ``optimizer_step`` is what ``LightningOptimizer.step`` calls between those hooks (precision plugin and
        gradient scaler included).
        """
        self.trainer.strategy.optimizer_step(optimizer.optimizer, _gradients_already_computed)

    def discriminator_may_step(self) -> bool:
        """D is held back under --discr_force while the running adversarial loss is above the threshold."""
        if not self.config.discr_force:
            return True
        return float(self.loss_adv_accumulated) < self.config.loss_adv_accumulated_threshold

    def _scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int, last_batches: int) -> Any:
        config = self.config
        if config.scheduler_type == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.scheduler_step, gamma=config.scheduler_gamma)
        if total_steps == -1:
            total_steps = int(self.trainer.estimated_stepping_batches)
        if last_batches != -1:
            # OneCycleLR resumes from last_epoch only when the optimizer already knows its initial_lr.
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        max_lr = optimizer.param_groups[0]["lr"]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, last_epoch=last_batches)

    def configure_optimizers(self) -> Any:
        config = self.config
        optimizer_g = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_G, betas=(float(config.b1_G), float(config.b2_G)),
            weight_decay=config.wd_G,
        )
        optimizer_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr_D, betas=(float(config.b1_D), float(config.b2_D)),
            weight_decay=config.wd_D,
        )
        if not config.use_scheduler:
            return [optimizer_g, optimizer_d]
        schedulers = [
            self._scheduler(optimizer_g, config.scheduler_total_steps_G, config.scheduler_last_batches_G),
            self._scheduler(optimizer_d, config.scheduler_total_steps_D, config.scheduler_last_batches_D),
        ]
        return [optimizer_g, optimizer_d], [{"scheduler": scheduler, "interval": "step"} for scheduler in schedulers]

    @torch.no_grad()
    def swap_examples(self, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Swapped faces with G in eval mode (restored afterwards): [N, 3, 256, 256] in [-1, 1] each → same."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            swapped, _ = self.generator(targets, self.embed(sources))
        finally:
            self.generator.train(was_training)
        return swapped
