# The demo model: a small FCN (ResNetV1c-18 at 1/4 width) on the synthetic multi-scale data.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/datasets/synthetic_scales.py',
    '../_base_/schedules/schedule_synthetic.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (128, 128)
num_classes = 5
model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(depth=18, stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=128, channels=64, num_convs=1, num_classes=num_classes),
    auxiliary_head=dict(in_channels=64, channels=32, num_classes=num_classes))
# `tools/test.py --tta`: scales x flips of the dataset's tta_pipeline; a plain EncoderDecoder
# gives no densities, so SSRTTAModel averages the views' softmax (as mmseg's SegTTAModel does).
tta_model = dict(type='SSRTTAModel')
