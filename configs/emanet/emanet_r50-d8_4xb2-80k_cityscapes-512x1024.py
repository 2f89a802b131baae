# mmseg's EMANet recipe with mmseg_fusion's EMAUHead: same keys and defaults as mmseg's EMAHead
# (concat_input=True, bases re-normalised after averaging), so mmseg-zoo EMANet checkpoints load.
_base_ = 'mmseg::emanet/emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['mmseg_fusion'], allow_failed_imports=False)
model = dict(decode_head=dict(type='EMAUHead'))
