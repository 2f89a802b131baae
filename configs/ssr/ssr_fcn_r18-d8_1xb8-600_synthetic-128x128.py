# SSR (Scale-Space Rendering) on the demo FCN: trained on scales (0.5, 1.0), tested on
# (0.5, 1.0, 1.5, 2.0) with the learned per-pixel scale density; `--tta` adds flips.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(
    type='SSREncoderDecoder',
    fusion='ssr',
    phi='abs',
    train_scales=(0.5, 1.0),
    scale_loss_weight=0.05,
    # SpatialAttention(in=decode_head.channels, mid=in, 1), activation 'abs' (official)
    scale_attention=dict(mid_channels=None),
    test_cfg=dict(mode='whole', scales=(0.5, 1.0, 1.5, 2.0)))
# `tools/test.py --tta`: every view of `tta_pipeline` (scales x flips) is predicted at one scale
# with its density, then fused by SSR per flip and averaged over flips.
tta_model = dict(type='SSRTTAModel')
