# The official AFA Cityscapes model (SysCV/dla-afa `afa_dla_up_ocr_ssr_dla102x`, train split,
# `inplace_abn: false`) in mmseg form: DLA-X-102 (levels 1..5, strides 2..32), AFA-DLA-Up
# (`AFANeck`, official depthwise-deconv upsampling, multi-input AFA into 32 channels at
# stride 2), the single-stage OCR head (`OCRBlockHead`, 256/128 channels, soft-region loss
# 0.4), 4 DLA deep-supervision heads (1x1 conv, loss 0.05 each) and SSR over scales
# (`SSREncoderDecoder`: trained on 0.5 and 1.0, tested on 0.5, 1.0, 1.5, 1.75, 2.0 with the
# whole image, as the official evaluation). tools/model_converters/dlaafa2fusion.py converts
# the released `cityscapes/afa_dla_up_ocr_ssr_dla102x.ckpt` into this config (official
# README: 85.14 mIoU on val with SSR, flips and SegFix; `model.test_cfg.flip=True` adds the
# flips, SegFix is not part of this project).
# Recipe from the official config: 8 GPUs x 1 image of 1024x2048, SyncBN, SGD lr 0.01
# (momentum 0.9, weight decay 1e-4), poly 0.9 with a 1000-iteration linear warmup from 1 %,
# 375 epochs of the 2975 training images (= 139.5k iterations), random scale 0.5-2.0,
# random rotation +-10 degrees, colour jitter. As official (`dla_resize`), inputs are resized
# up to multiples of 64 in training and 128 in testing before the network and the predictions
# back (`size_divisor_resize`; Cityscapes sizes already are multiples, BDD100K's 720 is not).
# Not reproduced (see configs/afa/README.md): the RMI/BCE loss (cross-entropy here), class-
# uniform sampling with the coarse and auto-labelled extra data, fp16, the SSR fusion of the 4
# deep-supervision outputs during training (here they see the 1.0 scale only), SegFix.
_base_ = [
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (1024, 2048)
num_classes = 19
norm_cfg = dict(type='SyncBN', requires_grad=True)
act_cfg = dict(type='ReLU')  # official bn_relu = BatchNorm2d + ReLU (inplace_abn: false)
max_iters = 140000
test_scales = (0.5, 1.0, 1.5, 1.75, 2.0)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)


def deep_supervision(in_index: int, channels: int) -> dict:
    """One official `fc_k` head: a 1x1 conv on an aggregated DLA-Up level."""
    return dict(
        type='FCNHead',
        in_channels=channels,
        in_index=in_index,
        channels=channels,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.05))


model = dict(
    type='SSREncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(type='DLA', arch='dla102x', out_indices=(1, 2, 3, 4, 5), norm_cfg=norm_cfg),
    # outs[0]: fused map (32 ch, stride 2); outs[1..5]: aggregated levels (strides 2..32)
    neck=dict(
        type='AFANeck',
        in_channels=[32, 128, 256, 512, 1024],
        fusion='afa',
        fused_levels=3,
        fused_channels=32,
        reduction=16,
        upsample='deconv',
        norm_cfg=norm_cfg,
        act_cfg=act_cfg),
    decode_head=dict(
        type='OCRBlockHead',
        in_channels=32,
        in_index=0,
        channels=256,
        ocr_channels=128,
        aux_loss_weight=0.4,
        dropout_ratio=0.05,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        act_cfg=act_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    # official fc_1..fc_4 on the DLA-Up outputs at strides 16, 8, 4, 2
    auxiliary_head=[
        deep_supervision(4, 512),
        deep_supervision(3, 256),
        deep_supervision(2, 128),
        deep_supervision(1, 32),
    ],
    # the official SSR, spelled out (the synthetic configs use the benchmark's recipe)
    fusion=dict(type='SSRScaleFusion', phi='abs', terminal=False),
    train_scales=(0.5, 1.0),
    scale_loss_weight=0.05,
    density_input='resized',
    # official scale_space_attn: SpatialAttention(256 -> 256 -> 256 -> 1), |.|, on the OCR
    # features
    scale_attention=dict(act_cfg=act_cfg),
    # official dla_resize: up to multiples of 64 (training) / 128 (testing), predictions back
    train_cfg=dict(size_divisor_resize=64),
    test_cfg=dict(mode='whole', scales=test_scales, size_divisor_resize=128))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 1024), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomRotate', prob=1.0, degree=10, pad_val=0, seg_pad_val=255),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=1, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=1000, by_epoch=False),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=1000, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=10000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
