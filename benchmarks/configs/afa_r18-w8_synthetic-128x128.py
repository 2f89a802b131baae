# The AFA rows of the scale-fusion benchmark: the plain benchmark model's backbone without
# dilation (levels at strides 4-32, 8/16/32/64 channels) with AFANeck (fusion switched by the
# benchmark: afa, concat, add), the FCN head on the fused stride-4 map, the same training.
_base_ = './fcn_r18-d8-w8_synthetic-128x128.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg),
    neck=dict(type='AFANeck', in_channels=[8, 16, 32, 64], fusion='afa', fused_levels=3,
              reduction=8, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=8, in_index=0, channels=32, concat_input=False),
    auxiliary_head=dict(in_channels=32, in_index=3))
