# SegFormer MiT-B0 + iAFF-FPN neck + SegFormer head, ADE20K 512x512, 160k (mmseg's recipe;
# the neck brings the four levels to 256 channels with iAFF top-down merges).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(
    neck=dict(
        type='IAFFNeck',
        in_channels=[32, 64, 160, 256],
        out_channels=256,
        num_outs=4,
        fusion='iaff',
        reduction=4,
        fusion_norm_cfg=dict(type='SyncBN', requires_grad=True)),
    decode_head=dict(in_channels=[256, 256, 256, 256]))
