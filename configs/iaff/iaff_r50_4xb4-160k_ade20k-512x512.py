# Semantic FPN whose top-down merges are iAFF, ResNet-50-V1c, ADE20K 512x512, 160k.
# Identical to mmseg's sem_fpn config but for the neck type: fusion='add' is mmseg's FPN.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(
    neck=dict(
        type='IAFFNeck',
        fusion='iaff',  # 'aff' / 'add'
        reduction=4,
        fusion_norm_cfg=dict(type='SyncBN', requires_grad=True)))
