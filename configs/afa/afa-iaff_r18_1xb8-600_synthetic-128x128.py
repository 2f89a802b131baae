# Composition: the AFA neck of afa_r18_1xb8-600_synthetic-128x128.py with iAFF (Dai et al.,
# WACV 2021) in its aggregation nodes instead of AFA's bi-input fusion; the final fusion of the
# levels folds the same iAFF pairwise (FoldFusion). One line: the neck's `fusion`.
_base_ = './afa_r18_1xb8-600_synthetic-128x128.py'
model = dict(neck=dict(fusion=dict(_delete_=True, type='IAFFFusion', reduction=4)))
