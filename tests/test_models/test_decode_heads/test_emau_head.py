import math
import os
import os.path as osp
import re
import subprocess
import sys

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmseg.models.decode_heads.ema_head import EMAHead
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers EMAUHead)
from mmseg_fusion.layers import em_iterations
from mmseg_fusion.models.decode_heads.emau_head import EMAUHead

TINY = dict(in_channels=4, ema_channels=6, channels=5, num_classes=3, num_bases=4,
            num_stages=3, dropout_ratio=0.0)


def build_pair(concat_input: bool, momentum: float = 0.2, **ours):
    """An mmseg EMAHead with randomised weights and running stats, and our head with its
    state dict loaded strictly."""
    torch.manual_seed(0)
    ref = EMAHead(**TINY, concat_input=concat_input, momentum=momentum)
    with torch.no_grad():
        for name, tensor in ref.state_dict().items():
            if name.endswith('running_var'):
                tensor.uniform_(0.5, 2.0)
            elif name.endswith(('running_mean', 'weight', 'bias')):
                tensor.normal_(0, 0.5)
    head = MODELS.build(dict(type='EMAUHead', **TINY, concat_input=concat_input,
                             momentum=momentum, **ours))
    head.load_state_dict(ref.state_dict(), strict=True)
    return ref, head


@pytest.mark.parametrize('concat_input', [True, False])
def test_mmseg_checkpoint_loads_and_matches(concat_input):
    ref, head = build_pair(concat_input)
    assert list(head.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 4, 23, 29)
    ref.eval(), head.eval()
    bases = head.ema_module.bases.clone()
    out = head([x])
    assert out.shape == (2, 3, 23, 29)
    torch.testing.assert_close(out, ref([x]))
    assert torch.equal(head.ema_module.bases, bases)  # eval: bases untouched

    # one training step: same output (BN batch statistics) and same moving-average update
    ref.train(), head.train()
    torch.testing.assert_close(head([x]), ref([x]))
    assert not torch.equal(head.ema_module.bases, bases)
    torch.testing.assert_close(head.ema_module.bases, ref.ema_module.bases)
    torch.testing.assert_close(head.state_dict(), ref.state_dict())
    # and our checkpoint loads back into mmseg's head
    ref.load_state_dict(head.state_dict(), strict=True)


def test_official_mode():
    ref, head = build_pair(concat_input=False, official=True)
    assert head.official and head.concat_input is False
    assert not hasattr(head, 'conv_cat')
    assert 'official=True' in repr(head.ema_module)
    x = torch.randn(1, 4, 9, 11)
    ref.eval(), head.eval()
    # official epsilons (1e-6 + denominators) change the result only slightly
    torch.testing.assert_close(head([x]), ref([x]), rtol=1e-3, atol=1e-4)

    head.train()
    before = head.ema_module.bases.clone()
    feats = head.ema_mid_conv(head.ema_in_conv(x))
    final, _ = em_iterations(feats.flatten(2), before, 3, official=True)
    head([x])
    # official moving average: the batch mean is not l2-normalised again
    torch.testing.assert_close(head.ema_module.bases, 0.8 * before + 0.2 * final.mean(0, True))
    explicit = MODELS.build(dict(type='EMAUHead', **TINY, official=True, concat_input=True))
    assert hasattr(explicit, 'conv_cat')


def test_gradients_reach_every_trainable_parameter():
    _, head = build_pair(concat_input=True)
    head.train()
    head([torch.randn(2, 4, 23, 29)]).pow(2).mean().backward()
    frozen = {n for n, p in head.named_parameters() if not p.requires_grad}
    assert frozen == {'ema_mid_conv.conv.weight', 'ema_mid_conv.conv.bias'}
    for name, param in head.named_parameters():
        if name in frozen:
            assert param.grad is None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_bases=0), 'EMAUHead: num_bases must be an int >= 1, got 0'),
    (dict(num_stages=0), 'EMAUHead: num_stages must be an int >= 1, got 0'),
    (dict(num_stages=-2), 'EMAUHead: num_stages must be an int >= 1, got -2'),
    (dict(momentum=2), r'EMAUHead: momentum must be a float in \[0, 1\].*got 2'),
    (dict(momentum=None), r'EMAUHead: momentum .*got None'),
    (dict(ema_channels=0), 'EMAUHead: ema_channels must be an int >= 1, got 0'),
])
def test_bad_arguments(kwargs, match):
    cfg = dict(type='EMAUHead', **TINY)
    cfg.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_name_does_not_clash_with_mmseg():
    assert MODELS.get('EMAUHead') is EMAUHead
    assert MODELS.get('EMAHead') is EMAHead


