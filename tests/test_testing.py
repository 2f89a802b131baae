"""mmseg_fusion.testing: the references themselves, on cases worked out by hand."""
import math

import torch
from torch.testing import assert_close

from mmseg_fusion.testing import (
    naive_criss_cross,
    naive_criss_cross_3d,
    naive_hma,
    naive_softmax_weights,
    naive_ssr,
    tiny_options,
)


def test_criss_cross_on_a_2x2_map():
    # C' = 1: q . k = 0 everywhere, so each pixel averages its row and column (3 keys)
    q, k = torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    v = torch.tensor([[[[1., 2.], [3., 4.]]]])
    out = naive_criss_cross(q, k, v)
    expected = torch.tensor([[[[(1 + 2 + 3) / 3, (1 + 2 + 4) / 3],
                               [(3 + 4 + 1) / 3, (3 + 4 + 2) / 3]]]], dtype=torch.float64)
    assert_close(out, expected)
    # a single frame in 3D is the 2D attention
    assert_close(naive_criss_cross_3d(q[:, :, None], k[:, :, None], v[:, :, None])[:, :, 0],
                 out)


def test_scale_weights_by_hand():
    y = [torch.full((1, 1, 1, 1), math.log(2.0)), torch.full((1, 1, 1, 1), math.log(4.0))]
    # opacities 1/2 and 3/4: weights 1/2 and 3/4 * 1/2; terminal: the rest, 1/2
    w = naive_ssr(y, abs, terminal=False)
    assert_close(torch.cat(w).flatten(), torch.tensor([0.5, 0.375], dtype=torch.float64))
    w = naive_ssr(y, abs, terminal=True)
    assert_close(torch.cat(w).flatten(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    h = naive_hma([torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)])
    assert_close(torch.cat(h).flatten(), torch.tensor([0.5, 0.5], dtype=torch.float64))
    s = naive_softmax_weights([torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), math.log(3))])
    assert_close(torch.cat(s).flatten(), torch.tensor([0.25, 0.75], dtype=torch.float64))


def test_tiny_options_shrink_a_synthetic_config():
    opts = tiny_options('/data/x', iters=3, ckpt_interval=3, crop=32)
    assert 'train_cfg.max_iters=3' in opts and 'default_hooks.checkpoint.interval=3' in opts
    assert any(o.startswith('train_dataloader.dataset.data_root=/data/x') for o in opts)
