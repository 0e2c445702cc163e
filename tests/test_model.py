import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from xrdid.embedder import Embedder, save_checkpoint
from xrdid.errors import InputError
from xrdid.model import AdaCos, RegNet1D, RegNetConfig, folded

SMALL = RegNetConfig(widths=(16, 32), depths=(1, 1), group_width=8, embedding_dim=32, stem_stride=4)


def test_embeddings_are_unit_vectors_of_configured_size():
    model = RegNet1D(SMALL).eval()
    out = model(torch.rand(3, 2, 4251))
    assert out.shape == (3, 32)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


def test_config_round_trips():
    assert RegNetConfig.from_dict(SMALL.to_dict()) == SMALL


def test_sqrt_scale_is_the_linear_model_on_square_rooted_intensities():
    torch.manual_seed(0)
    sqrt_model = RegNet1D(replace(SMALL, intensity_scale="sqrt")).eval()
    linear_model = RegNet1D(SMALL).eval()
    linear_model.load_state_dict(sqrt_model.state_dict())
    x = torch.rand(2, 2, 4251)
    x[:, 0, :10] = -0.01  # background subtraction leaves small negatives
    expected = x.clone()
    expected[:, 0] = x[:, 0].clamp(min=0).sqrt()
    with torch.no_grad():
        out = sqrt_model(x)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, linear_model(expected))
        assert not torch.allclose(out, linear_model(x), atol=1e-3)


def test_configs_saved_before_the_intensity_scale_load_as_linear():
    saved = SMALL.to_dict()
    del saved["intensity_scale"]
    assert RegNetConfig.from_dict(saved).intensity_scale == "linear"
    with pytest.raises(ValueError, match="intensity_scale"):
        RegNet1D(replace(SMALL, intensity_scale="log"))


def test_adacos_starts_at_published_fixed_scale_and_adapts_with_labels():
    head = AdaCos(32, n_classes=1000)
    assert head.scale.item() == pytest.approx(math.sqrt(2) * math.log(999))
    embeddings = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)
    labels = torch.randint(0, 1000, (16,))
    head.train()
    loss = head(embeddings, labels)
    assert torch.isfinite(loss)
    moved = head.scale.item()
    assert moved != pytest.approx(math.sqrt(2) * math.log(999))
    head.eval()
    head(embeddings, labels)
    assert head.scale.item() == moved  # frozen at evaluation


def test_adacos_is_numerically_safe_at_extremes():
    head = AdaCos(4, n_classes=3)
    head.weight.data = torch.eye(3, 4)
    perfect = torch.eye(3, 4)  # cos = 1 to the true class, 0 to the others
    head.train()
    loss = head(perfect, torch.arange(3))
    assert torch.isfinite(loss) and torch.isfinite(head.scale)
    opposite = -torch.eye(3, 4)
    assert torch.isfinite(head(opposite, torch.arange(3)))


def test_checkpoint_round_trip_and_content_version(tmp_path):
    model = RegNet1D(SMALL).eval()
    version = save_checkpoint(tmp_path / "m.pt", model, {"note": "test"})
    loaded = Embedder.load(tmp_path / "m.pt", device="cpu")
    assert loaded.version == version and loaded.card == {"note": "test"}
    x = np.random.default_rng(0).random((5, 2, 4251), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.allclose(loaded.embed_array(x), expected, atol=1e-6)


def test_folding_the_batch_norms_keeps_the_function():
    """Trained-looking statistics in every batch norm: the folded copy has no
    batch norm left and embeds as the model does, to float rounding."""
    torch.manual_seed(2)
    model = RegNet1D(SMALL).eval()
    for norm in model.modules():
        if isinstance(norm, torch.nn.BatchNorm1d):
            norm.running_mean.uniform_(-1.0, 1.0)
            norm.running_var.uniform_(0.2, 3.0)
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.uniform_(-0.5, 0.5)
    fast = folded(model)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())  # a copy
    x = torch.rand(4, 2, 4251)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), atol=2e-6, rtol=1e-5)
    grouped = RegNet1D(replace(SMALL, norm="group")).eval()
    with torch.no_grad():
        torch.testing.assert_close(folded(grouped)(x), grouped(x))


def test_foreign_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="not a readable"):
        Embedder.load(path)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cpu_and_gpu_embeddings_agree(tmp_path):
    model = RegNet1D(SMALL).eval()
    save_checkpoint(tmp_path / "m.pt", model, {})
    x = np.random.default_rng(1).random((8, 2, 4251), dtype=np.float32)
    cpu = Embedder.load(tmp_path / "m.pt", device="cpu").embed_array(x)
    gpu = Embedder.load(tmp_path / "m.pt", device="cuda").embed_array(x)
    assert np.allclose(cpu, gpu, atol=1e-4)
