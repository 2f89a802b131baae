# The official CCNet (speedinghzl/CCNet, 2018 release, Cityscapes, ResNet-101, R = 2) in mmseg
# form: the model that tools/model_converters/ccnet2fusion.py converts the released weights
# into (they give 79.74 mIoU on Cityscapes val, single scale, in the official README).
# Differences from mmseg's CCNet recipe, all from the official code: deep stem 64-64-128
# (stem_channels=128), no dilation contraction (layer 3 dilation 2 and layer 4 dilation 4 in
# every block), InPlace-ABN -> BN + LeakyReLU(0.01) in both heads (the converter turns the
# InPlace-ABN weights w into |w| + 1e-5), a 512-channel auxiliary head (official `dsn`, its
# conv bias folded into the BN by the converter), align_corners=True, BGR input minus
# (104.00698793, 116.66876762, 122.67891434) without std division, 769x769 crops, batch 8, 60k iterations,
# lr 0.01, weight decay 1e-4 (README command), 769x769 sliding-window test (stride 513,
# official `predict_sliding` with 1/3 overlap).
# Not reproduced: the official max-pool uses ceil_mode=True while mmseg's ResNet does not;
# the two agree whenever the stem output size is odd (e.g. 769x769 windows: 385 -> 193) and
# differ by one row/column otherwise (e.g. a whole 1024x2048 image). Keep the sliding window.
# ImageNet weights: the official MIT resnet101-imagenet.pth (128-channel stem) is not an
# mmseg checkpoint; pretrained=None and the full model comes from the converter.
_base_ = [
    'mmseg::_base_/models/ccnet_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes_769x769.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (769, 769)
norm_cfg = dict(type='SyncBN', requires_grad=True)
act_cfg = dict(type='LeakyReLU', negative_slope=0.01)  # InPlace-ABN's activation
model = dict(
    data_preprocessor=dict(
        mean=[104.00698793, 116.66876762, 122.67891434], std=[1.0, 1.0, 1.0], bgr_to_rgb=False,
        size=crop_size),
    pretrained=None,
    backbone=dict(depth=101, stem_channels=128, contract_dilation=False, norm_cfg=norm_cfg),
    decode_head=dict(
        type='RCCAHead',
        recurrence=2,
        in_channels=2048,
        channels=512,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        align_corners=True),
    auxiliary_head=dict(
        in_channels=1024,
        channels=512,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        align_corners=True,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(513, 513)))
optim_wrapper = dict(optimizer=dict(lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=60000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000, val_interval=6000)
train_dataloader = dict(batch_size=2)
