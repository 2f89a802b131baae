# Composition: the iAFF-FPN of iaff_r18_1xb8-600_synthetic-128x128.py with AFA's bi-input
# fusion (Yang et al., WACV 2023) as its top-down merge instead of iAFF. One line: the neck's
# `fusion`.
_base_ = './iaff_r18_1xb8-600_synthetic-128x128.py'
model = dict(neck=dict(fusion=dict(_delete_=True, type='AFAFusion', reduction=8)))
