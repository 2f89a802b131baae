# CCNet (RCCA head, R = 2) with ResNet-50-D8 on ADE20K 512x512, 160k iterations.
_base_ = 'mmseg::ccnet/ccnet_r50-d8_4xb4-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(decode_head=dict(type='RCCAHead', recurrence=2))
