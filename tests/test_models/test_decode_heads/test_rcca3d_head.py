"""RCCA3DHead: clips regrouped from the batch, 2D checkpoints load, clip_length=1 is RCCAHead."""
import io

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_fusion  # noqa: F401  (registers the heads)
from mmseg_fusion.layers import CrissCrossAttention3d
from mmseg_fusion.models.decode_heads import RCCA3DHead, RCCAHead

TINY = dict(in_channels=12, channels=8, num_classes=5, dropout_ratio=0.1, norm_cfg=dict(type='BN'))


def build(type_='RCCA3DHead', **kwargs):
    return MODELS.build(dict(type=type_, **{**TINY, **kwargs}))


def randomise(module, seed=0):
    """Non-trivial weights, BN statistics and gamma (so the attention matters)."""
    gen = torch.Generator().manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point():
            values = torch.randn(tensor.shape, generator=gen) * 0.3
            if name.endswith('running_var'):
                values = values.abs() + 0.5
            tensor.copy_(values)
    return module


def samples(n, h, w, num_classes=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        label = torch.randint(0, num_classes, (1, h, w), generator=gen)
        sample = SegDataSample(gt_sem_seg=PixelData(data=label))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        out.append(sample)
    return out


def test_registered_and_shapes():
    head = build(clip_length=3)
    assert isinstance(head, RCCA3DHead) and isinstance(head, RCCAHead)
    assert isinstance(head.cca, CrissCrossAttention3d)
    assert head.clip_length == 3 and head.recurrence == 2
    out = head([torch.randn(6, 12, 11, 13)])   # two clips of three frames
    assert out.shape == (6, 5, 11, 13)


def test_2d_checkpoint_loads_strict():
    ref = randomise(build('RCCAHead'))
    buffer = io.BytesIO()
    torch.save({'state_dict': ref.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)['state_dict']
    head = build(clip_length=4)
    assert list(head.state_dict()) == list(state)
    head.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in head.parameters()) == sum(p.numel() for p in ref.parameters())


@pytest.mark.parametrize('concat_input', [True, False])
def test_clip_length_one_equals_rcca_head_exactly(concat_input):
    ref = randomise(build('RCCAHead', concat_input=concat_input)).eval()
    head = build(clip_length=1, concat_input=concat_input)
    head.load_state_dict(ref.state_dict(), strict=True)
    head.eval()
    x = torch.randn(3, 12, 9, 7)
    x2, x3 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out2, out3 = ref([x2]), head([x3])
    assert torch.equal(out3, out2)
    weight = torch.randn_like(out2)
    (out2 * weight).sum().backward()
    (out3 * weight).sum().backward()
    assert torch.equal(x3.grad, x2.grad)
    for (name, p2), p3 in zip(ref.named_parameters(), head.parameters()):
        assert torch.equal(p2.grad, p3.grad), name


def test_batch_of_clips_equals_each_clip_alone():
    head = randomise(build(clip_length=3, recurrence=3)).eval()
    x = torch.randn(6, 12, 7, 9)
    with torch.no_grad():
        together = head([x])
        alone = torch.cat([head([x[:3]]), head([x[3:]])])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_frames_of_a_clip_interact_and_clips_do_not():
    head = randomise(build(clip_length=2)).eval()
    x = torch.randn(4, 12, 7, 9)
    x_changed = x.clone()
    x_changed[1] += 3.0   # second frame of the first clip
    with torch.no_grad():
        out, out_changed = head([x]), head([x_changed])
    diff = (out_changed - out).abs().flatten(1).amax(dim=1)
    assert diff[0] > 1e-3        # the other frame of its clip sees it
    assert diff[1] > 1e-3        # the frame itself
    assert torch.equal(out_changed[2:], out[2:])   # the second clip does not
    # the 2D head with the same weights: frames are independent
    ref = build('RCCAHead')
    ref.load_state_dict(head.state_dict())
    ref.eval()
    with torch.no_grad():
        assert torch.equal(ref([x_changed])[0], ref([x])[0])


def test_frame_order_within_a_clip_is_equivariant():
    # no temporal position code: permuting the frames of a clip permutes the outputs
    head = randomise(build(clip_length=3)).eval()
    x = torch.randn(3, 12, 6, 5)
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        torch.testing.assert_close(head([x[order]]), head([x])[order], rtol=1e-5, atol=1e-5)


def test_training_loss_and_gradients():
    head = build(clip_length=2)
    head.cca.gamma.scale.data.fill_(0.5)
    losses = head.loss([torch.randn(4, 12, 9, 7)], samples(4, 9, 7), train_cfg=None)
    assert set(losses) == {'loss_ce', 'acc_seg'}
    losses['loss_ce'].backward()
    for name, p in head.named_parameters():
        if name != 'cca.key_conv.bias':  # zero gradient by construction (softmax shift)
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_category_consistent_loss_works_on_clips():
    head = build(clip_length=2, ccl_channels=4,
                 loss_decode=[dict(type='CrossEntropyLoss', loss_weight=1.0),
                              dict(type='CategoryConsistentLoss', loss_weight=0.5)])
    losses = head.loss([torch.randn(4, 12, 9, 7)], samples(4, 18, 14), train_cfg=None)
    assert set(losses) == {'loss_ce', 'loss_ccl', 'acc_seg'}
    assert torch.isfinite(losses['loss_ccl'])


def test_batch_not_whole_clips_is_refused():
    head = build(clip_length=4)
    with pytest.raises(ValueError, match=r'RCCA3DHead: the batch holds 6 frames, not a multiple '
                                         r'of clip_length=4'):
        head([torch.randn(6, 12, 5, 5)])


@pytest.mark.parametrize('value', [0, -2, 1.5, True, '4'])
def test_bad_clip_length(value):
    with pytest.raises(ValueError, match=rf'RCCA3DHead: clip_length must be an int >= 1, got '
                                         rf'{value!r}'):
        build(clip_length=value)
