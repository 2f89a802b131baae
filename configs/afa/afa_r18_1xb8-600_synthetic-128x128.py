# Tiny AFA model on the synthetic multi-scale data (CPU demo and end-to-end test):
# the demo FCN's ResNetV1c-18 (1/4 width) without dilation, so that the levels have
# strides 4, 8, 16, 32, and the AFA neck. `--cfg-options model.neck.fusion=concat` (or add)
# runs the paper's ablation.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg),
    neck=dict(type='AFANeck', in_channels=[16, 32, 64, 128], fusion='afa', fused_levels=3,
              reduction=8, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=16, in_index=0, channels=32, concat_input=False,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=64, in_index=3, norm_cfg=norm_cfg))
