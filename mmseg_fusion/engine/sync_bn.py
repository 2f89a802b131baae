"""Synchronised batch normalisation that also runs on CPU (gloo).

mmseg configs build their norms as ``SyncBN`` (:class:`torch.nn.SyncBatchNorm`), whose
synchronised path raises ``SyncBatchNorm expected input tensor to be on GPU`` for CPU tensors.
:class:`CPUSyncBatchNorm` keeps the parameters, buffers and state-dict keys of
:class:`~torch.nn.SyncBatchNorm` and, for CPU inputs in a distributed training step, computes
the batch statistics over all processes with differentiable all-reduces, which gives the same
forward and backward as batch norm over the concatenated global batch.

Shape shorthand: N batch, C channels, ``*`` spatial dimensions.
"""
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.nn.functional import all_reduce

__all__ = ['CPUSyncBatchNorm', 'convert_sync_batchnorm_for_cpu']


class CPUSyncBatchNorm(nn.SyncBatchNorm):
    """:class:`~torch.nn.SyncBatchNorm` with a synchronised CPU path.

    On CUDA, in eval mode, or outside an initialised process group it is exactly
    :class:`~torch.nn.SyncBatchNorm`. Statistics are computed in two passes (mean, then the
    centred second moment) for accuracy; the running variance uses the unbiased estimate, as
    PyTorch does.
    """

    def _use_cpu_sync(self, x: torch.Tensor) -> bool:
        return (x.device.type == 'cpu' and self.training and dist.is_available()
                and dist.is_initialized()
                and dist.get_world_size(self.process_group or dist.group.WORLD) > 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (N, C, *) over N and * of every process."""
        if not self._use_cpu_sync(x):
            return super().forward(x)
        self._check_input_dim(x)
        group = self.process_group or dist.group.WORLD
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

    Parameters, buffers and state-dict keys are untouched (the instances change class only).

    Args:
        module (nn.Module): Model to convert.

    Returns:
        nn.Module: The same ``module``.
    """
    for m in module.modules():
        if type(m) is nn.SyncBatchNorm:
            m.__class__ = CPUSyncBatchNorm
    return module
