"""Expectation-maximisation attention unit (EMAU): EM iterations and moving-average bases.

Paper: Li, Zhong, Wu, Yang, Lin, Liu, "Expectation-Maximization Attention Networks for Semantic
Segmentation", ICCV 2019, https://arxiv.org/abs/1907.13426.
Official code consulted as reference (not copied): https://github.com/XiaLiPKU/EMANet
(``network.py`` ``EMAU``, ``train.py`` moving average). Also compared with MMSegmentation's
``EMAModule`` (``mmseg/models/decode_heads/ema_head.py``), whose state-dict layout is kept
(one buffer ``bases``).

Shape shorthand: N batch, C channels, H x W spatial size, L = H * W positions, K bases.

The E-step is ``Z = softmax_K(X^T mu)`` (the paper's temperature lambda is 1, as in both codes),
the M-step ``mu = X Zbar`` with ``Zbar`` the responsibilities normalised over the L positions,
followed by an l2 normalisation of every basis over C. The iterations run under
:func:`torch.no_grad`, as in the official code (issues #5 and #14 of the official repository:
the gradient through the EM steps is cut on purpose), so the reconstruction ``mu Z^T`` carries no
gradient.

Two numerical conventions exist, selected by ``official``:

* ``official=False`` (MMSegmentation's ``EMAHead``): normalisations by
  :func:`torch.nn.functional.normalize` (``x / max(||x||, 1e-12)``); the batch mean of the
  final bases is all-reduced over processes and **l2-normalised again** before the moving
  average ``bases <- (1 - momentum) * bases + momentum * mean``.
* ``official=True`` (XiaLiPKU/EMANet): denominators ``1e-6 + sum`` / ``1e-6 + ||.||``; the batch
  mean enters the moving average **without** re-normalisation (the official ``train.py`` does
  ``mu <- 0.9 * mu + 0.1 * mean``, i.e. ``momentum = 0.1`` here). Under DDP the per-rank
  means are averaged, which equals the official whole-batch (DataParallel) mean when every rank
  has the same batch size.
"""
import math
from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from ..utils.checks import check_int

__all__ = ['EMAttention', 'check_em_arguments', 'em_iterations', 'l2_normalize_bases']

_OFFICIAL_EPS = 1e-6


def l2_normalize_bases(bases: torch.Tensor, official: bool = False) -> torch.Tensor:
    """L2-normalise every basis over the channel dimension.

    Args:
        bases (Tensor): Bases of shape (N, C, K).
        official (bool): Use the official ``x / (1e-6 + ||x||)`` instead of
            :func:`torch.nn.functional.normalize`. Defaults to False.

    Returns:
        Tensor: Normalised bases of shape (N, C, K).
    """
    if official:
        return bases / (_OFFICIAL_EPS + bases.norm(dim=1, keepdim=True))
    return F.normalize(bases, p=2, dim=1)


