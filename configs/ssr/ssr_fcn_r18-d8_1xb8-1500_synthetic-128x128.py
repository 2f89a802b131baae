# SSR trained from scratch with the defaults of SSREncoderDecoder (a random pair of scales per
# step out of (0.5, 1), (0.75, 1), (1, 1.5), (1, 2), each scale's prediction fully supervised,
# terminal fusion) over the benchmark's network, ResNetV1c-18 at 1/8 width (D8) + FCNHead, on
# the scale-limited synthetic data (`wide` style, the defaults of
# tools/dataset_converters/synthetic_scales.py). Tested on 5 scales. The benchmark's `ssr` rows
# (benchmarks/README.md); at equal training compute the plain model with scale augmentation
# does better, and the demo (`make demo`) adds SSR to that one instead:
# ssr-retrofit_fcn_r18-d8-w8_1xb8-195_synthetic-128x128.py.
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
width = 8
model = dict(
    backbone=dict(stem_channels=width, base_channels=width),
    decode_head=dict(in_channels=8 * width, channels=4 * width),
    auxiliary_head=dict(in_channels=4 * width, channels=2 * width),
    test_cfg=dict(mode='whole', scales=(0.5, 0.75, 1.0, 1.5, 2.0)))
# no RandomResize: the random pairs of scales are the scale augmentation (on this data mmseg's
# RandomResize also costs the plain model accuracy at this budget: benchmarks/README.md)
max_iters = 1500
optim_wrapper = dict(optimizer=dict(lr=0.05))
param_scheduler = [
    dict(type='PolyLR', eta_min=5e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=100), checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
# seeded, so that `make demo` prints the same numbers on the same machine (scripts/demo.sh
# adds deterministic=True where there is no CUDA: mmengine's deterministic mode stops CUDA
# training at the first bilinear upsampling backward)
randomness = dict(seed=0)
