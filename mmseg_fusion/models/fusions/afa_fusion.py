"""AFA's fusions as registered modules: the bi-input node and the multi-input level fusion.

Paper: Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction with Attentive Feature
Aggregation", WACV 2023, https://arxiv.org/abs/2111.00770. Official code (consulted, not
copied): https://github.com/SysCV/dla-afa (``AFAIDAUp``, ``final_feature_fusion``).

The modules are :class:`~mmseg_fusion.layers.BiAFA` and :class:`~mmseg_fusion.layers.MultiAFA`
under their registry names, with the same parameter names (``sa``, ``ca``), so converted
official checkpoints load into them unchanged.

Shape shorthand: N batch, C channels, H x W spatial size, K fused levels.
"""
from mmseg.registry import MODELS

from ...layers import BiAFA, MultiAFA

__all__ = ['AFAFusion', 'MultiAFAFusion']


@MODELS.register_module()
class AFAFusion(BiAFA):
    """Bi-input AFA as a pair fusion: ``forward(x, y) = s (1 - c) x + (1 - s) c y``.

    ``s`` is a spatial attention of the shallow (running) feature ``x``, ``c`` a channel
    attention of the deep feature ``y``. Its level fusion (the final fusion of ``AFANeck``)
    is :class:`MultiAFAFusion` with the same arguments.

    Args: those of :class:`~mmseg_fusion.layers.BiAFA` (``channels``, ``reduction``,
        ``conv_cfg``, ``norm_cfg``, ``act_cfg``).
    """

    multi_input_type = 'MultiAFAFusion'


@MODELS.register_module()
class MultiAFAFusion(MultiAFA):
    """Multi-input (progressive) AFA as a level fusion: ``forward([F_1, ..., F_K])``.

    ``sum_k S_k C_k F_k`` with shared spatial and channel attentions, inputs deepest first
    (the last one is never attenuated); see :class:`~mmseg_fusion.layers.MultiAFA`.

    Args: those of :class:`~mmseg_fusion.layers.MultiAFA` (``channels``, ``reduction``,
        ``conv_cfg``, ``norm_cfg``, ``act_cfg``).
    """

    level_fusion = True
