"""Fusion of multi-scale predictions: SSR, HMA, softmax over scales, mean and max.

SSR (Scale-Space Rendering) -- Yang, Huang, Sun, Rota Bulò, Kontschieder, Yu, "Dense Prediction
with Attentive Feature Aggregation", WACV 2023, https://arxiv.org/abs/2111.00770; official code
https://github.com/SysCV/dla-afa (``attn_utils.scale_space_rendering``), consulted, not copied.
HMA -- Tao, Sapra, Catanzaro, "Hierarchical Multi-Scale Attention for Semantic Segmentation",
https://arxiv.org/abs/2005.10821 (NVIDIA/semantic-segmentation ``nscale_forward``).
Attention to Scale -- Chen, Yang, Wang, Xu, Yuille, CVPR 2016, https://arxiv.org/abs/1511.03339.

Shape shorthand: N batch, C classes, S scales, H x W spatial size of the logits, h x w spatial
size of the densities (may differ from H x W; weights are then resized bilinearly to H x W, as
the official SSR code upsamples its attention maps).

Scales are always ordered from the coarsest to the finest (the "front of the ray" first). With
densities ``y_i`` and ``phi`` a non-negative map, the SSR weights are

    a_i = (1 - exp(-phi(y_i))) * prod_{j<i} exp(-phi(y_j)),

with ``terminal=True`` the finest scale takes the remaining transmittance ``prod_{j<k}
exp(-phi(y_j))`` so the weights sum to 1. ``phi='softplus', terminal=True`` is HMA: ``1 -
exp(-softplus(y)) = sigmoid(y)`` and ``exp(-softplus(y)) = 1 - sigmoid(y)``, so the weights are
those of NVIDIA's recursion ``pred = a_s * p_s + (1 - a_s) * pred`` over scales from the finest
to the coarsest, in which the finest scale's attention is unused.

Every product of transmittances is computed as ``exp`` of a cumulative sum of ``-phi`` in
float32, and opacities as ``-expm1(-phi)``, so densities of any magnitude (``±1e4``), all-zero
densities and half-precision inputs give finite weights.

Streaming: :func:`init_fusion`, :func:`update_fusion` and :func:`finish_fusion` fuse one scale
at a time (coarsest first) and keep only a running sum and a running log-transmittance (or the
running maximum and normaliser of an online softmax), so the memory of a multi-scale
prediction does not grow with the number of scales. :func:`fuse_scales` is the same loop over a
list.
"""
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ..utils.tracing import is_tracing

__all__ = [
    'FUSION_METHODS', 'scale_space_weights', 'hma_weights', 'softmax_scale_weights',
    'fuse_scales', 'init_fusion', 'update_fusion', 'finish_fusion'
]

#: Fusion methods accepted by :func:`fuse_scales` and the streaming functions.
FUSION_METHODS = ('ssr', 'hma', 'softmax', 'mean', 'max')
#: Methods that need a density (score) map per scale.
DENSITY_METHODS = ('ssr', 'hma', 'softmax')

PhiType = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def _phi(phi: PhiType, owner: str = 'scale_space_weights'
         ) -> Callable[[torch.Tensor], torch.Tensor]:
    """The non-negative map ``phi`` of a name or a callable (``owner`` names the caller)."""
    if callable(phi):
        return phi
    if phi == 'abs':
        return torch.abs
    if phi == 'softplus':
        return F.softplus
    raise ValueError(f"{owner}: phi must be 'abs', 'softplus' or a callable, got {phi!r}")


