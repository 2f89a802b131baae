# A tiny CCNet on the synthetic data (CPU demo and end-to-end test): the demo FCN with its
# head replaced by RCCAHead with small channels.
_base_ = '../synthetic/fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(decode_head=dict(type='RCCAHead', channels=32, num_convs=2, recurrence=2))
