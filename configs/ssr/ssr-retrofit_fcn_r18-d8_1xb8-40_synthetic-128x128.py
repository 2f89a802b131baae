# SSR as a retrofit of a trained plain model: start from the checkpoint of
# configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py (the same network as an
# EncoderDecoder; tools/train.py writes it to the path below by default) and fine-tune it as
# SSREncoderDecoder on random pairs of scales for 20 % of the plain model's training compute
# (600 plain steps x 0.2 / 2.8: an SSR step on a random pair costs about 2.8 plain steps), at a
# fifth of its learning rate. Every backbone and head weight loads; only the scale attention
# is new, and the loader says so ("missing keys in source state_dict: scale_attention.*").
#   python tools/train.py configs/synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py
#   python tools/train.py configs/ssr/ssr-retrofit_fcn_r18-d8_1xb8-40_synthetic-128x128.py
# (or --cfg-options load_from=<your EncoderDecoder checkpoint>)
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
load_from = 'work_dirs/fcn_r18-d8_1xb8-600_synthetic-128x128/iter_600.pth'
max_iters = 40
optim_wrapper = dict(optimizer=dict(lr=0.004))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
