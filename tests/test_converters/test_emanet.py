"""Official EMANet checkpoint -> EMAUHead(official=True): key map, strict load, same outputs.

The synthetic checkpoint has the key names and shapes of the official ``network.py``
(``{'net': EMANet(21, 101).state_dict()}``) with random values; the reference forward below is
written from the official code's equations (ResNet with the official dilations, ConvBNReLU,
EMAU with ``1e-6 +`` normalisations, ``F.interpolate(align_corners=True)``).
"""
import os
import os.path as osp
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import revert_sync_batchnorm

from mmseg_fusion.converters import (
    ConversionError,
    build_target_model,
    check_state_dict,
    convert_emanet,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'emanet',
                  'emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py')
# official ResNet-101 at output stride 8: (planes, blocks, first stride, block dilations)
LAYERS = ((64, 3, 1, (1, 1, 1)), (128, 4, 2, (1,) * 4), (256, 23, 1, (1,) + (2,) * 22),
          (512, 3, 1, (2, 8, 16)))


def add_conv(sd, name, cout, cin, k, bias=False):
    sd[f'{name}.weight'] = torch.randn(cout, cin, k, k) * (1.0 / (cin * k * k)) ** 0.5
    if bias:
        sd[f'{name}.bias'] = torch.randn(cout) * 0.1


def add_bn(sd, name, c, tracked=True):
    sd[f'{name}.weight'] = torch.rand(c) * 0.5 + 0.5
    sd[f'{name}.bias'] = torch.randn(c) * 0.1
    sd[f'{name}.running_mean'] = torch.randn(c) * 0.1
    sd[f'{name}.running_var'] = torch.rand(c) + 0.5
    if tracked:
        sd[f'{name}.num_batches_tracked'] = torch.tensor(100)


def official_emanet_state_dict(num_classes=21, tracked=True):
    torch.manual_seed(0)
    sd = OrderedDict()
    add_conv(sd, 'extractor.0.0', 64, 3, 3)
    add_bn(sd, 'extractor.0.1', 64, tracked)
    add_conv(sd, 'extractor.0.3', 64, 64, 3)
    add_bn(sd, 'extractor.0.4', 64, tracked)
    add_conv(sd, 'extractor.0.6', 128, 64, 3)
    add_bn(sd, 'extractor.1', 128, tracked)
    inplanes = 128
    for idx, (planes, blocks, _, _) in enumerate(LAYERS):
        for b in range(blocks):
            p = f'extractor.{4 + idx}.{b}'
            add_conv(sd, f'{p}.conv1', planes, inplanes, 1)
            add_bn(sd, f'{p}.bn1', planes, tracked)
            add_conv(sd, f'{p}.conv2', planes, planes, 3)
            add_bn(sd, f'{p}.bn2', planes, tracked)
            add_conv(sd, f'{p}.conv3', planes * 4, planes, 1)
            add_bn(sd, f'{p}.bn3', planes * 4, tracked)
            if b == 0:
                add_conv(sd, f'{p}.downsample.0', planes * 4, inplanes, 1)
                add_bn(sd, f'{p}.downsample.1', planes * 4, tracked)
            inplanes = planes * 4
    add_conv(sd, 'fc0.conv', 512, 2048, 3)
    add_bn(sd, 'fc0.bn', 512, tracked)
    mu = torch.randn(1, 512, 64)
    sd['emau.mu'] = mu / (1e-6 + mu.norm(dim=1, keepdim=True))
    add_conv(sd, 'emau.conv1', 512, 512, 1, bias=True)
    add_conv(sd, 'emau.conv2.0', 512, 512, 1)
    add_bn(sd, 'emau.conv2.1', 512, tracked)
    add_conv(sd, 'fc1.0.conv', 256, 512, 3)
    add_bn(sd, 'fc1.0.bn', 256, tracked)
    add_conv(sd, 'fc2', num_classes, 256, 1, bias=True)
    return sd


