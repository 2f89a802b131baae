# AFA neck (bi-input AFA nodes + multi-input AFA) on ResNet-50-V1c, ADE20K 512x512, 160k.
# Same backbone, data and schedule as mmseg's Semantic FPN config; neck and head replaced.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    neck=dict(
        _delete_=True,
        type='AFANeck',
        in_channels=[256, 512, 1024, 2048],
        fusion='afa',  # 'concat' / 'add': the paper's ablation
        fused_levels=3,
        norm_cfg=norm_cfg),
    # outs[0]: fused map, 256 channels at stride 4; outs[1 + j]: level j
    decode_head=dict(
        _delete_=True,
        type='FCNHead',
        in_channels=256,
        in_index=0,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=1024,
        in_index=3,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=150,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))
