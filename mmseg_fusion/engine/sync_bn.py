"""Synchronised batch normalisation that also runs on CPU (gloo).

mmseg configs build their norms as ``SyncBN`` (:class:`torch.nn.SyncBatchNorm`), whose
synchronised path raises ``SyncBatchNorm expected input tensor to be on GPU`` for CPU tensors.
:class:`CPUSyncBatchNorm` keeps the parameters, buffers and state-dict keys of
:class:`~torch.nn.SyncBatchNorm` and, for CPU inputs in a distributed training step, computes
the batch statistics over all processes with differentiable all-reduces, which gives the same
forward and backward as batch norm over the concatenated global batch.

Shape shorthand: N batch, C channels, ``*`` spatial dimensions.
"""
from typing import Any, Optional, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['CPUSyncBatchNorm', 'convert_sync_batchnorm_for_cpu']


class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over the processes of a group (the gradient is summed too)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        # ``group`` is None for the world: a graph kept alive after the run then does not
        # keep the (destroyed) default process group and its threads alive too
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, None]:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


def all_reduce(x: torch.Tensor, group: Any = None) -> torch.Tensor:
    """Sum ``x`` over the processes of ``group`` (None: the world), differentiably."""
    return _AllReduceSum.apply(x, group)


class CPUSyncBatchNorm(_BatchNorm):
    """Batch norm synchronised over a (gloo) process group, for CPU modules.

    It has the arguments, parameters, buffers and state-dict keys of
    :class:`~torch.nn.SyncBatchNorm`, but is deliberately not a subclass of it: DDP refuses
    CPU modules that contain ``SyncBatchNorm``. In eval mode or outside an initialised
    process group it is plain batch norm. Statistics are computed in two passes (mean, then
    the centred second moment) for accuracy; the running variance uses the unbiased
    estimate, as PyTorch does.

    Args:
        num_features (int): Channels C.
        eps (float): Added to the variance. Defaults to 1e-5.
        momentum (float, optional): Running-statistics momentum; None for a cumulative
            average. Defaults to 0.1.
        affine (bool): Learnable weight and bias. Defaults to True.
        track_running_stats (bool): Keep running statistics. Defaults to True.
        process_group (ProcessGroup, optional): Group to synchronise over; None for the
            world. Defaults to None.
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 process_group: Optional[Any] = None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f'CPUSyncBatchNorm: expected an input of at least 2 dimensions '
                             f'(N, C, *), got shape {tuple(x.shape)}')

    def _use_cpu_sync(self, x: torch.Tensor) -> bool:
        return (x.device.type == 'cpu' and self.training and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size(self.process_group) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (N, C, *) over N and * of every process."""
        if not self._use_cpu_sync(x):
            return super().forward(x)
        self._check_input_dim(x)
        group = self.process_group
        dims = [0] + list(range(2, x.dim()))
        # (C+1,): per-channel sums and the local element count per channel
        count = x.new_full((1, ), x.numel() // x.shape[1])
        total = all_reduce(torch.cat([x.sum(dims), count]), group=group)
        n = total[-1]
        mean = total[:-1] / n
        shape = [1, -1] + [1] * (x.dim() - 2)
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims), group=group) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:
                    momentum = 1.0 / float(self.num_batches_tracked)
                else:
                    momentum = self.momentum
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm_for_cpu(module: nn.Module) -> nn.Module:
    """Give every :class:`~torch.nn.SyncBatchNorm` in ``module`` the CPU path, in place.

    Parameters, buffers and state-dict keys are untouched (the instances change class only,
    to :class:`CPUSyncBatchNorm`).

    Args:
        module (nn.Module): Model to convert.

    Returns:
        nn.Module: The same ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.SyncBatchNorm):
            m.__class__ = CPUSyncBatchNorm
    return module
