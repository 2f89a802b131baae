# EMANet on ADE20K (no mmseg reference config): mmseg's EMANet model with EMAUHead, mmseg's
# ADE20K data and 80k schedule, as mmseg's other ADE20K recipes (e.g. nonlocal_net) do.
_base_ = [
    'mmseg::_base_/models/emanet_r50-d8.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(type='EMAUHead', num_classes=150),
    auxiliary_head=dict(num_classes=150))
