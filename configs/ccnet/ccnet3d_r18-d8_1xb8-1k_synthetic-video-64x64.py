# CCNet's 3D criss-cross attention (TPAMI) on the synthetic videos: RCCA3DHead attends over
# the row and column of each frame and the same pixel in the other frames of the clip. Batches
# hold 2 clips of `clip_length` = 4 consecutive frames (ClipSampler); the head regroups them.
# The state dict is the 2D config's: its checkpoints load here and vice versa.
_base_ = './ccnet_r18-d8_1xb8-1k_synthetic-video-64x64.py'
clip_length = 4
model = dict(decode_head=dict(type='RCCA3DHead', clip_length=clip_length))
