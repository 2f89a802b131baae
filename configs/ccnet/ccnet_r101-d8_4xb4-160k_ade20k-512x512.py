# CCNet (RCCA head, R = 2) with ResNet-101-D8 on ADE20K 512x512, 160k iterations.
_base_ = './ccnet_r50-d8_4xb4-160k_ade20k-512x512.py'
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
