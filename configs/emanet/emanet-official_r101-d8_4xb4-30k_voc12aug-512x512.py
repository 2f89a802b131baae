# The official EMANet (XiaLiPKU/EMANet, PASCAL VOC, ResNet-101) in mmseg form: the model the
# official checkpoint converts into. Differences from mmseg's EMANet recipe, all from the
# official code: deep stem 64-64-128 (stem_channels=128), layer4 block dilations (2, 8, 16),
# EMAUHead(official=True) (no concat conv, 1e-6 epsilons, bases averaged without
# re-normalisation), no auxiliary head, align_corners=True, BN momentum 3e-4, 30k iterations
# at lr 9e-3 with batch 16. Not reproduced: the official 513x513 crop (mmseg's VOC pipeline
# crops 512x512), the doubled learning rate of biases and the poly update every 10 iterations.
_base_ = [
    'mmseg::_base_/models/emanet_r50-d8.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True, momentum=3e-4)
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,  # the official ImageNet ResNet has a 128-channel stem; weights come
    # from tools/model_converters (the converted official checkpoint)
    backbone=dict(depth=101, stem_channels=128, multi_grid=(2, 8, 16), norm_cfg=norm_cfg),
    decode_head=dict(
        type='EMAUHead',
        official=True,
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=True),
    auxiliary_head=None)
optim_wrapper = dict(optimizer=dict(lr=0.009, weight_decay=1e-4))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=30000, by_epoch=False)
]
train_cfg = dict(max_iters=30000, val_interval=3000)
train_dataloader = dict(batch_size=4)
