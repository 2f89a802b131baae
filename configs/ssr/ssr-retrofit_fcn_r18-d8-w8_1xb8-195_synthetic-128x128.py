# The second stage of the demo (`make demo`): SSR added to the trained plain model of
# configs/synthetic/fcn_r18-d8-w8_1xb8-2766_synthetic-128x128.py (tools/train.py writes its
# checkpoint to the path below by default) by fine-tuning it as SSREncoderDecoder on random
# pairs of scales for 20 % of its training compute (2766 x 0.2 plain steps = 195 SSR steps), at
# a fifth of its learning rate. Only the scale attention is new. The benchmark's
# `retrofit-ssr@2766` row: +0.7 mIoU over training the plain model on for the same compute, at
# the same inference cost (5 scales), on both of its data sets (benchmarks/README.md).
_base_ = './ssr_fcn_r18-d8_1xb8-1500_synthetic-128x128.py'
load_from = 'work_dirs/fcn_r18-d8-w8_1xb8-2766_synthetic-128x128/iter_2766.pth'
max_iters = 195
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='PolyLR', eta_min=5e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=max_iters))
