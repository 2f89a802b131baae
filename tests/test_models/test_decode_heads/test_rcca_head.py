"""RCCAHead: mmseg CCHead checkpoints load strictly and give the same logits; CCL switch."""
import io

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_fusion  # noqa: F401  (registers RCCAHead)
from mmseg_fusion.models.decode_heads import RCCAHead

TINY = dict(in_channels=12, channels=8, num_classes=5, dropout_ratio=0.1)


def build(**kwargs):
    return MODELS.build(dict(type='RCCAHead', **{**TINY, **kwargs}))


def randomise(module, seed=0):
    """Non-trivial weights, BN statistics and gamma (so the attention matters)."""
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point():
            values = torch.randn(tensor.shape, generator=gen) * 0.3
            if name.endswith('running_var'):
                values = values.abs() + 0.5
            tensor.copy_(values)


def samples(n, h, w, num_classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, num_classes, (1, h, w), generator=gen)
        label[:, :2, :3] = 255
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        out.append(sample)
    return out


def test_shapes_and_structure():
    head = build()
    assert isinstance(head, RCCAHead)
    assert [type(m).__name__ for m in head.convs] == ['ConvModule', 'ConvModule']
    assert head.recurrence == 2 and head.cca.in_channels == 8 and head.ccl_proj is None
    out = head([torch.randn(2, 12, 23, 29)])
    assert out.shape == (2, 5, 23, 29)


def test_mmseg_checkpoint_loads_strict_and_matches():
    pytest.importorskip('mmcv.ops', reason='mmseg CCHead needs compiled mmcv ops')
    cfg = dict(**TINY, recurrence=2, norm_cfg=dict(type='BN'))
    ref = MODELS.build(dict(type='CCHead', **cfg))
    randomise(ref)
    buffer = io.BytesIO()
    torch.save({'state_dict': ref.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)['state_dict']
    ours = build(recurrence=2, norm_cfg=dict(type='BN'))
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state, strict=True)
    ours.eval(), ref.eval()
    x = [torch.randn(2, 12, 11, 13)]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('value', [0, -1, 1.5, True, '2'])
def test_bad_recurrence(value):
    with pytest.raises(ValueError, match=rf'RCCAHead: recurrence must be an int >= 1, got '
                                         rf'{value!r}'.replace('(', r'\(')):
        build(recurrence=value)


@pytest.mark.parametrize('channels', [4, 0, 8.0])
def test_channels_too_small_for_the_attention(channels):
    # the criss-cross query and key have channels // 8 channels
    with pytest.raises(ValueError, match=rf'RCCAHead: channels must be an int >= 8 .*'
                                         rf'got {channels!r}'):
        build(channels=channels)


def test_num_convs_is_fixed():
    with pytest.raises(ValueError, match='RCCAHead: num_convs is fixed to 2'):
        build(num_convs=1)


def test_leaky_relu_switch_and_recurrence_one():
    head = build(recurrence=1, act_cfg=dict(type='LeakyReLU', negative_slope=0.01))
    assert isinstance(head.convs[0].activate, torch.nn.LeakyReLU)
    assert head.convs[0].activate.negative_slope == 0.01
    assert head([torch.randn(1, 12, 7, 5)]).shape == (1, 5, 7, 5)


def test_every_parameter_gets_a_gradient():
    head = build(concat_input=True)
    head.cca.gamma.scale.data.fill_(0.5)
    losses = head.loss([torch.randn(2, 12, 9, 7)], samples(2, 9, 7), train_cfg=None)
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    for name, p in head.named_parameters():
        if name != 'cca.key_conv.bias':  # zero gradient by construction (softmax shift)
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_category_consistent_loss_from_loss_decode():
    head = build(loss_decode=[dict(type='CrossEntropyLoss', loss_weight=1.0),
                              dict(type='CategoryConsistentLoss', loss_weight=0.5)],
                 ccl_channels=4)
    assert head.ccl_proj.out_channels == 4 and len(head.ccl_losses) == 1
    assert [type(m).__name__ for m in head.loss_decode] == ['CrossEntropyLoss']
    head.cca.gamma.scale.data.fill_(0.5)
    inputs = [torch.randn(2, 12, 9, 7)]
    head.train()
    logits, extras = head.forward_with_extras(inputs)
    embedding = extras['ccl']
    assert torch.equal(head.eval()(inputs), head.eval().forward_with_extras(inputs)[0])
    head.train()
    assert logits.shape == (2, 5, 9, 7) and embedding.shape == (2, 4, 9, 7)
    # labels at 4x the feature size, as in a segmentor
    losses = head.loss(inputs, samples(2, 36, 28), train_cfg=None)
    assert set(losses) == {'loss_ce', 'loss_ccl', 'acc_seg'}
    assert torch.isfinite(losses['loss_ccl']) and losses['loss_ccl'] > 0
    losses['loss_ccl'].backward()
    assert head.ccl_proj.weight.grad.abs().sum() > 0
    assert head.convs[0].conv.weight.grad.abs().sum() > 0
    head.eval()
    assert head(inputs).shape == (2, 5, 9, 7)
    pred = head.predict(inputs, [s.metainfo for s in samples(2, 36, 28)], test_cfg=None)
    assert pred.shape == (2, 5, 36, 28)


def test_category_consistent_loss_alone_is_refused():
    with pytest.raises(ValueError, match='RCCAHead: loss_decode must contain a segmentation'):
        build(loss_decode=dict(type='CategoryConsistentLoss'))
