import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401  (registers the models)
from mmseg_fusion.models.backbones.dla import BasicBlock, Tree

TINY = dict(type='DLA', arch=None, levels=(1, 1, 1, 2, 1, 1), channels=(4, 8, 16, 24, 32, 32))


def test_official_key_names_and_shapes_dla34():
    sd = MODELS.build(dict(type='DLA', arch='dla34')).state_dict()
    expected = {
        'base_layer.0.weight': (16, 3, 7, 7),
        'base_layer.1.running_var': (16, ),
        'level0.0.weight': (16, 16, 3, 3),
        'level1.0.weight': (32, 16, 3, 3),
        'level2.tree1.conv1.weight': (64, 32, 3, 3),
        'level2.tree2.bn2.weight': (64, ),
        'level2.root.conv.weight': (64, 128, 1, 1),
        'level2.project.0.weight': (64, 32, 1, 1),
        'level3.tree1.tree1.conv1.weight': (128, 64, 3, 3),
        'level3.tree1.root.conv.weight': (128, 256, 1, 1),
        'level3.tree2.root.conv.weight': (128, 448, 1, 1),  # 2*128 + 64 (level root) + 128
        'level3.project.1.running_mean': (128, ),
        'level5.root.conv.weight': (512, 1280, 1, 1),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith(('fc.', 'avgpool')) for k in sd)


@pytest.mark.parametrize('arch,params', [('dla34', 15270832), ('dla102', 32706736),
                                         ('dla102x', 25747120), ('dla169', 52964016)])
def test_released_architectures(arch, params):
    model = MODELS.build(dict(type='DLA', arch=arch))
    # regression values: the official layout (unused projections included) without the
    # ImageNet classifier (fc: channels[-1] * 1000 + 1000 parameters)
    assert sum(p.numel() for p in model.parameters()) == params
    if arch == 'dla102x':
        conv = model.level3.tree1.tree1.tree1.conv2
        assert conv.groups == 32 and conv.in_channels == 256
        assert model.level3.tree1.tree1.root.residual


def test_tree_follows_the_official_recursion():
    torch.manual_seed(0)
    tree = Tree(1, BasicBlock, 4, 8, stride=2, level_root=True).eval()
    x = torch.randn(2, 4, 10, 14)
    bottom = F.max_pool2d(x, 2)
    x1 = tree.tree1(x, tree.project(bottom))
    x2 = tree.tree2(x1)
    ref = F.relu(tree.root.bn(tree.root.conv(torch.cat([x2, x1, bottom], 1))))
    assert_close(tree(x), ref)


def test_odd_sizes_out_indices_and_gradients():
    model = MODELS.build(dict(TINY, out_indices=(0, 1, 2, 3, 4, 5)))
    x = torch.randn(2, 3, 45, 61)
    outs = model(x)
    sizes = [(45, 61), (23, 31), (12, 16), (6, 8), (3, 4), (2, 2)]
    assert [tuple(o.shape) for o in outs] == [(2, c, *s) for c, s in
                                              zip((4, 8, 16, 24, 32, 32), sizes)]
    sum(o.mean() for o in outs).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # only the never-used projections of the deeper trees are frozen
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ['level3.project.0.weight', 'level3.project.1.weight',
                      'level3.project.1.bias']
    assert len(MODELS.build(TINY)(x)) == 5


def test_norm_eval_and_init_weights():
    model = MODELS.build(dict(TINY, norm_eval=True))
    model.train()
    assert all(not m.training for m in model.modules()
               if isinstance(m, torch.nn.BatchNorm2d))
    model = MODELS.build(dict(type='DLA', arch='dla34'))
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.zeros_(m.weight)
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.zeros_(m.weight)
    model.init_weights()
    conv = model.level5.tree1.conv2  # 512 -> 512, 3x3, fan_out = 4608
    assert 0.9 < conv.weight.std().item() / (2 / 4608) ** 0.5 < 1.1
    assert all((m.weight == 1).all() for m in model.modules()
               if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize('kwargs,match', [
    (dict(arch='dla35'), r"DLA: arch must be one of .* or None, got 'dla35'"),
    (dict(arch=None, levels=(1, 1), channels=(4, 8)), r'DLA: levels and channels must list 6'),
    (dict(TINY, block='res'), r"DLA: block must be 'basic' or 'bottleneck', got 'res'"),
    (dict(TINY, out_indices=(6, )), r'DLA: out_indices must be .* \[0, 5\], got \(6,\)'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(dict(type='DLA'), **kwargs))
