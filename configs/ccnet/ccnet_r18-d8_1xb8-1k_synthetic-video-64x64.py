# The 2D baseline of the video demo: RCCAHead on the same clips (2 clips of 4 consecutive
# frames per batch) as ccnet3d_r18-d8_1xb8-1k_synthetic-video-64x64.py, every frame alone.
# Generate the data first: python tools/dataset_converters/synthetic_video.py data/synthetic_video
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/datasets/synthetic_video.py',
    '../_base_/schedules/schedule_synthetic.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (64, 64)
num_classes = 5
max_iters = 1000
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16),
    decode_head=dict(type='RCCAHead', in_channels=128, channels=32, num_convs=2, recurrence=2,
                     num_classes=num_classes),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=num_classes))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters))
