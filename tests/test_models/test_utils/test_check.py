"""check_encoder_decoder: backbone outputs vs neck in_channels vs heads' in_channels/in_index."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers the models)
from mmseg_fusion.models.utils import (
    check_encoder_decoder,
    check_head_inputs,
    check_neck_in_channels,
    output_channels,
)

NORM = dict(type='BN', requires_grad=True)
# plain mmseg EncoderDecoder: mmseg does not check the wiring, check_encoder_decoder does
BASE = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.]),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  out_indices=(0, 1, 2, 3), norm_cfg=NORM, norm_eval=True),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=8, num_convs=1,
                     num_classes=3, norm_cfg=NORM),
)
AUX = dict(type='FCNHead', in_channels=32, in_index=2, channels=4, num_convs=1, num_classes=3,
           norm_cfg=NORM)
IAFF = dict(type='IAFFNeck', in_channels=[8, 16, 32, 64], out_channels=8, num_outs=4,
            reduction=2)
AFA = dict(type='AFANeck', in_channels=[8, 16, 32, 64], reduction=4)


def build(**overrides):
    init_default_scope('mmseg')
    cfg = copy.deepcopy(BASE)
    cfg.update(overrides)
    return MODELS.build(cfg)


def head(**kwargs):
    return dict(BASE['decode_head'], **kwargs)


@pytest.mark.parametrize('overrides', [
    dict(),
    dict(auxiliary_head=AUX),
    dict(neck=IAFF, decode_head=head(in_channels=8, in_index=0),
         auxiliary_head=[dict(AUX, in_channels=8, in_index=-1), dict(AUX, in_channels=8)]),
    # AFANeck: outs[0] fused (8 channels), then one map per level [8, 16, 32, 64]
    dict(neck=AFA, decode_head=head(in_channels=8, in_index=0),
         auxiliary_head=dict(AUX, in_index=3)),
    dict(decode_head=head(in_channels=[16, 32, 64], in_index=[1, 2, 3],
                          input_transform='resize_concat')),
    dict(decode_head=dict(type='UPerHead', in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3],
                          channels=8, num_classes=3, norm_cfg=NORM, pool_scales=(1, 2))),
])
def test_matching_models_pass(overrides):
    check_encoder_decoder(build(**overrides))


@pytest.mark.parametrize('overrides, match', [
    # 1 (b): a neck with one in_channels entry too few, or a wrong one
    (dict(neck=dict(IAFF, in_channels=[8, 16, 32]), decode_head=head(in_channels=8)),
     r'EncoderDecoder: neck \(IAFFNeck\) in_channels must be \[8, 16, 32, 64\] \(one entry per '
     r'output of ResNetV1c, 4 outputs\), got \[8, 16, 32\]'),
    (dict(neck=dict(AFA, in_channels=[8, 16, 64, 64]), decode_head=head(in_channels=8)),
     r'EncoderDecoder: neck \(AFANeck\) in_channels must be \[8, 16, 32, 64\] .*'
     r'got \[8, 16, 64, 64\]'),
    (dict(neck=dict(IAFF, in_channels=[8, 16, 32, 64, 128], num_outs=5),
          decode_head=head(in_channels=8)),
     r'EncoderDecoder: neck \(IAFFNeck\) in_channels .* got \[8, 16, 32, 64, 128\]'),
    # 8: in_index past the outputs of the neck / of the backbone
    (dict(neck=IAFF, decode_head=head(in_channels=8, in_index=4)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs of '
     r'IAFFNeck \(in \[-4, 3\]\), got 4'),
    (dict(neck=AFA, decode_head=head(in_channels=8, in_index=0),
          auxiliary_head=dict(AUX, in_index=5)),
     r'EncoderDecoder: auxiliary_head \(FCNHead\) in_index must index one of the 5 outputs of '
     r'AFANeck \(in \[-5, 4\]\), got 5'),
    (dict(decode_head=head(in_index=7)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs of '
     r'ResNetV1c \(in \[-4, 3\]\), got 7'),
    (dict(auxiliary_head=[AUX, dict(AUX, in_index=-5)]),
     r'EncoderDecoder: auxiliary_head\[1\] \(FCNHead\) in_index .* got -5'),
    (dict(decode_head=dict(type='UPerHead', in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 4],
                           channels=8, num_classes=3, norm_cfg=NORM)),
     r'EncoderDecoder: decode_head \(UPerHead\) in_index must index one of the 4 outputs of '
     r'ResNetV1c \(in \[-4, 3\]\), got \[0, 1, 2, 4\]'),
    # head in_channels that do not match the selected output(s)
    (dict(decode_head=head(in_channels=32)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_channels must be 64 \(the channels of '
     r'ResNetV1c output 3\), got 32'),
    (dict(neck=IAFF, decode_head=head(in_channels=64, in_index=0)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_channels must be 8 \(the channels of '
     r'IAFFNeck output 0\), got 64'),
    (dict(auxiliary_head=dict(AUX, in_channels=16)),
     r'EncoderDecoder: auxiliary_head \(FCNHead\) in_channels must be 32 .* got 16'),
    (dict(decode_head=head(in_channels=[16, 32, 32], in_index=[1, 2, 3],
                           input_transform='resize_concat')),
     r'EncoderDecoder: decode_head \(FCNHead\) in_channels must sum to 112 \(resize_concat of '
     r'ResNetV1c outputs \[1, 2, 3\] with channels \[16, 32, 64\]\), got a sum of 80'),
    (dict(decode_head=dict(type='UPerHead', in_channels=[8, 16, 32, 32], in_index=[0, 1, 2, 3],
                           channels=8, num_classes=3, norm_cfg=NORM)),
     r'EncoderDecoder: decode_head \(UPerHead\) in_channels must be \[8, 16, 32, 64\] .*'
     r'got \[8, 16, 32, 32\]'),
])
def test_mismatch_raises(overrides, match):
    model = build(**overrides)
    with pytest.raises(ValueError, match=match):
        check_encoder_decoder(model)


def test_train_flags_and_rng_are_untouched():
    model = build(auxiliary_head=AUX)
    model.train()  # ResNet's norm_eval keeps its BN layers in eval mode
    flags = {name: m.training for name, m in model.named_modules()}
    assert not all(flags.values()) and any(flags.values())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    check_encoder_decoder(model)
    assert {name: m.training for name, m in model.named_modules()} == flags
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(p.grad is None for p in model.parameters())


class TensorBackbone(nn.Module):
    """Returns one tensor, not a list of levels (as DDRNet/PIDNet in eval mode)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return self.conv(x)