# ---------------------------------------------------------------- DDP: bases equal on all ranks
# Each rank is a fresh interpreter running this code (spawned functions cannot be pickled by
# reference from a test module collected with --import-mode=importlib).
DDP_WORKER = """
import os, sys, warnings, torch, torch.distributed as dist
from mmseg_fusion.engine import shutdown_distributed
from mmseg_fusion.models.decode_heads.emau_head import EMAUHead
rank, port, data, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
dist.init_process_group('gloo', rank=rank, world_size=2)
tiny = dict(in_channels=4, ema_channels=6, channels=5, num_classes=3, num_bases=4,
            num_stages=3, dropout_ratio=0.0)
x = torch.load(data).chunk(2)[rank]
results = {}
for official in (False, True):
    torch.manual_seed(0)
    head = EMAUHead(**tiny, momentum=0.3, official=official).train()
    model = torch.nn.parallel.DistributedDataParallel(head)
    model([x]).pow(2).mean().backward()
    results[official] = head.ema_module.bases.clone()
del model, head
torch.save(results, out)
with warnings.catch_warnings():
    warnings.simplefilter('error', RuntimeWarning)  # the group must be freed
    shutdown_distributed()
"""


@pytest.mark.slow
def test_bases_are_synchronised_over_two_gloo_processes(tmp_path, free_port):
    torch.manual_seed(1)
    x = torch.randn(4, 4, 7, 9)
    torch.save(x, tmp_path / 'x.pth')
    env = dict(os.environ, MMSEG_FUSION_SKIP_VERSION_CHECK='1')
    procs = [subprocess.Popen([sys.executable, '-c', DDP_WORKER, str(r), str(free_port),
                               str(tmp_path / 'x.pth'), str(tmp_path / f'rank{r}.pth')],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for r in range(2)]
    for p in procs:
        output, _ = p.communicate(timeout=300)
        assert p.returncode == 0, output[-3000:]
    results = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]

    for official in (False, True):
        assert torch.equal(results[0][official], results[1][official])
        # single-process prediction: each rank's EM on its own half (BN statistics of that
        # half), batch means averaged over the ranks, then the moving average
        torch.manual_seed(0)
        head = EMAUHead(**TINY, momentum=0.3, official=official).train()
        before = head.ema_module.bases.clone()
        means = []
        with torch.no_grad():
            for half in x.chunk(2):
                feats = head.ema_mid_conv(head.ema_in_conv(half)).flatten(2)
                means.append(em_iterations(feats, before, 3, official=official)[0].mean(0))
        mean = torch.stack(means).mean(0, keepdim=True)
        if not official:
            mean = mean / mean.norm(dim=1, keepdim=True)
        expected = 0.7 * before + 0.3 * mean
        torch.testing.assert_close(results[0][official], expected)
        assert not torch.allclose(results[0][official], before)


# ----------------------------------------------------------------------- configs and training
def test_configs_build(method_configs):
    for name, cfg in method_configs('emanet', 6):
        assert cfg.model.decode_head.type == 'EMAUHead'
        head = MODELS.build(cfg.model.decode_head)
        assert head.concat_input is not head.official, name


def test_readme_links_every_config(readme_config_links):
    linked, present = readme_config_links('emanet')
    assert linked == present


@pytest.mark.slow
def test_tiny_training_updates_bases(tmp_path, repo_root, synthetic_root, tiny_options,
                                     run_tool):
    config = osp.join(repo_root, 'configs', 'emanet',
                      'emanet_r18-d8_1xb8-600_synthetic-128x128.py')
    work = str(tmp_path / 'work')
    out = run_tool([osp.join(repo_root, 'tools', 'train.py'), config, '--work-dir', work,
                    '--cfg-options', *tiny_options(synthetic_root, iters=2, ckpt_interval=1)])
    losses = [float(v) for v in re.findall(r'Iter\(train\).* loss: (\S+)', out.stdout)]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses), out.stdout[-3000:]
    first, second = (torch.load(osp.join(work, f'iter_{i}.pth'), weights_only=False)
                     for i in (1, 2))
    key = 'decode_head.ema_module.bases'
    assert first['state_dict'][key].shape == (1, 32, 16)
    # the moving average moved between the two training steps
    assert not torch.allclose(first['state_dict'][key], second['state_dict'][key])


def test_mmseg_zoo_config_head_loads_into_ours(repo_root):
    """The decode head of mmseg's EMANet config and of ours: same keys, same outputs."""
    from mmengine.model.utils import revert_sync_batchnorm
    theirs = Config.fromfile(osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', 'emanet',
                                      'emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py'))
    ours = Config.fromfile(osp.join(repo_root, 'configs', 'emanet',
                                    'emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py'))
    torch.manual_seed(0)
    ref = revert_sync_batchnorm(MODELS.build(theirs.model.decode_head)).eval()
    head = revert_sync_batchnorm(MODELS.build(ours.model.decode_head)).eval()
    assert type(ref) is EMAHead and type(head) is EMAUHead
    head.load_state_dict(ref.state_dict(), strict=True)
    x = torch.rand(1, 2048, 5, 7)
    torch.testing.assert_close(head([None, None, None, x]), ref([None, None, None, x]))