@torch.no_grad()
def em_iterations(feats: torch.Tensor, bases: torch.Tensor, num_stages: int,
                  official: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run ``num_stages`` E-step/M-step iterations of EM attention, without gradient.

    Args:
        feats (Tensor): Features X of shape (N, C, L).
        bases (Tensor): Initial bases mu of shape (N, C, K) or (1, C, K) (broadcast over N).
        num_stages (int): Number T >= 1 of EM iterations.
        official (bool): Official epsilons (``1e-6 +`` denominators) instead of
            :func:`torch.nn.functional.normalize`. Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: The bases after the last M-step, (N, C, K), and the
        responsibilities of the last E-step, (N, L, K) (softmax over K). The reconstruction is
        ``bases @ responsibilities^T``.
    """
    if num_stages < 1:
        raise ValueError(f'em_iterations: num_stages must be an int >= 1, got {num_stages!r}')
    # (N, C, K)
    bases = bases.expand(feats.shape[0], -1, -1)
    resp = feats.new_empty(0)
    for _ in range(num_stages):
        # (N, L, K): E-step, softmax over the K bases at each position
        resp = torch.einsum('ncl,nck->nlk', feats, bases).softmax(dim=2)
        # (N, L, K): responsibilities normalised over the L positions
        if official:
            resp_normed = resp / (_OFFICIAL_EPS + resp.sum(dim=1, keepdim=True))
        else:
            resp_normed = F.normalize(resp, p=1, dim=1)
        # (N, C, K): M-step, weighted mean of the features per basis
        bases = torch.einsum('ncl,nlk->nck', feats, resp_normed)
        bases = l2_normalize_bases(bases, official)
    return bases, resp


def check_em_arguments(component: str, num_bases: int, num_stages: int,
                       momentum: float) -> None:
    """Validate the EM hyper-parameters, raising a ``ValueError`` that names ``component``.

    Args:
        component (str): Name used in the message (e.g. ``'EMAUHead'``).
        num_bases (int): Must be an int >= 1.
        num_stages (int): Must be an int >= 1.
        momentum (float): Must be a real number in [0, 1].
    """
    check_int(component, 'num_bases', num_bases)
    check_int(component, 'num_stages', num_stages)
    if (isinstance(momentum, bool) or not isinstance(momentum, (int, float))
            or not 0 <= momentum <= 1):
        raise ValueError(f'{component}: momentum must be a float in [0, 1] (the weight of the '
                         f'new bases in the moving average), got {momentum!r}')


def _reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over the processes of the default group (identity without one)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor / dist.get_world_size()


class EMAttention(nn.Module):
    """EM attention with a moving average of the initial bases (official ``EMAU`` core).

    Holds the bases mu^(0) as a buffer ``bases`` of shape (1, C, K), initialised from
    ``N(0, sqrt(2 / K))`` and l2-normalised over C. :meth:`forward` runs
    :func:`em_iterations` from these bases and returns the reconstruction ``mu Z^T``
    (no gradient flows through it, as in the official code). In training mode every call
    also updates the bases once:
    ``bases <- (1 - momentum) * bases + momentum * m``, where ``m`` is the mean over the batch
    of the final bases, averaged over all processes of the default process group (so every
    rank holds the same bases after a step) and, unless ``official``, l2-normalised again.
    In eval mode the bases are untouched. The update happens once per training *forward*
    (as in mmseg): one step of a standard segmentor is one forward; a model that runs the unit
    several times per step (e.g. multi-scale training) updates the bases once per run.

    Args:
        channels (int): Channels C of the features.
        num_bases (int): Number K of bases. Defaults to 64.
        num_stages (int): Number T of EM iterations. Defaults to 3.
        momentum (float): Weight of the new bases in the moving average, in [0, 1]
            (the official ``EM_MOM = 0.9`` is ``momentum = 0.1``). Defaults to 0.1.
        official (bool): Official numerics (see the module docstring). Defaults to False.
    """

    def __init__(self,
                 channels: int,
                 num_bases: int = 64,
                 num_stages: int = 3,
                 momentum: float = 0.1,
                 official: bool = False) -> None:
        super().__init__()
        check_em_arguments('EMAttention', num_bases, num_stages, momentum)
        check_int('EMAttention', 'channels', channels)
        self.channels = channels
        self.num_bases = num_bases
        self.num_stages = num_stages
        self.momentum = float(momentum)
        self.official = official
        bases = torch.empty(1, channels, num_bases).normal_(0, math.sqrt(2. / num_bases))
        # (1, C, K)
        self.register_buffer('bases', l2_normalize_bases(bases, official))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``feats`` from the bases; update the bases when training.

        Args:
            feats (Tensor): Features of shape (N, C, H, W).

        Returns:
            Tensor: Reconstruction ``mu Z^T`` of shape (N, C, H, W), without gradient.
        """
        n, c, h, w = feats.shape
        # (N, C, L)
        flat = feats.reshape(n, c, h * w)
        bases, resp = em_iterations(flat, self.bases, self.num_stages, self.official)
        with torch.no_grad():
            # (N, C, L) -> (N, C, H, W)
            recon = torch.einsum('nck,nlk->ncl', bases, resp).reshape(n, c, h, w)
            if self.training:
                self.update_bases(bases)
        return recon

    @torch.no_grad()
    def update_bases(self, bases: torch.Tensor) -> None:
        """Blend the batch mean of ``bases`` into the buffer (all-reduced over processes).

        Args:
            bases (Tensor): Final bases of one batch, shape (N, C, K).
        """
        # (1, C, K)
        mean = _reduce_mean(bases.mean(dim=0, keepdim=True))
        if not self.official:
            mean = l2_normalize_bases(mean)
        self.bases.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)

    def extra_repr(self) -> str:
        """Hyper-parameters shown by ``repr``."""
        return (f'channels={self.channels}, num_bases={self.num_bases}, '
                f'num_stages={self.num_stages}, momentum={self.momentum}, '
                f'official={self.official}')
