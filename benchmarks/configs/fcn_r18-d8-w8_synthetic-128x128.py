# The plain model of the scale-fusion benchmark: the demo's first stage
# (configs/synthetic/fcn_r18-d8-w8_1xb8-2766_synthetic-128x128.py: ResNetV1c-18 at 1/8 width,
# D8, FCNHead + auxiliary FCNHead, the synthetic configs' scale augmentation RandomResize(0.5-2)
# + RandomCrop(cat_max_ratio=0.75), SGD lr 0.05, poly to 5e-4). The benchmark sets the
# iterations and the seed.
_base_ = '../../configs/synthetic/fcn_r18-d8-w8_1xb8-2766_synthetic-128x128.py'
max_iters = 1000
param_scheduler = [
    dict(type='PolyLR', eta_min=5e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