class FailingBackbone(TensorBackbone):
    def forward(self, x):
        raise RuntimeError('needs a 512x512 input')


@pytest.mark.parametrize('backbone', [TensorBackbone(), FailingBackbone()])
def test_unknown_layout_is_not_checked(backbone):
    model = nn.Module()
    model.backbone = backbone
    model.decode_head = MODELS.build(head(in_index=99))
    check_encoder_decoder(model)  # nothing inferred, nothing raised


def test_output_channels():
    assert output_channels(torch.zeros(1, 3, 2, 2)) is None
    assert output_channels([torch.zeros(1, 3, 2, 2), [torch.zeros(1, 3, 2, 2)],
                            torch.zeros(1, 5, 2)]) == [3, None, None]


def test_parts_name_the_owner():
    neck = MODELS.build(dict(IAFF, in_channels=[8, 16]))
    with pytest.raises(ValueError, match=r'Seg: neck \(IAFFNeck\) in_channels must be '
                                         r'\[8, \?, 32\] \(one entry per output of Backbone, 3 '
                                         r'outputs\), got \[8, 16\]'):
        check_neck_in_channels('Seg', neck, [8, None, 32], 'Backbone')
    check_neck_in_channels('Seg', neck, [8, None], 'Backbone')  # unknown entries match
    check_head_inputs('Seg', 'decode_head', MODELS.build(head()), [1, 2, 3, None], 'X')
    with pytest.raises(ValueError, match=r'Seg: aux \(FCNHead\) in_index .* got True'):
        check_head_inputs('Seg', 'aux', MODELS.build(head(in_index=True)), [64, 64], 'X')
