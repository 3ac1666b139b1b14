"""GFPGAN: tiny-config shapes and noise modes, the enhance-face helper, version selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.gfpgan import GFPGANv1Clean, StyleConv, enhance_face, load_gfpgan


def _tiny_gfpgan() -> GFPGANv1Clean:
    torch.manual_seed(0)
    model = GFPGANv1Clean(out_size=32, num_style_feat=16, channel_multiplier=1, num_mlp=2, narrow=0.125).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, StyleConv):
                module.weight.fill_(0.5)  # noise strengths start at 0; make the noise visible
    return model


def test_tiny_forward_shapes_and_previews() -> None:
    model = _tiny_gfpgan()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        image, previews = model(x, randomize_noise=False)
        latent = model.style_code(x)[0]
        _, with_previews = model(x, return_rgb=True, randomize_noise=False)
    assert image.shape == (2, 3, 32, 32) and previews == []
    assert latent.shape == (2, 2 * 5 - 2, 16)
    assert [preview.shape[-1] for preview in with_previews] == [8, 16, 32]


def test_stored_noise_is_deterministic_and_random_noise_is_not() -> None:
    model = _tiny_gfpgan()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        first, second = model(x, randomize_noise=False)[0], model(x, randomize_noise=False)[0]
        noisy_first, noisy_second = model(x)[0], model(x)[0]
    assert torch.equal(first, second)
    assert not torch.equal(noisy_first, noisy_second)


def test_given_noise_reproduces_the_networks_own_draws_bit_for_bit() -> None:
    model = _tiny_gfpgan()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.manual_seed(3)
        drawn_inside = model(x)[0]
        torch.manual_seed(3)
        noises = model.draw_noise(2, x.device)
        given = model(x, noises=noises)[0]
        stored = model(x, noises=model.stored_noise())[0]
        other = model(x, noises=[torch.zeros_like(noise) for noise in noises])[0]
    sides = [noise.shape[-1] for noise in noises]
    assert sides == model.stylegan_decoder.noise_resolutions() == [4, 8, 8, 16, 16, 32, 32]
    assert torch.equal(given, drawn_inside)
    assert torch.equal(stored, model(x, randomize_noise=False)[0])
    assert not torch.equal(other, given)
    with pytest.raises(ValueError, match="7 noise maps"):
        model(x, noises=noises[:3])


def test_enhance_face_returns_uint8_bgr_and_falls_back_on_network_errors() -> None:
    model = _tiny_gfpgan()
    face = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    restored = enhance_face(face, model, randomize_noise=False)
    assert restored.shape == face.shape and restored.dtype == np.uint8
    np.testing.assert_array_equal(restored, enhance_face(face, model, randomize_noise=False))
    wrong_size = np.zeros((20, 20, 3), np.uint8)  # the encoder cannot reduce 20 px to 4x4: RuntimeError
    assert enhance_face(wrong_size, model) is wrong_size


def test_load_gfpgan_rejects_unknown_versions() -> None:
    with pytest.raises(ValueError, match="v1.4"):
        load_gfpgan("v1.3")