def bn(x, sd, name):
    shape = (1, -1, 1, 1)
    scale = sd[f'{name}.weight'] / torch.sqrt(sd[f'{name}.running_var'] + 1e-5)
    return ((x - sd[f'{name}.running_mean'].view(shape)) * scale.view(shape)
            + sd[f'{name}.bias'].view(shape))


def official_forward(sd, img):
    sd = {k: v.double() for k, v in sd.items()}
    x = F.relu(bn(F.conv2d(img, sd['extractor.0.0.weight'], stride=2, padding=1), sd,
                  'extractor.0.1'))
    x = F.relu(bn(F.conv2d(x, sd['extractor.0.3.weight'], padding=1), sd, 'extractor.0.4'))
    x = F.relu(bn(F.conv2d(x, sd['extractor.0.6.weight'], padding=1), sd, 'extractor.1'))
    x = F.max_pool2d(x, 3, 2, 1)
    for idx, (_, blocks, stride, dilations) in enumerate(LAYERS):
        for b in range(blocks):
            p = f'extractor.{4 + idx}.{b}'
            s = stride if b == 0 else 1
            d = dilations[b]
            out = F.relu(bn(F.conv2d(x, sd[f'{p}.conv1.weight']), sd, f'{p}.bn1'))
            out = F.relu(bn(F.conv2d(out, sd[f'{p}.conv2.weight'], stride=s, padding=d,
                                     dilation=d), sd, f'{p}.bn2'))
            out = bn(F.conv2d(out, sd[f'{p}.conv3.weight']), sd, f'{p}.bn3')
            if b == 0:
                x = bn(F.conv2d(x, sd[f'{p}.downsample.0.weight'], stride=s), sd,
                       f'{p}.downsample.1')
            x = F.relu(out + x)
    # head: fc0 -> EMAU -> fc1 -> fc2
    x = F.relu(bn(F.conv2d(x, sd['fc0.conv.weight'], padding=1), sd, 'fc0.bn'))
    idn = x
    x = F.conv2d(x, sd['emau.conv1.weight'], sd['emau.conv1.bias'])
    n, c, h, w = x.shape
    x = x.view(n, c, h * w)
    mu = sd['emau.mu'].repeat(n, 1, 1)
    for _ in range(3):
        z = torch.softmax(torch.bmm(x.permute(0, 2, 1), mu), dim=2)
        z_ = z / (1e-6 + z.sum(dim=1, keepdim=True))
        mu = torch.bmm(x, z_)
        mu = mu / (1e-6 + mu.norm(dim=1, keepdim=True))
    x = F.relu(mu.matmul(z.permute(0, 2, 1)).view(n, c, h, w))
    x = F.relu(bn(F.conv2d(x, sd['emau.conv2.0.weight']), sd, 'emau.conv2.1') + idn)
    x = F.relu(bn(F.conv2d(x, sd['fc1.0.conv.weight'], padding=1), sd, 'fc1.0.bn'))
    x = F.conv2d(x, sd['fc2.weight'], sd['fc2.bias'])
    return F.interpolate(x, size=img.shape[2:], mode='bilinear', align_corners=True)


@pytest.fixture(scope='module')
def official():
    return official_emanet_state_dict()


@pytest.fixture(scope='module')
def model():
    return revert_sync_batchnorm(build_target_model(CONFIG)).eval()


def test_convert_and_compare_with_official_forward(official, model):
    converted, unmapped = convert_emanet({'net': official})
    assert unmapped == []
    check_state_dict(converted, model)  # strict keys and shapes, then load_state_dict(strict)
    assert len(converted) == len(model.state_dict())
    torch.testing.assert_close(model.decode_head.ema_module.bases, official['emau.mu'])
    assert not model.decode_head.ema_mid_conv.conv.weight.requires_grad

    img = torch.randn(1, 3, 37, 45, dtype=torch.float64)
    model.double()
    try:
        with torch.no_grad():
            ours = model.encode_decode(img, [dict(img_shape=(37, 45))])
    finally:
        model.float()
    ref = official_forward(official, img)
    assert ours.shape == (1, 21, 37, 45)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)


