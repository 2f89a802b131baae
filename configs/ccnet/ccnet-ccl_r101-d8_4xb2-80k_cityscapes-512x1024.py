# CCNet TPAMI: RCCA head plus the category-consistent loss on 16-channel projected attention
# features (delta_v 0.5, delta_d 1.5, alpha = beta = 1, gamma = 0.001), ResNet-101-D8,
# Cityscapes 512x1024, 80k iterations. The head gains `ccl_proj` (1x1, 512 -> 16): load an
# mmseg CCNet checkpoint into it with strict=False (only `decode_head.ccl_proj.*` missing).
_base_ = './ccnet_r101-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(
    decode_head=dict(
        ccl_channels=16,
        loss_decode=[
            dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            dict(type='CategoryConsistentLoss', delta_v=0.5, delta_d=1.5, alpha=1.0,
                 beta=1.0, gamma=0.001, loss_weight=1.0),
        ]))
