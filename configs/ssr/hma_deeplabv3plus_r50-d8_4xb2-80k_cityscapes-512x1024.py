# HMA (Tao et al. 2020) with the same recipe as the SSR config: sigmoid attention on the same
# features (SSR with phi=softplus and a terminal finest scale), trained on the same random pairs
# of scales.
_base_ = './ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
model = dict(fusion='hma')
