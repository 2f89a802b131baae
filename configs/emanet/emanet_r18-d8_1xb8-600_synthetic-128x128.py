# A tiny EMANet on the synthetic data (the demo FCN with its decode head swapped for EMAUHead).
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='EMAUHead',
        in_channels=128,
        in_index=3,
        channels=32,
        ema_channels=32,
        num_bases=16,
        num_stages=3,
        momentum=0.1,
        dropout_ratio=0.1,
        num_classes=5,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
