"""CategoryConsistentLoss: zero when clustered, positive otherwise, pulls features to centres."""
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_fusion  # noqa: F401  (registers the loss)
from mmseg_fusion.models.losses import CategoryConsistentLoss, category_consistent_terms


def clustered(centres, label, noise=0.0, seed=0):
    """(1, D, H, W) features equal to their class centre (plus noise)."""
    gen = torch.Generator().manual_seed(seed)
    feats = centres[label.clamp(max=len(centres) - 1)].permute(0, 3, 1, 2).clone()
    return feats + noise * torch.randn(feats.shape, generator=gen)


LABEL = torch.tensor([[[0, 0, 1, 1, 2],
                       [0, 0, 1, 255, 2],
                       [2, 2, 1, 1, 2]]])
CENTRES = torch.tensor([[0., 0., 0.], [4., 0., 0.], [0., 4., 0.]])  # pairwise >= 4 > 2 delta_d


def naive_terms(feats, label, delta_v=0.5, delta_d=1.5, ignore_index=255):
    """Per-image loop over classes and pixels, from the equations."""
    per_image = []
    for f, lab in zip(feats, label):
        classes = [c for c in lab.unique().tolist() if c != ignore_index]
        if not classes:
            continue
        mus = {c: f[:, lab == c].mean(dim=1) for c in classes}
        l_var = 0.
        for c in classes:
            terms = []
            for h_i in f[:, lab == c].t():
                d = torch.linalg.vector_norm(mus[c] - h_i)
                if d <= delta_v:
                    terms.append(d * 0)
                elif d <= delta_d:
                    terms.append((d - delta_v) ** 2)
                else:
                    terms.append(d - delta_d + (delta_d - delta_v) ** 2)
            l_var = l_var + torch.stack(terms).mean()
        l_var = l_var / len(classes)
        l_dis = torch.zeros(())
        for a in classes:
            for b in classes:
                if a != b:
                    dist = torch.linalg.vector_norm(mus[a] - mus[b])
                    l_dis = l_dis + torch.clamp(2 * delta_d - dist, min=0) ** 2
        if len(classes) > 1:
            l_dis = l_dis / (len(classes) * (len(classes) - 1))
        l_reg = sum(torch.linalg.vector_norm(mus[c]) for c in classes) / len(classes)
        per_image.append(torch.stack([l_var, l_dis, l_reg]))
    return torch.stack(per_image).mean(dim=0)


def test_zero_for_perfectly_clustered_features():
    feats = clustered(CENTRES, LABEL)
    l_var, l_dis, l_reg = category_consistent_terms(feats, LABEL)
    assert l_var == 0 and l_dis == 0
    torch.testing.assert_close(l_reg, torch.tensor(8. / 3))
    loss = CategoryConsistentLoss()(feats, LABEL)
    torch.testing.assert_close(loss, 0.001 * l_reg)
    assert CategoryConsistentLoss(gamma=0.)(feats, LABEL) == 0
    # within delta_v of the centre still costs nothing
    assert CategoryConsistentLoss(gamma=0.)(clustered(CENTRES, LABEL, noise=0.05), LABEL) == 0


def test_positive_otherwise_and_matches_naive():
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 3, 3, 5, generator=gen) * 2
    label = torch.stack([LABEL[0], LABEL[0].flip(-1)])
    terms = torch.stack(category_consistent_terms(feats, label))
    torch.testing.assert_close(terms, naive_terms(feats, label), rtol=1e-5, atol=1e-5)
    assert terms[0] > 0
    # centres too close: the distance term is positive
    close = clustered(CENTRES * 0.2, LABEL)
    assert category_consistent_terms(close, LABEL)[1] > 0


def test_gradient_pulls_features_towards_their_centre():
    feats = clustered(CENTRES, LABEL)
    feats[0, :, 0, 0] += torch.tensor([1.0, 0.5, 0.0])  # a class-0 pixel pushed away
    feats.requires_grad_()
    CategoryConsistentLoss(gamma=0.)(feats, LABEL).backward()
    centre = feats.detach()[0, :, LABEL[0] == 0].mean(dim=1)
    step = -feats.grad[0, :, 0, 0]
    assert torch.dot(step, centre - feats.detach()[0, :, 0, 0]) > 0
    # one gradient step reduces the loss
    with torch.no_grad():
        moved = feats - 0.1 * feats.grad
    assert CategoryConsistentLoss(gamma=0.)(moved, LABEL) < \
        CategoryConsistentLoss(gamma=0.)(feats.detach(), LABEL)


def test_ignore_index_and_absent_classes_give_no_nan():
    feats = torch.randn(2, 4, 3, 5, requires_grad=True)
    label = LABEL.repeat(2, 1, 1)
    label[1] = 255                       # an image without any labelled pixel
    ignored = feats.detach().clone()
    ignored[0, :, 1, 3] = 1e6            # an ignored pixel does not count
    loss_fn = CategoryConsistentLoss()
    a = loss_fn(feats, label)
    b = loss_fn(ignored, label)
    assert torch.isfinite(a)
    torch.testing.assert_close(a.detach(), b)
    # averaged over the one labelled image, not over both
    torch.testing.assert_close(a.detach(), loss_fn(feats[:1].detach(), label[:1]))
    a.backward()
    assert torch.isfinite(feats.grad).all()
    # a class with a single pixel (distance 0 to its centre) and coincident centres
    one = torch.zeros(1, 2, 1, 2, requires_grad=True)
    loss = loss_fn(one, torch.tensor([[[0, 1]]]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(one.grad).all()
    # nothing labelled at all
    empty = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = loss_fn(empty, torch.full((1, 2, 2), 255))
    loss.backward()
    assert loss == 0 and torch.isfinite(empty.grad).all()


def test_registered_and_arguments_checked():
    loss = MODELS.build(dict(type='CategoryConsistentLoss', loss_weight=2.0))
    assert isinstance(loss, CategoryConsistentLoss) and loss.loss_name == 'loss_ccl'
    with pytest.raises(ValueError, match='CategoryConsistentLoss: delta_v and delta_d'):
        CategoryConsistentLoss(delta_v=2.0, delta_d=1.0)
    with pytest.raises(ValueError, match='CategoryConsistentLoss: gamma must be >= 0'):
        CategoryConsistentLoss(gamma=-1.)
    with pytest.raises(ValueError, match='label must have shape'):
        loss(torch.randn(1, 2, 3, 4), torch.zeros(1, 3, 5, dtype=torch.long))
