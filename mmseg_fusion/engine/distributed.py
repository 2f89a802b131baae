"""Distributed training and testing on machines without CUDA.

mmengine 0.10.7 cannot run ``torchrun ... --launcher pytorch`` on CPU: its
``_init_dist_pytorch`` calls ``torch.cuda.set_device`` unconditionally, the configs ask for
``nccl``, ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP (rejected for CPU
modules) and ``SyncBN`` has no CPU kernel. :func:`setup_distributed` fixes the config of a run
and initialises the process group before the ``Runner`` is built (mmengine then keeps it); with
CUDA it changes nothing, so GPU runs stay on NCCL exactly as configured.
:func:`shutdown_distributed` ends a finished run: neither mmengine nor torch destroys the
process group at exit (``destroy_process_group`` alone does not free a group that a finished
runner still references), and a gloo group whose threads are still alive while the
interpreter shuts down can abort a rank (``terminate called without an active exception``,
SIGABRT) after its work is done, so that torchrun reports a finished run as failed.
"""
import gc
import os
import subprocess
import warnings
import weakref
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS

from .sync_bn import convert_sync_batchnorm_for_cpu

__all__ = ['FusionDistributedDataParallel', 'setup_distributed', 'shutdown_distributed']


@MODEL_WRAPPERS.register_module()
class FusionDistributedDataParallel(MMDistributedDataParallel):
    """:class:`~mmengine.model.MMDistributedDataParallel` that also wraps CPU modules.

    For a module whose parameters live on the CPU, ``device_ids`` and ``output_device`` are
    dropped (DDP rejects them there) and ``SyncBatchNorm`` layers get a synchronised CPU path
    (:class:`~mmseg_fusion.engine.sync_bn.CPUSyncBatchNorm`). On CUDA it is
    ``MMDistributedDataParallel`` unchanged.

    Args:
        module (nn.Module): Model to wrap.
        **kwargs: Arguments of ``MMDistributedDataParallel``.
    """

    def __init__(self, module: torch.nn.Module, **kwargs: Any) -> None:
        devices = {p.device.type for p in module.parameters()}
        if devices <= {'cpu'}:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
            convert_sync_batchnorm_for_cpu(module)
        super().__init__(module=module, **kwargs)


def _export_slurm_env(port: Optional[int] = None) -> None:
    """Set the torch.distributed variables from Slurm's, as mmengine does for CUDA."""
    node_list = os.environ['SLURM_NODELIST']
    addr = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', str(port or 29500))
    os.environ.setdefault('MASTER_ADDR', addr)
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_distributed(cfg: Config, launcher: str) -> Optional[str]:
    """Prepare ``cfg`` (in place) for a distributed run on a machine without CUDA.

    With ``launcher='none'`` or with CUDA available nothing is changed. Otherwise the
    backend becomes ``gloo``, the model wrapper becomes :class:`FusionDistributedDataParallel`
    (other options of ``model_wrapper_cfg`` are kept) and, for the ``pytorch`` (``torchrun``)
    and ``slurm`` launchers, the gloo process group is initialised here.

    Args:
        cfg (Config): The run's config, changed in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        str, optional: A message for the run's log saying what was changed, or None.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return None
    env_cfg = cfg.setdefault('env_cfg', {})
    dist_cfg = env_cfg.setdefault('dist_cfg', {})
    requested = dist_cfg.get('backend', 'nccl')
    dist_cfg['backend'] = 'gloo'

    wrapper_cfg = cfg.get('model_wrapper_cfg') or {}
    wrapper_type = wrapper_cfg.get('type', 'MMDistributedDataParallel')
    if wrapper_type in ('MMDistributedDataParallel', 'FusionDistributedDataParallel'):
        wrapper_cfg = dict(wrapper_cfg, type='FusionDistributedDataParallel')
        wrapper_cfg.setdefault('broadcast_buffers', False)
        wrapper_cfg.setdefault('find_unused_parameters',
                               cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = wrapper_cfg

    if launcher in ('pytorch', 'slurm') and not (dist.is_available()
                                                and dist.is_initialized()):
        if launcher == 'slurm':
            _export_slurm_env(dist_cfg.get('port'))
        timeout = dist_cfg.get('timeout', 1800)
        if not isinstance(timeout, timedelta):
            timeout = timedelta(seconds=timeout)
        dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            timeout=timeout)
    return (f'CUDA is not available: distributed backend {requested!r} replaced by '
            f"'gloo', model wrapper {wrapper_cfg.get('type', wrapper_type)!r} "
            '(SyncBN synchronised on CPU)')


def shutdown_distributed() -> bool:
    """End a finished distributed run: wait for every process, then free the process group.

    Call it once at the end of a run that succeeded (``tools/train.py`` and ``tools/test.py``
    do); outside a process group it does nothing. A gloo process group that is still alive
    when the interpreter shuts down can abort the process from its threads (``terminate
    called without an active exception``, SIGABRT) after the work is done, so that torchrun
    reports a finished run as failed. The barrier keeps a rank from shutting its group down
    while another still communicates; ``destroy_process_group`` removes the group from
    torch's registry, but the group (and its threads) lives on while anything references it:
    a finished ``Runner`` holds it through the DDP wrapper in reference cycles, which only the
    garbage collector frees, so it is run here. A group that is still referenced afterwards
    (a live model wrapper, an autograd graph kept in a variable) is reported with a warning.
    Do not call it after an error in one rank: the others may never reach the barrier.

    Returns:
        bool: Whether a process group was destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    group = weakref.ref(dist.group.WORLD)
    dist.barrier()
    dist.destroy_process_group()
    gc.collect()
    if group() is not None:
        warnings.warn(
            'shutdown_distributed: the default process group is still referenced after '
            'destroy_process_group (by a live model wrapper, module or autograd graph); its '
            'gloo threads may abort this process at exit (SIGABRT). Delete those references '
            'before calling shutdown_distributed.', RuntimeWarning, stacklevel=2)
    return True
