# The official AFA Cityscapes test-server model (dla-afa `afa_dla_up_ocr_ssr_dla102x_cv_3`:
# train + val, InPlace-ABN) in mmseg form: the network of
# afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py with the official
# InPlace-ABN activation (leaky ReLU 0.01) in every conv-norm-act outside the DLA backbone; the
# converter (tools/model_converters/dlaafa2fusion.py) turns the InPlace-ABN weights w into
# |w| + 1e-5 for these BatchNorm layers. Official README: 83.58 mIoU on the Cityscapes test
# server (5-scale SSR, flips, SegFix).
# Recipe from the official config: 8 GPUs x 2 crops of 1024x1024 from train + val (3475
# images), lr 0.015, 275 epochs (= 59.7k iterations).
_base_ = './afa-official_dla102x-ocr-ssr_8xb1-140k_cityscapes-1024x2048.py'
crop_size = (1024, 1024)
act_cfg = dict(type='LeakyReLU', negative_slope=0.01)  # InPlace-ABN's activation
max_iters = 60000
model = dict(
    data_preprocessor=dict(size=crop_size),
    neck=dict(act_cfg=act_cfg),
    decode_head=dict(act_cfg=act_cfg),
    scale_attention=dict(act_cfg=act_cfg))
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
_cityscapes = dict(type='CityscapesDataset', data_root='data/cityscapes/',
                   pipeline=train_pipeline)
train_dataloader = dict(
    batch_size=2,
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(**_cityscapes,
                 data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train')),
            dict(**_cityscapes,
                 data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')),
        ]))
optim_wrapper = dict(optimizer=dict(lr=0.015))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=1000, by_epoch=False),
    dict(type='PolyLR', power=0.9, eta_min=0.0, begin=1000, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters)
