# A²-Nets double attention head on mmseg's NonLocal Cityscapes recipe: same backbone, auxiliary
# head, data and schedule as nonlocal_r50-d8, with A2Head in place of NLHead.
_base_ = 'mmseg::nonlocal_net/nonlocal_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='A2Head',
        in_channels=2048,
        in_index=3,
        channels=512,
        mid_channels=128,
        num_descriptors=128,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
