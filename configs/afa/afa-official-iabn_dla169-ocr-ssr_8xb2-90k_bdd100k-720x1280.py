# The official AFA BDD100K model (dla-afa `afa_dla_up_ocr_ssr_dla169`, InPlace-ABN) in mmseg
# form: the network of afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py on a
# DLA-169 backbone, with leaky ReLU 0.01 (InPlace-ABN) outside the backbone, BDD100K's own
# input statistics (mean 0.279/0.293/0.290, std 0.247/0.265/0.276 of [0, 1] RGB) and SSR
# tested on 0.5, 1.0, 1.5, 2.0; as official, the 720x1280 images run at 768x1280 (resized up
# to multiples of 128, the predictions resized back; 64 in training: also 768x1280).
# tools/model_converters/dlaafa2fusion.py converts the released
# `bdd100k/afa_dla_up_ocr_ssr_dla169.ckpt` into it (official README: 67.46 mIoU on val).
# Recipe from the official config: 8 GPUs x 2 crops of 720x1280, lr 0.015, 200 epochs of the
# 7000 training images (= 87.5k iterations). Data: mmseg's BDD100K layout (data/bdd100k).
_base_ = './afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py'
crop_size = (720, 1280)
act_cfg = dict(type='LeakyReLU', negative_slope=0.01)  # InPlace-ABN's activation
max_iters = 90000
test_scales = (0.5, 1.0, 1.5, 2.0)
model = dict(
    data_preprocessor=dict(
        mean=[71.145, 74.715, 73.95], std=[62.985, 67.575, 70.38], size=crop_size),
    backbone=dict(arch='dla169'),
    neck=dict(act_cfg=act_cfg),
    decode_head=dict(act_cfg=act_cfg),
    scale_attention=dict(act_cfg=act_cfg),
    test_cfg=dict(scales=test_scales))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(1280, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomRotate', prob=1.0, degree=10, pad_val=0, seg_pad_val=255),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# mmseg's BDD100K layout (mmseg::_base_/datasets/bdd100k.py)
_bdd100k = dict(type='BDD100KDataset', data_root='data/bdd100k/')
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        _delete_=True,
        **_bdd100k,
        data_prefix=dict(img_path='images/10k/train', seg_map_path='labels/sem_seg/masks/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        **_bdd100k,
        data_prefix=dict(img_path='images/10k/val', seg_map_path='labels/sem_seg/masks/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.015))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=1000, by_epoch=False),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=1000, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters)