def test_module_prefix_and_missing_num_batches_tracked(official, model):
    old = OrderedDict((f'module.{k}', v) for k, v in official.items()
                      if not k.endswith('num_batches_tracked'))
    converted, unmapped = convert_emanet({'net': old})
    assert unmapped == []
    check_state_dict(converted, model)
    assert int(converted['backbone.stem.1.num_batches_tracked']) == 0


def test_errors_list_every_problem(official, model):
    broken = OrderedDict(official)
    del broken['fc0.bn.running_var']
    broken['extra.weight'] = torch.ones(1)
    broken['fc2.weight'] = torch.ones(19, 256, 1, 1)
    converted, unmapped = convert_emanet({'net': broken})
    assert unmapped == ['extra.weight']
    with pytest.raises(ConversionError) as info:
        check_state_dict(converted, model, unmapped, source='EMANet')
    msg = str(info.value)
    assert 'nothing was written' in msg
    assert '1 source keys with no mapping:\n  extra.weight' in msg
    assert 'decode_head.ema_in_conv.bn.running_var' in msg
    assert 'decode_head.conv_seg.weight: converted (19, 256, 1, 1), model (21, 256, 1, 1)' in msg


def test_not_an_emanet_checkpoint():
    with pytest.raises(ConversionError, match='mmseg/mmengine checkpoint'):
        convert_emanet({'state_dict': {'a': torch.ones(1)}})
    with pytest.raises(ConversionError, match='no "emau.mu"'):
        convert_emanet({'net': {'conv1.weight': torch.ones(1)}})
    with pytest.raises(ConversionError, match='not tensors'):
        convert_emanet({'net': {'emau.mu': [1.0]}})


def test_cfg_options_select_another_number_of_classes(official):
    sd = official_emanet_state_dict(num_classes=19)
    converted, _ = convert_emanet({'net': sd})
    model = build_target_model(CONFIG, {'model.decode_head.num_classes': 19})
    check_state_dict(converted, model)


def test_convert_file_through_cli(official, tmp_path, capsys):
    from mmseg_fusion.converters.cli import converter_main

    src, dst = tmp_path / 'emanet_official.pth', tmp_path / 'emanet_fusion.pth'
    torch.save({'net': official}, src)
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', [str(src), str(dst)]) == 0
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert ckpt['meta']['converted_from'] == 'EMANet'
    assert ckpt['meta']['config'] == osp.basename(CONFIG)
    torch.testing.assert_close(ckpt['state_dict']['decode_head.conv_seg.bias'],
                               official['fc2.bias'])
    # an existing DST is kept unless --force
    before = dst.stat().st_mtime_ns
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', [str(src), str(dst)]) == 1
    assert 'refusing to overwrite' in capsys.readouterr().err
    assert dst.stat().st_mtime_ns == before
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test',
                          [str(src), str(dst), '--force']) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])


def test_failed_conversion_writes_nothing(official, tmp_path, capsys):
    from mmseg_fusion.converters.cli import converter_main

    broken = OrderedDict(official)
    del broken['emau.conv1.bias']
    src = tmp_path / 'broken.pth'
    torch.save({'net': broken}, src)
    out = tmp_path / 'out'
    out.mkdir()
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test',
                          [str(src), str(out / 'x.pth')]) == 1
    assert 'decode_head.ema_mid_conv.conv.bias' in capsys.readouterr().err
    assert list(out.iterdir()) == []


@pytest.fixture(scope='module')
def official_file(official, tmp_path_factory):
    """The official-format checkpoint as a file to serve, and its sha256."""
    from mmseg_fusion.engine.publish import sha256_file

    path = tmp_path_factory.mktemp('release') / 'emanet_official.pth'
    torch.save({'net': official}, path)
    return path, sha256_file(str(path))


