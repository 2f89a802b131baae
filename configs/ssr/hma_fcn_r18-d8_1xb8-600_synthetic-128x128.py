# HMA (hierarchical multi-scale attention, Tao et al. 2020) on the demo FCN, same budget as SSR:
# sigmoid attention = SSR with phi=softplus and a terminal finest scale.
_base_ = './ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'
model = dict(fusion='hma')
