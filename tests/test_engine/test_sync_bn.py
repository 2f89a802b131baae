import textwrap

import torch
import torch.nn as nn

from mmseg_fusion.engine import CPUSyncBatchNorm, convert_sync_batchnorm_for_cpu

# Run by torchrun in two processes (a spawned function of a test module cannot be imported
# by the children: the test files are not a package).
WORKER = textwrap.dedent('''
    import sys, weakref
    import torch, torch.distributed as dist, torch.nn as nn
    from mmseg_fusion.engine import convert_sync_batchnorm_for_cpu, shutdown_distributed
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    data = torch.load(sys.argv[1])
    torch.manual_seed(0)
    bn = convert_sync_batchnorm_for_cpu(nn.Sequential(nn.SyncBatchNorm(3, momentum=0.1)))[0]
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-0.5, 0.5)
    xs = data['x'].chunk(world)[rank].clone().requires_grad_(True)
    out = bn(xs)
    out.backward(data['grad'].chunk(world)[rank])
    group = weakref.ref(dist.group.WORLD)
    shutdown_distributed()
    # `out` keeps its autograd graph: the group must not live on in it (its gloo threads
    # can abort the process at exit)
    torch.save(dict(out=out.detach(), grad=xs.grad, wgrad=bn.weight.grad,
                    mean=bn.running_mean, var=bn.running_var, group_freed=group() is None),
               f'{sys.argv[2]}.{rank}')
''')


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


def test_two_gloo_processes_match_batchnorm_on_the_whole_batch(tmp_path, run_tool, free_port):
    torch.manual_seed(1)
    x = torch.randn(6, 3, 5, 7) * 3 + 1
    grad = torch.randn(6, 3, 5, 7)
    torch.save(dict(x=x, grad=grad), tmp_path / 'data.pt')
    (tmp_path / 'worker.py').write_text(WORKER)
    run_tool(['-m', 'torch.distributed.run', '--nproc_per_node=2',
              f'--master_port={free_port}', tmp_path / 'worker.py', tmp_path / 'data.pt',
              tmp_path / 'out'], env={'OMP_NUM_THREADS': '1'})
    res = [torch.load(tmp_path / f'out.{r}') for r in range(2)]

    torch.manual_seed(0)
    ref = nn.BatchNorm2d(3, momentum=0.1)
    ref.weight.data.uniform_(0.5, 1.5)
    ref.bias.data.uniform_(-0.5, 0.5)
    xr = x.clone().requires_grad_(True)
    out = ref(xr)
    out.backward(grad)
    torch.testing.assert_close(torch.cat([r['out'] for r in res]), out.detach())
    torch.testing.assert_close(torch.cat([r['grad'] for r in res]), xr.grad,
                               rtol=1e-4, atol=1e-5)
    # DDP averages parameter gradients over ranks: their sum is the whole-batch gradient
    torch.testing.assert_close(res[0]['wgrad'] + res[1]['wgrad'], ref.weight.grad,
                               rtol=1e-4, atol=1e-5)
    for r in res:
        assert r['group_freed']
        torch.testing.assert_close(r['mean'], ref.running_mean)
        torch.testing.assert_close(r['var'], ref.running_var)
