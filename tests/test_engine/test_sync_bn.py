import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from mmseg_fusion.engine import CPUSyncBatchNorm, convert_sync_batchnorm_for_cpu


def _worker(rank: int, world: int, port: int, x: torch.Tensor, grad: torch.Tensor,
            queue) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)
    bn = convert_sync_batchnorm_for_cpu(nn.Sequential(nn.SyncBatchNorm(3, momentum=0.1)))[0]
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    xs = x.chunk(world)[rank].clone().requires_grad_(True)
    out = bn(xs)
    out.backward(grad.chunk(world)[rank])
    queue.put((rank, out.detach(), xs.grad, bn.weight.grad, bn.running_mean.clone(),
               bn.running_var.clone()))
    dist.barrier()
    dist.destroy_process_group()


def test_conversion_keeps_state_dict_keys():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4))
    keys = list(model.state_dict())
    convert_sync_batchnorm_for_cpu(model)
    assert type(model[1]) is CPUSyncBatchNorm
    assert list(model.state_dict()) == keys


def test_single_process_is_plain_batchnorm():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 7)
    bn = CPUSyncBatchNorm(3)
    ref = nn.BatchNorm2d(3)
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn.running_var, ref.running_var)


def test_two_gloo_processes_match_batchnorm_on_the_whole_batch(free_port):
    torch.manual_seed(1)
    x = torch.randn(6, 3, 5, 7) * 3 + 1
    grad = torch.randn(6, 3, 5, 7)
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, 2, free_port, x, grad, queue))
             for r in range(2)]
    for p in procs:
        p.start()
    results = dict((r[0], r[1:]) for r in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    torch.manual_seed(0)
    ref = nn.BatchNorm2d(3, momentum=0.1)
    ref.weight.data.uniform_(0.5, 1.5)
    ref.bias.data.uniform_(-0.5, 0.5)
    xr = x.clone().requires_grad_(True)
    out = ref(xr)
    out.backward(grad)
    torch.testing.assert_close(torch.cat([results[0][0], results[1][0]]), out.detach())
    torch.testing.assert_close(torch.cat([results[0][1], results[1][1]]), xr.grad,
                               rtol=1e-4, atol=1e-5)
    # DDP averages parameter gradients over ranks: their sum is the whole-batch gradient
    torch.testing.assert_close(results[0][2] + results[1][2], ref.weight.grad,
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(results[0][3], ref.running_mean)
    torch.testing.assert_close(results[0][4], ref.running_var)
    torch.testing.assert_close(results[1][4], ref.running_var)
