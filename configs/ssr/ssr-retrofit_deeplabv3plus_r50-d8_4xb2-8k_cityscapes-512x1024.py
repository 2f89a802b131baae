# SSR as a retrofit of mmseg's trained DeepLabV3+ R50-D8 (its Cityscapes zoo checkpoint, 80k
# iterations, 80.09 mIoU): the same network as SSREncoderDecoder, fine-tuned on random pairs of
# scales for 8k iterations (10 % of the original iterations, about 20 % of its training
# compute: an SSR step on these pairs costs about 2 plain steps) at a tenth of the learning
# rate. Every backbone and head weight loads from the zoo checkpoint; only the scale attention
# is new. Not run here (no Cityscapes data on the development machines): the recipe of the
# synthetic retrofit rows of benchmarks/README.md.
_base_ = './ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
load_from = ('https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3plus/'
             'deeplabv3plus_r50-d8_512x1024_80k_cityscapes/'
             'deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth')
max_iters = 8000
optim_wrapper = dict(optimizer=dict(lr=0.001))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
