"""CrissCrossAttention against mmcv's module on the same weights; state dicts; ONNX export."""
import warnings

import pytest
import torch

from mmseg_fusion.layers import CrissCrossAttention


def mmcv_ops():
    """mmcv's compiled ops (the reference); tests that compare with it skip without them."""
    return pytest.importorskip('mmcv.ops', reason='needs compiled mmcv for the reference')


def pair(channels=16, gamma=0.7, seed=0):
    """Our module and mmcv's with the same random weights (gamma != 0)."""
    torch.manual_seed(seed)
    ref = mmcv_ops().CrissCrossAttention(channels)
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ref.gamma.scale.data.fill_(gamma)
    ours = CrissCrossAttention(channels)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours, ref


def test_state_dict_matches_mmcv():
    ours, ref = CrissCrossAttention(24), mmcv_ops().CrissCrossAttention(24)
    a, b = ours.state_dict(), ref.state_dict()
    assert list(a) == list(b)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert a['gamma.scale'].shape == torch.Size([])
    assert a['query_conv.weight'].shape == (3, 24, 1, 1)
    ref.load_state_dict(ours.state_dict(), strict=True)


@pytest.mark.parametrize('shape', [(2, 16, 7, 9), (1, 16, 1, 5), (2, 16, 6, 1), (1, 8, 23, 29)])
def test_matches_mmcv_forward_backward(shape):
    ours, ref = pair(shape[1])
    x = torch.randn(*shape)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = ours(x1), ref(x2)
    assert out1.shape == shape and out1.is_contiguous()
    torch.testing.assert_close(out1, out2, rtol=1e-5, atol=1e-5)
    weight = torch.randn(shape)
    (out1 * weight).sum().backward()
    (out2 * weight).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-4)
    for (name, p1), p2 in zip(ours.named_parameters(), ref.parameters()):
        assert p1.grad is not None, name
        if name == 'key_conv.bias':
            # exactly zero in theory: q . b_k is constant along each softmax row
            assert p1.grad.abs().max() < 1e-3
            continue
        scale = p2.grad.abs().max().clamp(min=1.)
        torch.testing.assert_close(p1.grad / scale, p2.grad / scale, rtol=1e-4, atol=1e-4,
                                   msg=name)


def test_identity_at_init_and_every_parameter_learns():
    layer = CrissCrossAttention(16)
    assert layer.gamma.scale.item() == 0
    x = torch.randn(2, 16, 5, 7)
    torch.testing.assert_close(layer(x), x)
    layer.gamma.scale.data.fill_(0.5)
    layer(x).pow(2).sum().backward()
    for name, p in layer.named_parameters():
        if name != 'key_conv.bias':  # its gradient is zero by construction
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_channels():
    with pytest.raises(ValueError, match=r'CrissCrossAttention: in_channels .* got 4'):
        CrissCrossAttention(4)


def test_autocast_bfloat16_finite():
    layer = CrissCrossAttention(16)
    layer.gamma.scale.data.fill_(0.7)
    x = (torch.randn(2, 16, 9, 11) * 10).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x)
    assert torch.isfinite(out).all()
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()


def test_onnx_export(tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    layer = CrissCrossAttention(16)
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    layer.gamma.scale.data.fill_(0.7)
    layer.eval()
    x = torch.randn(2, 16, 7, 9)
    path = str(tmp_path / 'cca.onnx')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(layer, (x,), path, opset_version=13, dynamo=False,
                          input_names=['x'], output_names=['y'])
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert all(node.domain in ('', 'ai.onnx') for node in model.graph.node)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (y,) = session.run(None, {'x': x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(y), layer(x), rtol=1e-5, atol=1e-5)
