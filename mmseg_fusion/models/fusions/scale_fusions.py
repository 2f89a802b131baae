"""Scale fusions: registered modules that fuse per-scale predictions one scale at a time.

SSR -- Yang et al., "Dense Prediction with Attentive Feature Aggregation", WACV 2023,
https://arxiv.org/abs/2111.00770 (official https://github.com/SysCV/dla-afa); HMA -- Tao,
Sapra, Catanzaro, https://arxiv.org/abs/2005.10821 (NVIDIA/semantic-segmentation); Attention to
Scale (softmax over scales) and its mean / max baselines -- Chen, Yang, Wang, Xu, Yuille,
CVPR 2016, https://arxiv.org/abs/1511.03339. The math is
:mod:`mmseg_fusion.functional.scale_fusion`; these modules hold no parameters (the density
head belongs to the segmentor) and only choose and stream it.

One interface for every fusion, used by ``SSREncoderDecoder`` (training and ``predict``),
``SSRTTAModel`` and the ONNX export alike::

    state = fusion.init(keep_weights=False)
    for i, (logits, density) in enumerate(per_scale):      # coarsest scale first
        fusion.update(state, logits, density, last=i == S - 1)
    fused = fusion.finish(state)                            # (N, C, H, W)
    weights = fusion.weights(state)                         # (N, S, H, W) or None

Shape shorthand: N batch, C channels (classes), S scales, H x W the logits' size, h x w the
densities' size.
"""
from typing import List, Optional

import torch
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...functional import scale_fusion as sf

__all__ = [
    'BaseScaleFusion', 'HMAScaleFusion', 'MaxScaleFusion', 'MeanScaleFusion',
    'SSRScaleFusion', 'SoftmaxScaleFusion'
]


class BaseScaleFusion(nn.Module):
    """Streaming fusion of per-scale logits (see the module docstring for the interface).

    Subclasses set :attr:`method` (a method of :func:`~mmseg_fusion.functional.init_fusion`),
    :attr:`needs_density` and, where the per-scale weights are not the running weights of
    SSR/HMA, :meth:`_record` and :meth:`_weights`.
    """

    #: the method of :mod:`mmseg_fusion.functional.scale_fusion`
    method: str = ''
    #: whether :meth:`update` needs a density (score) map per scale
    needs_density: bool = True
    #: whether each scale's weight is final when it is added (SSR, HMA): then it is kept
    running_weights: bool = False

    @property
    def density_activation(self) -> Optional[str]:
        """Output activation of the scale-attention head that feeds this fusion.

        ``'abs'`` (SSR with ``phi='abs'``: the official density) or None (raw scores).
        """
        return None

    def options(self) -> dict:
        """Keyword arguments of :func:`~mmseg_fusion.functional.init_fusion` (``phi``, ...)."""
        return {}

    def extra_repr(self) -> str:
        """The options, shown by ``repr``."""
        return ', '.join(f'{k}={v!r}' for k, v in self.options().items())

    def init(self, keep_weights: bool = False) -> dict:
        """Start a fusion.

        Args:
            keep_weights (bool): Keep what :meth:`weights` needs. Defaults to False.

        Returns:
            dict: The state, for :meth:`update`, :meth:`finish` and :meth:`weights`.
        """
        state = sf.init_fusion(self.method, **self.options())
        state['weights'] = [] if keep_weights else None
        return state

    def update(self, state: dict, logits: Tensor, density: Optional[Tensor] = None,
               last: bool = False) -> None:
        """Add the next (finer) scale, in place.

        Args:
            state (dict): The state of :meth:`init`.
            logits (Tensor): This scale's logits (N, C, H, W), at the common output size.
            density (Tensor, optional): This scale's density (N, 1, h, w) when
                :attr:`needs_density`. Defaults to None.
            last (bool): Whether this is the finest scale. Defaults to False.
        """
        keep = state['weights'] is not None
        weight = sf.update_fusion(state, logits, density, last,
                                  return_weight=keep and self.running_weights)
        if keep:
            state['weights'].append(self._record(logits, density, weight))

    def _record(self, logits: Tensor, density: Optional[Tensor],
                weight: Optional[Tensor]) -> Optional[Tensor]:
        """What :meth:`weights` keeps of one scale: its running weight (N, 1, H, W)."""
        return weight

    def _weights(self, records: List[Tensor]) -> Optional[List[Tensor]]:
        """The per-scale weights (each (N, 1, H, W)) from the records of :meth:`_record`."""
        return records

    def finish(self, state: dict) -> Tensor:
        """The fused logits (N, C, H, W), in the logits' dtype."""
        return sf.finish_fusion(state)

    def weights(self, state: dict) -> Optional[Tensor]:
        """The per-scale weights (N, S, H, W) of a fusion started with ``keep_weights``.

        Returns:
            Tensor | None: None when the fusion has no per-pixel weight per scale (max) or
            the weights were not kept.
        """
        if not state['weights']:
            return None
        weights = self._weights(state['weights'])
        return None if weights is None else torch.cat(weights, dim=1)


