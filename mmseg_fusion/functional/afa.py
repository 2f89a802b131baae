"""The fusion rules of Attentive Feature Aggregation (AFA), as pure functions.

Paper: Yang et al., "Dense Prediction with Attentive Feature Aggregation", WACV 2023,
https://arxiv.org/abs/2111.00770. Official code (consulted, not copied):
https://github.com/SysCV/dla-afa (``AFAIDAUp.forward`` and ``AFADLAUpTrunk.final_feature_fusion``
in ``afa/model/necks/afa_dla_up.py``).

Shape shorthand: N batch, C channels, H x W spatial size, K number of fused inputs.
"""
from typing import List, Sequence

import torch

__all__ = ['afa_bi_fusion', 'afa_multi_fusion', 'progressive_weights']


_EPS = 1e-6


def afa_bi_fusion(shallow: torch.Tensor, deep: torch.Tensor, spatial: torch.Tensor,
                  channel: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """Bi-input AFA: ``s (1 - c) x + (1 - s) c y``.

    ``s`` is the spatial attention computed from the shallow (running) feature ``x`` and ``c``
    the channel attention computed from the deep feature ``y``. The two weights do not sum to
    one (their sum is ``s + c - 2 s c``), exactly as in the official code; with ``normalize``
    they are divided by their sum (plus 1e-6), so the output is a convex combination of the
    inputs (not in the paper; an option of :class:`~mmseg_fusion.models.AFANeck`).

    Args:
        shallow (Tensor): Shallow / running feature x of shape (N, C, H, W).
        deep (Tensor): Deep feature y of shape (N, C, H, W).
        spatial (Tensor): Spatial attention s in [0, 1] of shape (N, 1, H, W).
        channel (Tensor): Channel attention c in [0, 1] of shape (N, C, 1, 1).
        normalize (bool): Divide by the sum of the two weights. Defaults to False.

    Returns:
        Tensor: Fused feature of shape (N, C, H, W).
    """
    # (N, C, H, W) each
    w_shallow, w_deep = spatial * (1 - channel), (1 - spatial) * channel
    out = w_shallow * shallow + w_deep * deep
    if normalize:
        out = out / (w_shallow + w_deep + _EPS)
    return out


def progressive_weights(attentions: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Weights ``A_k = a_k * prod_{j > k} (1 - a_j)`` of the progressive multi-input AFA.

    The last (shallowest) input is never attenuated: ``A_K = a_K``. Every product is taken
    over the broadcast shapes, so spatial (N, 1, H, W) and channel (N, C, 1, 1) attentions
    are both accepted.

    Args:
        attentions (Sequence[Tensor]): K attentions ``a_k`` in [0, 1], ordered from the
            deepest (k = 1) to the shallowest (k = K) input, of a common broadcastable shape.

    Returns:
        list[Tensor]: The K weights, in the same order and shapes as ``attentions``.
    """
    if len(attentions) == 0:
        raise ValueError('progressive_weights: attentions must not be empty, got 0 tensors')
    weights: List[torch.Tensor] = [None] * len(attentions)
    remaining = torch.ones_like(attentions[-1])
    for k in range(len(attentions) - 1, -1, -1):
        weights[k] = attentions[k] * remaining
        remaining = remaining * (1 - attentions[k])
    return weights


def afa_multi_fusion(features: Sequence[torch.Tensor], spatial: Sequence[torch.Tensor],
                     channel: Sequence[torch.Tensor], normalize: bool = False) -> torch.Tensor:
    """Multi-input AFA: ``sum_k S_k C_k F_k`` with progressive spatial and channel weights.

    ``S_k = s_k prod_{j > k} (1 - s_j)`` and ``C_k = c_k prod_{j > k} (1 - c_j)``
    (:func:`progressive_weights`). With ``normalize`` the sum is divided by
    ``sum_k S_k C_k`` (plus 1e-6), a convex combination (not in the paper).

    Args:
        features (Sequence[Tensor]): K features ``F_k`` of shape (N, C, H, W), deepest first.
        spatial (Sequence[Tensor]): K spatial attentions ``s_k`` of shape (N, 1, H, W).
        channel (Sequence[Tensor]): K channel attentions ``c_k`` of shape (N, C, 1, 1).
        normalize (bool): Divide by the sum of the weights. Defaults to False.

    Returns:
        Tensor: Fused feature of shape (N, C, H, W).
    """
    if not len(features) == len(spatial) == len(channel) > 0:
        raise ValueError(
            'afa_multi_fusion: features, spatial and channel must have the same non-zero '
            f'length, got {len(features)}, {len(spatial)} and {len(channel)}')
    s_weights = progressive_weights(spatial)
    c_weights = progressive_weights(channel)
    weights = [s_k * c_k for s_k, c_k in zip(s_weights, c_weights)]
    out = weights[0] * features[0]
    for feat, weight in zip(features[1:], weights[1:]):
        out = out + weight * feat
    if normalize:
        out = out / (sum(weights) + _EPS)
    return out
