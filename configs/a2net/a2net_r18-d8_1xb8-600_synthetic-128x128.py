# A tiny A²-Nets head on the synthetic data (the demo FCN with its decode head swapped for A2Head).
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='A2Head',
        in_channels=128,
        in_index=3,
        channels=32,
        mid_channels=8,
        num_descriptors=8,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=5,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