@MODELS.register_module()
class SSRScaleFusion(BaseScaleFusion):
    """Scale-space rendering: ``a_i = (1 - exp(-phi(y_i))) prod_{j<i} exp(-phi(y_j))``.

    Args:
        phi (str): ``'abs'`` (official) or ``'softplus'``. Defaults to ``'abs'``.
        terminal (bool): Give the finest scale the remaining transmittance, so the weights
            sum to 1. Defaults to True, part of the recipe of ``SSREncoderDecoder``'s defaults
            (official: False; ``benchmarks/README.md`` compares the defaults with the official
            recipe).
    """

    method = 'ssr'
    running_weights = True

    def __init__(self, phi: str = 'abs', terminal: bool = True) -> None:
        super().__init__()
        if phi not in ('abs', 'softplus'):
            raise ValueError(f"SSRScaleFusion: phi must be 'abs' or 'softplus', got {phi!r}")
        self.phi = phi
        self.terminal = bool(terminal)

    @property
    def density_activation(self) -> Optional[str]:
        """``'abs'`` for ``phi='abs'`` (the official density), None for softplus."""
        return 'abs' if self.phi == 'abs' else None

    def options(self) -> dict:
        """``phi`` and ``terminal``."""
        return dict(phi=self.phi, terminal=self.terminal)


@MODELS.register_module()
class HMAScaleFusion(BaseScaleFusion):
    """Hierarchical multi-scale attention: SSR with ``phi='softplus'``, terminal.

    Equal to NVIDIA's recursion ``pred = a_s p_s + (1 - a_s) pred`` from the finest to the
    coarsest scale, ``a_s = sigmoid(y_s)`` (the finest scale's attention is unused).
    """

    method = 'hma'
    running_weights = True


@MODELS.register_module()
class SoftmaxScaleFusion(BaseScaleFusion):
    """Attention to Scale: a per-pixel softmax over the scales' scores (online, streaming)."""

    method = 'softmax'

    def _record(self, logits: Tensor, density: Optional[Tensor],
                weight: Optional[Tensor]) -> Tensor:
        # the score at the logits' size, as the fusion uses it
        if density.shape[-2:] == logits.shape[-2:]:
            return density
        return nn.functional.interpolate(density, size=logits.shape[-2:], mode='bilinear',
                                         align_corners=False)

    def _weights(self, records: List[Tensor]) -> List[Tensor]:
        return sf.softmax_scale_weights(records)


@MODELS.register_module()
class MeanScaleFusion(BaseScaleFusion):
    """The per-pixel mean of the scales' logits (no density)."""

    method = 'mean'
    needs_density = False

    def _record(self, logits: Tensor, density: Optional[Tensor],
                weight: Optional[Tensor]) -> Tensor:
        return logits.new_ones((logits.shape[0], 1, *logits.shape[-2:]))

    def _weights(self, records: List[Tensor]) -> List[Tensor]:
        return [r / len(records) for r in records]


@MODELS.register_module()
class MaxScaleFusion(BaseScaleFusion):
    """The per-pixel, per-class maximum of the scales' logits (no density, no weights)."""

    method = 'max'
    needs_density = False

    def _weights(self, records: List[Tensor]) -> None:
        return None
