import pytest
import torch

from mmseg_fusion.layers import EMAttention, em_iterations
from mmseg_fusion.layers.em_attention import check_em_arguments, l2_normalize_bases
from mmseg_fusion.testing import naive_em


@pytest.mark.parametrize('official', [False, True])
@pytest.mark.parametrize('num_stages', [1, 3])
def test_em_iterations_match_naive_reference(official, num_stages):
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 7 * 3)
    bases = l2_normalize_bases(torch.randn(1, 5, 4))
    got_bases, got_resp = em_iterations(feats, bases, num_stages, official=official)
    ref_bases, ref_resp = (t.float() for t in naive_em(feats, bases, num_stages, official))
    assert got_bases.shape == (2, 5, 4)
    assert got_resp.shape == (2, 21, 4)
    torch.testing.assert_close(got_bases, ref_bases, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_resp, ref_resp, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got_bases.norm(dim=1), torch.ones(2, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_resp.sum(dim=2), torch.ones(2, 21))


def test_em_iterations_carry_no_gradient():
    feats = torch.randn(1, 3, 10, requires_grad=True)
    bases, resp = em_iterations(feats, l2_normalize_bases(torch.randn(1, 3, 2)), 2)
    assert not bases.requires_grad and not resp.requires_grad


def test_official_normalisation_differs_only_by_epsilon():
    x = torch.tensor([[[3.0], [4.0]]])
    torch.testing.assert_close(l2_normalize_bases(x), torch.tensor([[[0.6], [0.8]]]))
    torch.testing.assert_close(l2_normalize_bases(x, official=True),
                               torch.tensor([[[3.0 / (5 + 1e-6)], [4.0 / (5 + 1e-6)]]]))
    zero = torch.zeros(1, 2, 1)
    assert torch.equal(l2_normalize_bases(zero), zero)
    assert torch.equal(l2_normalize_bases(zero, official=True), zero)


def test_module_bases_buffer_and_reconstruction_shape():
    torch.manual_seed(0)
    unit = EMAttention(6, num_bases=4, num_stages=2)
    assert list(unit.state_dict()) == ['bases']
    assert unit.bases.shape == (1, 6, 4)
    torch.testing.assert_close(unit.bases.norm(dim=1), torch.ones(1, 4))
    feats = torch.randn(2, 6, 23, 29, requires_grad=True)
    recon = unit.eval()(feats)
    assert recon.shape == (2, 6, 23, 29)
    assert not recon.requires_grad
    bases, resp = em_iterations(feats.reshape(2, 6, -1), unit.bases, 2)
    torch.testing.assert_close(recon, (bases @ resp.transpose(1, 2)).reshape(2, 6, 23, 29))


@pytest.mark.parametrize('official', [False, True])
def test_moving_average_in_training_only(official):
    torch.manual_seed(0)
    unit = EMAttention(5, num_bases=3, num_stages=2, momentum=0.25, official=official)
    feats = torch.randn(3, 5, 7, 9)
    before = unit.bases.clone()

    unit.eval()(feats)
    assert torch.equal(unit.bases, before)

    unit.train()(feats)
    final, _ = em_iterations(feats.reshape(3, 5, -1), before, 2, official=official)
    mean = final.mean(dim=0, keepdim=True)
    if not official:
        mean = mean / mean.norm(dim=1, keepdim=True)
    torch.testing.assert_close(unit.bases, 0.75 * before + 0.25 * mean)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_bases=0), 'EMAttention: num_bases must be an int >= 1, got 0'),
    (dict(num_bases=2.5), 'num_bases must be an int >= 1, got 2.5'),
    (dict(num_stages=0), 'EMAttention: num_stages must be an int >= 1, got 0'),
    (dict(momentum=1.5), r'momentum must be a float in \[0, 1\].*got 1.5'),
    (dict(momentum=-0.1), r'got -0.1'),
    (dict(momentum='0.1'), r"got '0.1'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EMAttention(4, **kwargs)


@pytest.mark.parametrize('channels', [0, -4, 2.0])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match=rf'EMAttention: channels must be an int >= 1, '
                                         rf'got {channels!r}'):
        EMAttention(channels)


def test_check_names_the_component():
    with pytest.raises(ValueError, match='Foo: num_stages'):
        check_em_arguments('Foo', 1, -1, 0.1)
    with pytest.raises(ValueError, match='em_iterations: num_stages'):
        em_iterations(torch.randn(1, 2, 3), torch.randn(1, 2, 2), 0)
