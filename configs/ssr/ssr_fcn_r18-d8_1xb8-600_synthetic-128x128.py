# SSR (Scale-Space Rendering) on the FCN of the synthetic configs (ResNetV1c-18 at 1/4 width),
# 600 iterations: the recipe of the demo config (ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py)
# on a wider network and a shorter schedule; the defaults of SSREncoderDecoder (random pairs of
# training scales, full per-scale supervision, terminal fusion), measured against the plain
# model in benchmarks/README.md (3 seeds). Tested on every training scale.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(
    type='SSREncoderDecoder',
    fusion='ssr',  # = dict(type='SSRScaleFusion', phi='abs', terminal=True)
    # SpatialAttention(in=decode_head.channels, mid=in, 1), activation 'abs' (official)
    scale_attention=dict(mid_channels=None),
    test_cfg=dict(mode='whole', scales=(0.5, 0.75, 1.0, 1.5, 2.0)))
# the random pairs of scales are the scale augmentation: RandomResize at ratio 1 (the images
# keep their 128x128 size; the benchmark's recipe has no resize augmentation either), with the
# synthetic configs' pipeline layout
train_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='LoadCheckedAnnotations', num_classes=5),
    dict(type='RandomResize', scale=(128, 128), ratio_range=(1.0, 1.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(128, 128), cat_max_ratio=1.0),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
# `tools/test.py --tta`: every view of `tta_pipeline` (scales x flips) is predicted at one scale
# with its density, then fused by SSR per flip and averaged over flips.
tta_model = dict(type='SSRTTAModel')
