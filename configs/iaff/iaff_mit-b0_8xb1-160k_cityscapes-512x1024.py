# SegFormer MiT-B0 + iAFF-FPN neck + SegFormer head, Cityscapes 512x1024, 160k (mmseg's
# SegFormer optimiser and schedule, the Cityscapes 512x1024 pipeline of its CNN configs).
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    'mmseg::_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b0_20220624-7e0fe6dd.pth'  # noqa
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=checkpoint)),
    neck=dict(
        type='IAFFNeck',
        in_channels=[32, 64, 160, 256],
        out_channels=256,
        num_outs=4,
        fusion='iaff',
        reduction=4,
        fusion_norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[256, 256, 256, 256]),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.),
            'neck': dict(lr_mult=10.),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=160000, by_epoch=False),
]
# 8 GPUs x 1 image (the 8xb1 of the name), as in mmseg's SegFormer MiT-B0 Cityscapes config
# and the official AFA configs, with SyncBN. iAFF's global branch normalises pooled
# (N, C/r, 1, 1) tensors, so each normalisation needs 2 or more images: SyncBN over >= 2
# processes gives them (tools/dist_train.sh; on CPU too, over gloo). A single-process run
# turns SyncBN into BN (mmengine) and stops at batch 1 with 'Expected more than 1 value per
# channel when training': there add --cfg-options train_dataloader.batch_size=2 (1x2).
train_dataloader = dict(batch_size=1, num_workers=4)
val_dataloader = dict(batch_size=1, num_workers=4)
test_dataloader = val_dataloader
