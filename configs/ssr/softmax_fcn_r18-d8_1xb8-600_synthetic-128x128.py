# Attention to Scale (Chen et al. 2016): per-pixel softmax over the scales' scores.
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(fusion='softmax')
