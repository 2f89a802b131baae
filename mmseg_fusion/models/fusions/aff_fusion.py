"""AFF and iAFF as registered pair fusions.

Paper: Dai, Gieseke, Oehmcke, Wu, Barnard, "Attentional Feature Fusion", WACV 2021,
https://arxiv.org/abs/2009.14082. Official code (MXNet, consulted, not copied):
https://github.com/YimianDai/open-aff. The modules are :class:`~mmseg_fusion.layers.AFF` and
:class:`~mmseg_fusion.layers.IAFF` under their registry names (same parameters: ``att``;
``att1``, ``att2``); see :mod:`mmseg_fusion.layers.ms_cam` for the differences from the
official code (the factor 2 of AFF, iAFF's second global branch).

Shape shorthand: N batch, C channels, H x W spatial size.
"""
from mmseg.registry import MODELS

from ...layers import AFF, IAFF

__all__ = ['AFFFusion', 'IAFFFusion']


@MODELS.register_module()
class AFFFusion(AFF):
    """AFF as a pair fusion: ``forward(x, y) = scale (x M + y (1 - M))``, ``M = MS-CAM(x + y)``.

    Args: those of :class:`~mmseg_fusion.layers.AFF` (``channels``, ``reduction``,
        ``scale``: 2 in the official code, 1 in the paper's formula, ``conv_cfg``,
        ``norm_cfg``, ``act_cfg``).
    """


@MODELS.register_module()
class IAFFFusion(IAFF):
    """iAFF as a pair fusion: two attentional stages, ``forward(x, y) = x W2 + y (1 - W2)``.

    Args: those of :class:`~mmseg_fusion.layers.IAFF` (``channels``, ``reduction``,
        ``conv_cfg``, ``norm_cfg``, ``act_cfg``).
    """
