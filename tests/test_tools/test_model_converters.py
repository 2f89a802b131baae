"""tools/model_converters: the thin CLIs, and mmseg zoo checkpoints that need no converter.

mmseg's CCNet and EMANet checkpoints load into our RCCAHead / EMAUHead configs as they are: the
models are built from mmseg's own configs (random weights and BN statistics), their state dicts
loaded strictly into ours, and the logits compared on a small odd-sized input.
"""
import os
import os.path as osp

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_fusion  # noqa: F401

MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
TOOLS = ('emanet2fusion.py', 'ccnet2fusion.py', 'dlaafa2fusion.py')


def build(path):
    register_all_modules()
    cfg = Config.fromfile(path)
    cfg.model.pretrained = None
    return revert_sync_batchnorm(MODELS.build(cfg.model))


def randomise(model):
    torch.manual_seed(0)
    model.init_weights()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.0)
            module.bias.data.normal_(0, 0.1)
    for name, param in model.named_parameters():
        if name.endswith('gamma.scale'):
            param.data.fill_(0.5)  # criss-cross attention is the identity at gamma = 0
    return model.eval()


@pytest.mark.parametrize('method, config, head', [
    ('emanet', 'emanet_r50-d8_4xb2-80k_cityscapes-512x1024.py', 'EMAHead'),
    ('ccnet', 'ccnet_r50-d8_4xb2-80k_cityscapes-512x1024.py', 'CCHead'),
])
def test_mmseg_zoo_checkpoints_load_unchanged(method, config, head, repo_root):
    ref = randomise(build(osp.join(MMSEG_CONFIGS, method, config)))
    assert type(ref.decode_head).__name__ == head
    ours = build(osp.join(repo_root, 'configs', method, config)).eval()
    assert type(ours.decode_head).__name__ != head
    ours.load_state_dict(ref.state_dict(), strict=True)
    img = torch.randn(1, 3, 35, 43)
    metas = [dict(img_shape=(35, 43))]
    with torch.no_grad():
        expected = ref.encode_decode(img, metas)
        got = ours.encode_decode(img, metas)
    assert got.shape == (1, 19, 35, 43)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('tool', TOOLS)
def test_cli_refuses_foreign_pickle(tool, tmp_path, repo_root, run_tool):
    marker = tmp_path / 'pwned'
    evil = tmp_path / 'evil.pth'
    code = ('import os, torch\n'
            'class E:\n'
            f'    def __reduce__(self): return (os.system, ("touch {marker}",))\n'
            f'torch.save({{"net": {{}}, "x": E()}}, "{evil}")\n')
    run_tool(['-c', code])
    out = tmp_path / 'out'
    out.mkdir()
    proc = run_tool([osp.join(repo_root, 'tools', 'model_converters', tool), str(evil),
                     str(out / 'x.pth')], check=False)
    assert proc.returncode == 1, proc.stdout
    assert 'conversion failed, nothing written' in proc.stdout
    assert 'was not unpickled' in proc.stdout
    assert not marker.exists() and os.listdir(out) == []


@pytest.mark.parametrize('tool', TOOLS)
def test_cli_truncated_file_and_existing_dst(tool, tmp_path, repo_root, run_tool):
    src = tmp_path / 'src.pth'
    torch.save({'net': {'w': torch.randn(64, 64)}}, src)
    src.write_bytes(src.read_bytes()[:300])
    script = osp.join(repo_root, 'tools', 'model_converters', tool)
    proc = run_tool([script, str(src), str(tmp_path / 'x.pth')], check=False)
    assert proc.returncode == 1 and 'truncated or corrupt' in proc.stdout, proc.stdout
    assert not (tmp_path / 'x.pth').exists()
    dst = tmp_path / 'dst.pth'
    dst.write_bytes(b'keep me')
    proc = run_tool([script, str(src), str(dst)], check=False)
    assert proc.returncode == 1 and 'refusing to overwrite it (pass --force)' in proc.stdout
    assert dst.read_bytes() == b'keep me'
