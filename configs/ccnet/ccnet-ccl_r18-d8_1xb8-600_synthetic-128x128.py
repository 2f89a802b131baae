# The tiny synthetic CCNet with the TPAMI category-consistent loss (8-channel projection).
_base_ = './ccnet_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(
    decode_head=dict(
        ccl_channels=8,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            dict(type='CategoryConsistentLoss', loss_weight=1.0),
        ]))
