"""Every decode head of the package composes with every segmentor (one head protocol).

The matrix: each head x {``EncoderDecoder``, ``SSREncoderDecoder`` with SSR and with HMA} x
with and without an auxiliary head; each cell runs one training step (finite loss, gradients
flow back) and one ``predict`` at an odd size (exact shape). The neck compositions (iAFF in
``AFANeck``, AFA in ``IAFFNeck``, a user's own registered fusion in either) train through
``tools/train.py``.
"""
import os.path as osp
import textwrap

import pytest

NORM = dict(type='BN', requires_grad=True)
BACKBONE = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                norm_cfg=NORM)
COMMON = dict(in_channels=64, in_index=3, channels=8, num_classes=3, norm_cfg=NORM)
CE = dict(type='CrossEntropyLoss', loss_weight=1.0)
HEADS = {
    'RCCAHead': dict(type='RCCAHead', recurrence=2, **COMMON),
    'RCCAHead+CCL': dict(type='RCCAHead', recurrence=2, ccl_channels=4, **dict(
        COMMON, loss_decode=[CE, dict(type='CategoryConsistentLoss', loss_weight=0.5)])),
    'RCCA3DHead': dict(type='RCCA3DHead', clip_length=2, **COMMON),
    'EMAUHead': dict(type='EMAUHead', ema_channels=8, num_bases=4, **COMMON),
    'A2Head': dict(type='A2Head', mid_channels=4, num_descriptors=4, **COMMON),
    'OCRBlockHead': dict(type='OCRBlockHead', ocr_channels=8, **dict(COMMON, channels=16)),
}
SEGMENTORS = {
    'EncoderDecoder': dict(type='EncoderDecoder'),
    'SSR': dict(type='SSREncoderDecoder', fusion='ssr', train_scales=(0.5, 1.0),
                test_cfg=dict(mode='whole', scales=(0.5, 1.0))),
    'HMA': dict(type='SSREncoderDecoder', fusion='hma', train_scales=(0.5, 1.0),
                test_cfg=dict(mode='whole', scales=(0.5, 1.0))),
}
AUX = dict(type='FCNHead', in_channels=32, in_index=2, channels=4, num_convs=1,
           num_classes=3, norm_cfg=NORM, loss_decode=dict(CE, loss_weight=0.4))


@pytest.mark.usefixtures('one_thread')
@pytest.mark.parametrize('aux', [False, True], ids=['no-aux', 'aux'])
@pytest.mark.parametrize('segmentor', list(SEGMENTORS))
@pytest.mark.parametrize('head', list(HEADS))
def test_head_segmentor_matrix(head, segmentor, aux, segmentor_step):
    cfg = dict(SEGMENTORS[segmentor],
               data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3,
                                      std=[1.] * 3),
               backbone=BACKBONE, decode_head=HEADS[head],
               auxiliary_head=AUX if aux else None)
    cfg.setdefault('test_cfg', dict(mode='whole'))
    segmentor_step(cfg, h=25, w=31)


def _write(path: str, text: str) -> str:
    with open(path, 'w') as f:
        f.write(textwrap.dedent(text))
    return path


MY_FUSION = '''
    import torch
    from mmseg.registry import MODELS
    from torch import nn


    @MODELS.register_module()
    class MaxPairFusion(nn.Module):
        """A user's own pair fusion: the element-wise maximum of x and y."""

        def __init__(self, channels):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(channels, 1, 1))

        def forward(self, x, y):
            return torch.maximum(x, y) * self.scale
'''


@pytest.mark.slow
@pytest.mark.parametrize('name', ['afa-iaff', 'iaff-afa', 'afa-own', 'iaff-own'])
def test_neck_compositions_train_through_tools_train(name, tmp_path, repo_root, synthetic_root,
                                                      tiny_options, run_tool):
    """iAFF in AFANeck, AFA in IAFFNeck (shipped configs); a user's fusion in either."""
    shipped = {'afa-iaff': 'configs/afa/afa-iaff_r18_1xb8-600_synthetic-128x128.py',
               'iaff-afa': 'configs/iaff/iaff-afa_r18_1xb8-600_synthetic-128x128.py'}
    env = {}
    if name in shipped:
        config = osp.join(repo_root, shipped[name])
    else:
        _write(str(tmp_path / 'my_fusion.py'), MY_FUSION)
        base = 'afa/afa_r18' if name == 'afa-own' else 'iaff/iaff_r18'
        config = _write(str(tmp_path / f'{name}.py'), f'''
            _base_ = {osp.join(repo_root, 'configs', base + '_1xb8-600_synthetic-128x128.py')!r}
            custom_imports = dict(imports=['mmseg_fusion', 'my_fusion'],
                                  allow_failed_imports=False)
            model = dict(neck=dict(fusion=dict(_delete_=True, type='MaxPairFusion')))
        ''')
        env = dict(PYTHONPATH=str(tmp_path))
    work_dir = str(tmp_path / 'work')
    out = run_tool([osp.join(repo_root, 'tools', 'train.py'), config, '--work-dir', work_dir,
                    '--cfg-options', *tiny_options(synthetic_root, iters=2, ckpt_interval=2)],
                   env=env)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth')), out.stdout[-3000:]
    fusion_type = {'afa-iaff': 'IAFFFusion', 'iaff-afa': 'AFAFusion'}.get(name, 'MaxPairFusion')
    assert f"type='{fusion_type}'" in out.stdout or f'"{fusion_type}"' in out.stdout
