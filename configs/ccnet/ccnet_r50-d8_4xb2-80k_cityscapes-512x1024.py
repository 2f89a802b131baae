# CCNet (RCCA head, R = 2) with ResNet-50-D8 on Cityscapes 512x1024, 80k iterations.
# mmseg's recipe with its CCHead replaced by our RCCAHead (same state dict: mmseg's zoo
# checkpoint for this config loads unchanged).
_base_ = 'mmseg::ccnet/ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(decode_head=dict(type='RCCAHead', recurrence=2))
