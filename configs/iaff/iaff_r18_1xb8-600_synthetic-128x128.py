# Tiny iAFF-FPN model on the synthetic multi-scale data (CPU demo and end-to-end test):
# the demo FCN's ResNetV1c-18 (1/4 width) without dilation, an iAFF-FPN neck and the demo's
# FCN head on its finest output. `--cfg-options model.neck.fusion=aff` (or add) switches.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg),
    neck=dict(type='IAFFNeck', in_channels=[16, 32, 64, 128], out_channels=32, num_outs=4,
              fusion='iaff', reduction=4),
    decode_head=dict(in_channels=32, in_index=0, channels=32, concat_input=False,
                     norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=32, in_index=2, norm_cfg=norm_cfg))
