# Baseline: the mean of the scales' logits (no scale attention), trained as the SSR config.
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(fusion='mean')
