import math
import os.path as osp
import re

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers A2Head)
from mmseg_fusion.functional import double_attention
from mmseg_fusion.models.decode_heads.a2_head import A2Head

TINY = dict(type='A2Head', in_channels=4, channels=8, num_classes=3, dropout_ratio=0.0)


@pytest.mark.parametrize('concat_input', [True, False])
def test_shapes_on_odd_sizes(concat_input):
    head = MODELS.build(dict(TINY, concat_input=concat_input))
    assert isinstance(head, A2Head)
    assert hasattr(head, 'conv_cat') is concat_input
    assert (head.a2_block.mid_channels, head.a2_block.num_descriptors) == (2, 2)
    assert head([torch.randn(2, 4, 23, 29)]).shape == (2, 3, 23, 29)


def test_forward_composition():
    torch.manual_seed(0)
    head = MODELS.build(dict(TINY, mid_channels=3, num_descriptors=5, concat_input=False,
                             norm_cfg=dict(type='BN'))).eval()
    x = torch.randn(1, 4, 7, 9)
    feats = head.conv_in(x)
    block = head.a2_block
    z = double_attention(block.conv_a(feats), block.conv_b(feats), block.conv_v(feats))
    expected = head.cls_seg(head.conv_out(feats + block.expand(z)))
    torch.testing.assert_close(head([x]), expected)
    assert hasattr(block.expand, 'bn')
    plain = MODELS.build(dict(TINY, expand_norm=False, norm_cfg=dict(type='BN')))
    assert not hasattr(plain.a2_block.expand, 'bn')


def test_every_parameter_gets_a_gradient():
    head = MODELS.build(dict(TINY, norm_cfg=dict(type='BN'))).train()
    head([torch.randn(2, 4, 23, 29)]).pow(2).mean().backward()
    for name, param in head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('kwargs, match', [
    (dict(mid_channels=0), 'A2Head: mid_channels must be None or an int >= 1, got 0'),
    (dict(num_descriptors=1.5), 'A2Head: num_descriptors must be None or an int >= 1, got 1.5'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(TINY, **kwargs))


def test_configs_build(method_configs):
    for name, cfg in method_configs('a2net', 5):
        head = MODELS.build(cfg.model.decode_head)
        assert isinstance(head, A2Head), name
        assert cfg.model.decode_head.num_classes == cfg.model.auxiliary_head.num_classes


def test_readme_links_every_config(readme_config_links):
    linked, present = readme_config_links('a2net')
    assert linked == present


@pytest.mark.slow
def test_tiny_training(tmp_path, repo_root, synthetic_root, tiny_options, run_tool):
    config = osp.join(repo_root, 'configs', 'a2net', 'a2net_r18-d8_1xb8-600_synthetic-128x128.py')
    work = str(tmp_path / 'work')
    out = run_tool([osp.join(repo_root, 'tools', 'train.py'), config, '--work-dir', work,
                    '--cfg-options', *tiny_options(synthetic_root, iters=2, ckpt_interval=2)])
    losses = [float(v) for v in re.findall(r'Iter\(train\).* loss: (\S+)', out.stdout)]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), out.stdout[-3000:]
    ckpt = torch.load(osp.join(work, 'iter_2.pth'), weights_only=False)
    assert 'decode_head.a2_block.conv_b.weight' in ckpt['state_dict']