def test_convert_from_url_checks_the_hash_and_reuses_the_cache(
        official, official_file, model, checkpoint_server, tmp_path, capsys):
    from mmseg_fusion.converters.cli import converter_main
    from mmseg_fusion.converters.download import cache_path

    path, digest = official_file
    url = checkpoint_server.add('/releases/emanet_official.pth', file=path)
    cache, out = tmp_path / 'cache', tmp_path / 'checkpoints'
    out.mkdir()
    dst = out / 'emanet_fusion.pth'
    argv = [url, str(dst), '--sha256', digest, '--cache-dir', str(cache)]
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', argv) == 0
    captured = capsys.readouterr()
    size = f'{osp.getsize(path) / (1 << 20):.1f} MiB'  # about 206 MiB
    assert f'downloading {url} ({size}) to {cache}' in captured.err, captured.err
    assert f'/{size} (100%), ' in captured.err and ' s, done' in captured.err
    assert f'converted {url} -> {dst}' in captured.out
    ckpt = torch.load(dst, weights_only=True)
    model.load_state_dict(ckpt['state_dict'], strict=True)  # loads strictly into CONFIG
    torch.testing.assert_close(model.decode_head.ema_module.bases, official['emau.mu'])
    meta = ckpt['meta']
    assert meta['source_url'] == url and meta['source_sha256'] == digest
    assert meta['source_file'] == 'emanet_official.pth'
    assert os.listdir(cache) == [osp.basename(cache_path(url, str(cache)))]
    assert checkpoint_server.requests['/releases/emanet_official.pth'] == 1
    # a second conversion reads the cached file: no new request
    again = out / 'again.pth'
    argv = [url, str(again), '--sha256', digest, '--cache-dir', str(cache)]
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', argv) == 0
    assert f'using the cached download of {url}' in capsys.readouterr().err
    assert checkpoint_server.requests['/releases/emanet_official.pth'] == 1
    assert torch.load(again, weights_only=True)['state_dict'].keys() == ckpt['state_dict'].keys()


def test_convert_from_url_with_a_wrong_hash_writes_nothing(official_file, checkpoint_server,
                                                           tmp_path, capsys):
    from mmseg_fusion.converters.cli import converter_main

    path, digest = official_file
    url = checkpoint_server.add('/releases/emanet_official.pth', file=path)
    cache, out = tmp_path / 'cache', tmp_path / 'checkpoints'
    out.mkdir()
    dst = out / 'emanet_fusion.pth'
    wrong = digest[::-1] if digest[::-1] != digest else '0' * 64
    argv = [url, str(dst), '--sha256', wrong, '--cache-dir', str(cache)]
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', argv) == 1
    err = capsys.readouterr().err
    assert 'EMANet conversion failed, nothing written' in err
    assert f'sha256 mismatch for {url}: expected {wrong}, got {digest}' in err
    assert not dst.exists() and os.listdir(out) == []
    assert os.listdir(cache) == []  # the bad download is not cached
    assert checkpoint_server.requests['/releases/emanet_official.pth'] == 1
    # an existing DST is refused before anything is downloaded, even with the right hash
    dst.write_bytes(b'keep')
    argv = [url, str(dst), '--sha256', digest, '--cache-dir', str(cache)]
    assert converter_main('EMANet', convert_emanet, CONFIG, 'test', argv) == 1
    assert 'pass --force' in capsys.readouterr().err
    assert dst.read_bytes() == b'keep' and os.listdir(cache) == []
    assert checkpoint_server.requests['/releases/emanet_official.pth'] == 1
    # a malformed hash is a usage error
    with pytest.raises(SystemExit) as info:
        converter_main('EMANet', convert_emanet, CONFIG, 'test', [url, str(dst), '--sha256', 'x'])
    assert info.value.code == 2
    assert "argument --sha256: sha256 must be 64 hexadecimal digits, got 'x'" in \
        capsys.readouterr().err
