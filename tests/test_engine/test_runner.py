"""build_runner: the model's backbone/neck/heads wiring is checked when the runner is built."""
import copy

import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers the models)
from mmseg_fusion.engine import build_runner
from mmseg_fusion.engine.runner import check_model_wiring

NORM = dict(type='BN', requires_grad=True)
MODEL = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.], std=[1., 1., 1.]),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  out_indices=(0, 1, 2, 3), norm_cfg=NORM),
    neck=dict(type='IAFFNeck', in_channels=[8, 16, 32, 64], out_channels=8, num_outs=4,
              reduction=2),
    decode_head=dict(type='FCNHead', in_channels=8, in_index=0, channels=8, num_convs=1,
                     num_classes=3, norm_cfg=NORM),
)


def model_cfg(**overrides):
    cfg = copy.deepcopy(MODEL)
    for key, value in overrides.items():
        cfg[key] = dict(cfg[key], **value)
    return cfg


def runner_cfg(model, work_dir):
    return Config(dict(model=model, work_dir=str(work_dir), default_scope='mmseg',
                       launcher='none', log_level='WARNING'))


def test_matching_model_builds(tmp_path):
    runner = build_runner(runner_cfg(model_cfg(), tmp_path))
    assert runner.model.training


@pytest.mark.parametrize('overrides, match', [
    (dict(neck=dict(in_channels=[8, 16, 32])),
     r'EncoderDecoder: neck \(IAFFNeck\) in_channels must be \[8, 16, 32, 64\] .* got '
     r'\[8, 16, 32\]'),
    (dict(decode_head=dict(in_index=4)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_index must index one of the 4 outputs of '
     r'IAFFNeck \(in \[-4, 3\]\), got 4'),
    (dict(decode_head=dict(in_channels=64)),
     r'EncoderDecoder: decode_head \(FCNHead\) in_channels must be 8 .* got 64'),
])
def test_mismatch_raises_when_the_runner_is_built(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        build_runner(runner_cfg(model_cfg(**overrides), tmp_path))


def test_tta_model_is_unwrapped():
    init_default_scope('mmseg')
    tta = MODELS.build(dict(type='SSRTTAModel', module=model_cfg(decode_head=dict(in_index=9))))
    with pytest.raises(ValueError, match=r'decode_head \(FCNHead\) in_index .* got 9'):
        check_model_wiring(tta)


def test_other_models_are_left_alone():
    check_model_wiring(nn.Linear(2, 2))
