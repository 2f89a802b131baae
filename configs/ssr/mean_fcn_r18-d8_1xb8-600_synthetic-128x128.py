# Baseline: the mean of the scales' logits (no scale attention), trained on (0.5, 1.0).
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(fusion='mean')
