# The first stage of the demo (`make demo`): the demo's plain network, ResNetV1c-18 at 1/8 width
# (D8) + FCNHead, trained with mmseg's usual scale augmentation (RandomResize 0.5-2 +
# RandomCrop) for 2766 iterations: the training compute of 1000 SSR steps on random pairs of
# scales. On the benchmark's data it beats SSR trained from scratch with that compute
# (benchmarks/README.md); the second stage adds SSR to it:
# configs/ssr/ssr-retrofit_fcn_r18-d8-w8_1xb8-195_synthetic-128x128.py.
_base_ = './fcn_r18-d8_1xb8-600_synthetic-128x128.py'
width = 8
model = dict(
    backbone=dict(stem_channels=width, base_channels=width),
    decode_head=dict(in_channels=8 * width, channels=4 * width),
    auxiliary_head=dict(in_channels=4 * width, channels=2 * width))
max_iters = 2766
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(type='PolyLR', eta_min=5e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=100), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0)
