# SSR (Scale-Space Rendering) on the demo FCN: trained and tested on scales (0.5, 1.0) with the
# learned per-pixel scale density; `--tta` tests the dataset's 4 scales x 2 flips.
# The recipe of the benchmark in configs/ssr/README.md (3 seeds): full per-scale supervision
# (scale_loss_weight 1.0, official 0.05; +15 mIoU there); test scales beyond the training
# scales (1.5, 2.0) lowered every fusion there.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(
    type='SSREncoderDecoder',
    fusion='ssr',
    phi='abs',
    terminal=False,
    train_scales=(0.5, 1.0),
    scale_loss_weight=1.0,
    # SpatialAttention(in=decode_head.channels, mid=in, 1), activation 'abs' (official)
    scale_attention=dict(mid_channels=None),
    test_cfg=dict(mode='whole', scales=(0.5, 1.0)))
# `tools/test.py --tta`: every view of `tta_pipeline` (scales x flips) is predicted at one scale
# with its density, then fused by SSR per flip and averaged over flips.
tta_model = dict(type='SSRTTAModel')