def _work(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float64 if it is float64, else in float32 (the working precision)."""
    return x if x.dtype == torch.float64 else x.float()


def _check_densities(densities: Sequence[torch.Tensor], name: str) -> None:
    if len(densities) == 0:
        raise ValueError(f'{name}: densities must hold at least one map, got 0')
    shape = densities[0].shape
    for i, d in enumerate(densities):
        if d.dim() != 4 or d.shape[1] != 1 or d.shape != shape:
            raise ValueError(f'{name}: densities must all have shape (N, 1, H, W) equal to '
                             f'{tuple(shape)}, got {tuple(d.shape)} at index {i}')


def _opacity_and_log_transmittance(phi_y: torch.Tensor) -> tuple:
    """``(1 - exp(-phi_y), -phi_y)`` for a non-negative float32 ``phi_y``."""
    phi_y = torch.nan_to_num(phi_y, nan=0.0, posinf=torch.finfo(phi_y.dtype).max)
    return -torch.expm1(-phi_y), -phi_y


def scale_space_weights(densities: Sequence[torch.Tensor], phi: PhiType = 'abs',
                        terminal: bool = False) -> List[torch.Tensor]:
    """SSR weights of densities ordered from the coarsest to the finest scale.

    Args:
        densities (Sequence[Tensor]): S maps of shape (N, 1, h, w), coarsest first.
        phi (str | Callable): Non-negative map applied to each density: ``'abs'`` (SSR),
            ``'softplus'`` (HMA) or a callable. Defaults to ``'abs'``.
        terminal (bool): Give the finest scale the remaining transmittance (``phi = inf``), so
            the weights sum to 1. Defaults to False (the weights sum to ``1 - exp(-sum phi)``).

    Returns:
        list[Tensor]: S weights of shape (N, 1, h, w), in the dtype of the densities.
    """
    _check_densities(densities, 'scale_space_weights')
    fn = _phi(phi)
    weights = []
    log_t = torch.zeros_like(_work(densities[0]))
    for i, y in enumerate(densities):
        if terminal and i == len(densities) - 1:
            weights.append(log_t.exp().to(y.dtype))
            break
        opacity, log_tau = _opacity_and_log_transmittance(fn(_work(y)))
        weights.append((opacity * log_t.exp()).to(y.dtype))
        log_t = log_t + log_tau
    return weights


def hma_weights(densities: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """HMA weights: ``scale_space_weights(densities, phi='softplus', terminal=True)``.

    Args:
        densities (Sequence[Tensor]): S attention logits of shape (N, 1, h, w) (before the
            sigmoid of the official head), coarsest first.

    Returns:
        list[Tensor]: S weights of shape (N, 1, h, w) summing to 1.
    """
    return scale_space_weights(densities, phi='softplus', terminal=True)


def softmax_scale_weights(scores: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Attention-to-Scale weights: a per-pixel softmax over the scales of the scores.

    Args:
        scores (Sequence[Tensor]): S score maps of shape (N, 1, h, w).

    Returns:
        list[Tensor]: S weights of shape (N, 1, h, w) summing to 1.
    """
    _check_densities(scores, 'softmax_scale_weights')
    # (N, S, h, w)
    stacked = torch.cat([_work(s) for s in scores], dim=1).softmax(dim=1)
    return [w.to(scores[0].dtype) for w in stacked.split(1, dim=1)]


def _resize(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    # a trace records the resize even at equal sizes (identity), so the graph fits every size
    if x.shape[-2:] == size and not is_tracing():
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def init_fusion(method: str = 'ssr', phi: PhiType = 'abs', terminal: bool = False) -> dict:
    """Start a streaming fusion.

    Args:
        method (str): One of :data:`FUSION_METHODS`. Defaults to ``'ssr'``.
        phi (str | Callable): ``phi`` of ``'ssr'`` (``'hma'`` always uses ``'softplus'``).
            Defaults to ``'abs'``.
        terminal (bool): ``terminal`` of ``'ssr'`` (``'hma'`` is always terminal). Defaults to
            False.

    Returns:
        dict: The fusion state, to pass to :func:`update_fusion` and :func:`finish_fusion`.
    """
    return _init_fusion(method, phi, terminal, 'init_fusion')


def _init_fusion(method: str, phi: PhiType, terminal: bool, owner: str) -> dict:
    """:func:`init_fusion`, with ``owner`` (the public caller) named in the errors."""
    if method not in FUSION_METHODS:
        raise ValueError(f'{owner}: method must be one of {FUSION_METHODS}, got {method!r}')
    if method == 'hma':
        phi, terminal = 'softplus', True
    _phi(phi, owner)
    return dict(method=method, phi=phi, terminal=terminal, acc=None, aux=None, norm=None,
                count=0, dtype=None)


def update_fusion(state: dict, logits: torch.Tensor, density: Optional[torch.Tensor] = None,
                  last: bool = False, return_weight: bool = False) -> Optional[torch.Tensor]:
    """Add the next (finer) scale to a streaming fusion, in place.

    Args:
        state (dict): State of :func:`init_fusion`.
        logits (Tensor): Logits of this scale, (N, C, H, W), at the common output size.
        density (Tensor, optional): Density (score) of this scale, (N, 1, h, w); needed by
            ``'ssr'``, ``'hma'`` and ``'softmax'``. For ``'ssr'``/``'hma'`` the weights are
            computed at the first scale's density size (a later density of another size is
            resized bilinearly to it) and resized to the logits. Defaults to None.
        last (bool): Whether this is the finest scale (used by terminal SSR/HMA).
            Defaults to False.
        return_weight (bool): Return this scale's weight at the logits size (for the running
            methods ``'ssr'``/``'hma'`` its final value; ``'softmax'`` weights change with later
            scales, use :func:`softmax_scale_weights`). Defaults to False.

    Returns:
        Tensor | None: The weight (N, 1, H, W) when ``return_weight``, else None.
    """
    method = state['method']
    if method in DENSITY_METHODS and density is None:
        raise ValueError(f"fuse_scales: method {method!r} needs a density per scale, got None")
    size = logits.shape[-2:]
    logits32 = _work(logits)
    state['count'] += 1
    weight = None
    if method in ('ssr', 'hma'):
        if state['aux'] is None:
            # running log-transmittance, at the (first) density size
            state['aux'] = torch.zeros_like(_work(density))
        else:
            density = _resize(density, state['aux'].shape[-2:])
        if state['terminal'] and last:
            w = state['aux'].exp()
        else:
            opacity, log_tau = _opacity_and_log_transmittance(_phi(state['phi'])(_work(density)))
            w = opacity * state['aux'].exp()
            state['aux'] = state['aux'] + log_tau
        weight = _resize(w, size)
        if state['acc'] is None:
            state['acc'] = weight * logits32
        else:
            # in place: no (N, C, H, W) temporary
            state['acc'].addcmul_(weight, logits32)
    elif method == 'softmax':
        # online softmax over scales: running maximum ``aux`` and normaliser ``norm``
        score = _resize(_work(density), size)
        if state['aux'] is None:
            state['aux'], state['norm'], state['acc'] = score, torch.ones_like(score), logits32
        else:
            new_max = torch.maximum(state['aux'], score)
            old_scale, new_scale = (state['aux'] - new_max).exp(), (score - new_max).exp()
            state['acc'] = state['acc'] * old_scale + new_scale * logits32
            state['norm'] = state['norm'] * old_scale + new_scale
            state['aux'] = new_max
    elif method == 'mean':
        if state['acc'] is None:
            state['acc'] = logits32.clone()
        else:
            state['acc'].add_(logits32)
    else:  # max
        state['acc'] = logits32 if state['acc'] is None else torch.maximum(state['acc'], logits32)
    if state['dtype'] is None:
        state['dtype'] = logits.dtype
    if return_weight:
        if weight is None:
            raise ValueError(f'update_fusion: return_weight needs method ssr or hma, got '
                             f'{method!r}')
        return weight.to(logits.dtype)
    return None


def finish_fusion(state: dict) -> torch.Tensor:
    """Fused logits of a streaming fusion.

    Args:
        state (dict): State of :func:`init_fusion` after at least one :func:`update_fusion`.

    Returns:
        Tensor: Fused logits (N, C, H, W) in the dtype of the logits.
    """
    if state['count'] == 0:
        raise ValueError('fuse_scales: no scale was fused')
    acc = state['acc']
    if state['method'] == 'softmax':
        acc = acc / state['norm']
    elif state['method'] == 'mean':
        acc = acc / state['count']
    return acc.to(state['dtype'])


def fuse_scales(logits: Sequence[torch.Tensor],
                densities: Optional[Sequence[torch.Tensor]] = None,
                method: str = 'ssr',
                phi: PhiType = 'abs',
                terminal: bool = False) -> torch.Tensor:
    """Fuse per-scale logits, coarsest scale first.

    ``'ssr'``: ``sum_i a_i * p_i`` with :func:`scale_space_weights` (``phi``, ``terminal``);
    ``'hma'``: the same with :func:`hma_weights`; ``'softmax'``: ``sum_i softmax_i(y) * p_i``
    (Attention to Scale); ``'mean'`` and ``'max'``: per-pixel mean / maximum of the logits
    (the baselines of Attention to Scale; densities ignored). Weights computed at the density
    size are resized bilinearly to the logits size (the scores of ``'softmax'`` are resized
    before the softmax).

    Args:
        logits (Sequence[Tensor]): S logits of shape (N, C, H, W), all at the output size.
        densities (Sequence[Tensor], optional): S maps of shape (N, 1, h, w). Required by
            ``'ssr'``, ``'hma'`` and ``'softmax'``. Defaults to None.
        method (str): One of :data:`FUSION_METHODS`. Defaults to ``'ssr'``.
        phi (str | Callable): ``phi`` of ``'ssr'``. Defaults to ``'abs'``.
        terminal (bool): ``terminal`` of ``'ssr'``. Defaults to False.

    Returns:
        Tensor: Fused logits of shape (N, C, H, W).
    """
    state: Dict = _init_fusion(method, phi, terminal, 'fuse_scales')
    if len(logits) == 0:
        raise ValueError('fuse_scales: logits must hold at least one map, got 0')
    if densities is not None:
        if len(densities) != len(logits):
            raise ValueError(f'fuse_scales: got {len(logits)} logits but {len(densities)} '
                             'densities')
        _check_densities(densities, 'fuse_scales')
    for i, p in enumerate(logits):
        update_fusion(state, p, None if densities is None else densities[i],
                      last=i == len(logits) - 1)
    return finish_fusion(state)
