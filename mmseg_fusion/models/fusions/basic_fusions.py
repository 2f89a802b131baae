"""The plain fusions that the attentional ones are measured against: sum and concat + conv.

``ConcatFusion`` is the aggregation node of DLA-Up's IDA-Up (Yu, Wang, Shelhamer, Darrell,
"Deep Layer Aggregation", CVPR 2018, https://arxiv.org/abs/1707.06484), the baseline AFA
replaces; ``AddFusion`` is FPN's top-down merge (Lin et al., CVPR 2017,
https://arxiv.org/abs/1612.03144), the baseline AFF/iAFF replace.

Both are pair fusions (``forward(x, y)``) and level fusions of ``num_inputs`` maps
(``forward([F_1, ..., F_K])``).

Shape shorthand: N batch, C channels, H x W spatial size, K inputs.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmseg.registry import MODELS
from torch import nn

from ...utils.checks import check_int

__all__ = ['AddFusion', 'ConcatFusion']

Inputs = Tuple[Union[torch.Tensor, Sequence[torch.Tensor]], ...]


def _unpack(owner: str, inputs: Inputs, num_inputs: int) -> Sequence[torch.Tensor]:
    """``forward(x, y)`` or ``forward([F_1, ..., F_K])`` inputs as one sequence of K maps."""
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = inputs[0]
    if len(inputs) != num_inputs:
        raise ValueError(f'{owner}: expected {num_inputs} inputs (num_inputs), '
                         f'got {len(inputs)}')
    return inputs


@MODELS.register_module()
class AddFusion(nn.Module):
    """The sum of the inputs; no parameters.

    Args:
        num_inputs (int): Number K of inputs. Defaults to 2.
    """

    def __init__(self, num_inputs: int = 2) -> None:
        super().__init__()
        self.num_inputs = check_int('AddFusion', 'num_inputs', num_inputs, low=1)

    def forward(self, *inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Sum ``forward(x, y)`` or ``forward([F_1, ..., F_K])``, each (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        feats = _unpack('AddFusion', inputs, self.num_inputs)
        out = feats[0]
        for feat in feats[1:]:
            out = out + feat
        return out


@MODELS.register_module()
class ConcatFusion(ConvModule):
    """Concatenation along channels, then a 3x3 conv-norm-act back to C channels.

    A :class:`~mmcv.cnn.ConvModule` (keys ``conv``, ``bn``/``gn``...), so checkpoints of the
    former ``'concat'`` nodes load unchanged.

    Args:
        channels (int): Channels C of every input and of the output.
        num_inputs (int): Number K of inputs. Defaults to 2.
        conv_cfg (dict, optional): Conv layer config. Defaults to None.
        norm_cfg (dict, optional): Norm layer config. Defaults to ``dict(type='BN')``.
        act_cfg (dict, optional): Activation config. Defaults to ``dict(type='ReLU')``.
    """

    def __init__(self, channels: int, num_inputs: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 act_cfg: Optional[dict] = dict(type='ReLU')) -> None:
        check_int('ConcatFusion', 'channels', channels, low=1)
        check_int('ConcatFusion', 'num_inputs', num_inputs, low=1)
        super().__init__(num_inputs * channels, channels, 3, padding=1, bias=False,
                         conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.num_inputs = num_inputs

    def forward(self, *inputs: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Fuse ``forward(x, y)`` or ``forward([F_1, ..., F_K])``, each (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        # (N, K * C, H, W)
        return super().forward(torch.cat(list(_unpack('ConcatFusion', inputs,
                                                      self.num_inputs)), dim=1))
