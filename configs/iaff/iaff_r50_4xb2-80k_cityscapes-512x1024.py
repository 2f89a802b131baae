# Semantic FPN whose top-down merges are iAFF, ResNet-50-V1c, Cityscapes 512x1024, 80k.
# Identical to mmseg's sem_fpn config but for the neck type: fusion='add' is mmseg's FPN.
_base_ = 'mmseg::sem_fpn/fpn_r50_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(
    neck=dict(
        type='IAFFNeck',
        fusion='iaff',  # 'aff' / 'add'
        reduction=4,
        fusion_norm_cfg=dict(type='SyncBN', requires_grad=True)))
