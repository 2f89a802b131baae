# AFA neck on SegFormer's MiT-B0, ADE20K 512x512, 160k (mmseg's SegFormer recipe; the
# all-MLP head is replaced by the AFA neck and an FCN head on the fused map).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    neck=dict(
        type='AFANeck',
        in_channels=[32, 64, 160, 256],
        fusion='afa',
        fused_levels=3,
        fused_channels=128,
        norm_cfg=norm_cfg),
    # outs[0]: fused map, 128 channels at stride 4
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=128,
        in_index=0,
        channels=128,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
