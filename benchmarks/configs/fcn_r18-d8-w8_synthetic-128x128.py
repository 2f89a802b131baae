# The plain model of the scale-fusion benchmark: the demo's network (ResNetV1c-18 at 1/8 width,
# D8, FCNHead + auxiliary FCNHead; configs/ssr/ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py
# without the scale fusion) as an EncoderDecoder, with the synthetic configs' scale
# augmentation (mmseg's RandomResize(ratio_range=(0.5, 2.0)) + RandomCrop(cat_max_ratio=0.75))
# and the demo's optimizer (SGD, lr 0.05, poly to 5e-4). The benchmark sets the iterations.
_base_ = '../../configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
width = 8
model = dict(
    backbone=dict(stem_channels=width, base_channels=width),
    decode_head=dict(in_channels=8 * width, channels=4 * width),
    auxiliary_head=dict(in_channels=4 * width, channels=2 * width))
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [dict(type='PolyLR', eta_min=5e-4, power=0.9, begin=0, end=1000,
                        by_epoch=False)]
train_cfg = dict(max_iters=1000, val_interval=1000)
