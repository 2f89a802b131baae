"""Fusions chosen by a config dict: shorthands, offered arguments, level fusions, errors."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch import nn
from torch.testing import assert_close

import mmseg_fusion  # noqa: F401
from mmseg_fusion.models.fusions import (
    PAIR_FUSIONS,
    SCALE_FUSIONS,
    BaseScaleFusion,
    FoldFusion,
    build_fusion,
    build_level_fusion,
    fusion_cfg,
)
from mmseg_fusion.models.fusions.builder import takes_argument


@MODELS.register_module()
class _TestMaxFusion(nn.Module):
    """A user's own pair fusion: the element-wise maximum (takes only ``channels``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x, y):
        return torch.maximum(x, y)


def setup_module():
    init_default_scope('mmseg')


def test_shorthands_expand_to_registered_types():
    for shorthands in (PAIR_FUSIONS, SCALE_FUSIONS):
        for short, name in shorthands.items():
            assert fusion_cfg(short, shorthands, 'X') == dict(type=name)
            assert MODELS.get(name) is not None, name
    cfg = dict(type='AFAFusion', reduction=4)
    assert fusion_cfg(cfg, PAIR_FUSIONS, 'X') == cfg


@pytest.mark.parametrize('value', ['sum', 3, dict(reduction=4), None])
def test_bad_fusion_names_the_component_and_the_choices(value):
    with pytest.raises(ValueError, match=r"MyNeck: fusion must be one of \('afa', 'aff', "
                                         r"'iaff', 'concat', 'add'\), got "):
        fusion_cfg(value, PAIR_FUSIONS, 'MyNeck')


def test_unregistered_type_and_wrong_kind_are_clear_errors():
    with pytest.raises(ValueError, match=r"MyNeck: fusion type 'NoSuchFusion' is not "
                                         r"registered in mmseg's MODELS"):
        build_fusion(dict(type='NoSuchFusion'), 'MyNeck', channels=8)
    with pytest.raises(ValueError, match=r'SSREncoderDecoder: fusion must be a BaseScaleFusion '
                                         r'.*got AFAFusion'):
        build_fusion(dict(type='AFAFusion'), 'SSREncoderDecoder', base=BaseScaleFusion)
    with pytest.raises(ValueError, match=r'AFANeck: fusion must be a pair fusion .*got the '
                                         r'scale fusion SSRScaleFusion'):
        MODELS.build(dict(type='AFANeck', in_channels=[8, 16], fused_levels=1, fusion=dict(
            type='SSRScaleFusion')))


def test_offered_arguments_go_where_the_constructor_takes_them():
    offered = dict(channels=8, reduction=2, norm_cfg=dict(type='BN'), num_inputs=3,
                   scale=1.0)
    afa = build_fusion(dict(type='AFAFusion'), 'X', **offered)
    assert afa.ca.conv1.conv.out_channels == 4  # 8 // reduction 2
    concat = build_fusion(dict(type='ConcatFusion'), 'X', **offered)
    assert concat.conv.in_channels == 24 and concat.num_inputs == 3
    mine = build_fusion(dict(type='_TestMaxFusion'), 'X', **offered)
    assert mine.channels == 8
    # the config wins over what is offered
    aff = build_fusion(dict(type='AFFFusion', reduction=4), 'X', **offered)
    assert aff.att.local_att[0].conv.out_channels == 2 and aff.scale == 1.0
    assert takes_argument(dict(type='AFAFusion'), 'reduction', 'X')
    assert not takes_argument(dict(type='AddFusion'), 'reduction', 'X')


def test_level_fusion_of_each_pair_fusion():
    offered = dict(channels=8, reduction=2)
    kinds = {f: type(build_level_fusion(None, dict(type=t), 3, 'X', **offered)).__name__
             for f, t in PAIR_FUSIONS.items()}
    assert kinds == dict(afa='MultiAFAFusion', aff='FoldFusion', iaff='FoldFusion',
                         concat='ConcatFusion', add='AddFusion')
    # an explicit final fusion: a shorthand of a level fusion, or a pair fusion folded
    assert type(build_level_fusion('concat', dict(type='AFAFusion'), 3, 'X',
                                   **offered)).__name__ == 'ConcatFusion'
    folded = build_level_fusion(dict(type='_TestMaxFusion'), dict(type='AFAFusion'), 4, 'X',
                                **offered)
    assert isinstance(folded, FoldFusion) and len(folded.fusions) == 3


def test_fold_goes_from_the_shallowest_level_to_the_deepest():
    calls = []

    class Record(nn.Module):

        def __init__(self, k):
            super().__init__()
            self.k = k

        def forward(self, x, y):
            calls.append(self.k)
            return 2 * x + y

    fold = FoldFusion([Record(0), Record(1)])
    f0, f1, f2 = (torch.full((1, 1, 2, 2), float(v)) for v in (1, 10, 100))
    out = fold([f0, f1, f2])
    # x = F_2; x = fuse_1(x, F_1); x = fuse_0(x, F_0)
    assert calls == [1, 0]
    assert_close(out, 2 * (2 * f2 + f1) + f0)
    with pytest.raises(ValueError, match='FoldFusion: expected 3 features, got 2'):
        fold([f0, f1])
