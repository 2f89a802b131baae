"""Loop references and shared helpers of the tests; the library itself never imports this module.

The references are written from the papers' equations (loops over samples, pixels, bases or
scales; convolutions as sums of shifted per-pixel products, BatchNorm from its formula,
softmaxes written out), one definition each, and the tests of :mod:`mmseg_fusion.functional` and
:mod:`mmseg_fusion.layers` compare the fast implementations against them. A reference never
calls the implementation it checks. Every reference computes in float64 (its inputs and the
module's weights are upcast) and returns float64 tensors on its inputs' device; a test of a
float32 output rounds the reference with ``.float()``. References that read a module's weights
take the module (``naive_spatial(x, sa)``), in eval mode: BatchNorm uses its running
statistics.

Also here: :func:`randomise` (random weights and BatchNorm statistics), :func:`with_layout`
(the same values in another memory layout), :func:`tiny_options` (the ``--cfg-options`` of a
tiny CPU training run on the synthetic data), :func:`tiny_ssr_config` (a small
``SSREncoderDecoder``) and :func:`seg_samples` (data samples with labels). The module ships
with the package, as ``torch.testing`` and ``mmengine.testing`` do, and depends on torch, mmseg
and the package's layers only.

Shape shorthand: N batch, C channels, H x W spatial size, T frames, L positions, K bases or
inputs, S scales.
"""
import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import MSCAM, ChannelAttention, SpatialAttention

__all__ = [
    'LAYOUTS', 'dense_criss_cross', 'naive_batch_norm', 'naive_channel', 'naive_conv2d',
    'naive_conv_module', 'naive_criss_cross', 'naive_criss_cross_3d', 'naive_double_attention',
    'naive_em', 'naive_hma', 'naive_mscam', 'naive_progressive', 'naive_softmax_weights',
    'level_inputs', 'naive_spatial', 'naive_ssr', 'randomise', 'seg_samples', 'tiny_options',
    'tiny_ssr_config', 'with_layout'
]

# ------------------------------------------------------------------------------------ helpers
def tiny_ssr_config(**overrides) -> dict:
    """A small ``SSREncoderDecoder`` config: ResNetV1c-18 at 8 channels (D8) + an FCN head.

    Outputs of the backbone: 8, 16, 32, 64 channels; 3 classes; test scales (0.5, 1.0, 1.5);
    the official training scales (0.5, 1.0) and the official, non-terminal SSR fusion.

    Args:
        **overrides: Top-level keys replaced.

    Returns:
        dict: The model config.
    """
    norm = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='SSREncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0., 0., 0.],
                               std=[1., 1., 1.]),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1),
                      norm_cfg=norm),
        decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=8, num_convs=1,
                         num_classes=3, norm_cfg=norm, dropout_ratio=0.0,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        test_cfg=dict(mode='whole', scales=(0.5, 1.0, 1.5)),
        train_scales=(0.5, 1.0),
        fusion=dict(type='SSRScaleFusion', terminal=False),
    )
    cfg.update(overrides)
    return cfg


def level_inputs(channels: Sequence[int], batch: int = 2, h: int = 23, w: int = 29,
                 seed: int = 0) -> List[torch.Tensor]:
    """Random multi-level features, shallowest first, each level half the size (rounded up).

    Args:
        channels (Sequence[int]): Channels of each level.
        batch (int): N. Defaults to 2.
        h (int): Height of level 0. Defaults to 23.
        w (int): Width of level 0. Defaults to 29.
        seed (int): Seed of the global generator (set here). Defaults to 0.

    Returns:
        list[Tensor]: Level ``j`` of shape (N, channels[j], H_j, W_j).
    """
    torch.manual_seed(seed)
    feats = []
    for c in channels:
        feats.append(torch.randn(batch, c, h, w))
        h, w = (h + 1) // 2, (w + 1) // 2
    return feats


def seg_samples(n: int, h: int, w: int, flip: bool = False, num_classes: int = 3) -> list:
    """``n`` SegDataSamples of (h, w) images, random labels in [0, num_classes), no padding.

    Args:
        n (int): Number of samples.
        h (int): Height.
        w (int): Width.
        flip (bool): Mark them as horizontally flipped views. Defaults to False.
        num_classes (int): Classes of the random labels. Defaults to 3.

    Returns:
        list[SegDataSample]: With ``gt_sem_seg`` of shape (1, h, w).
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    out = []
    for _ in range(n):
        s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w), pad_shape=(h, w),
                                        padding_size=[0, 0, 0, 0], flip=flip,
                                        flip_direction='horizontal' if flip else None))
        s.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w)))
        out.append(s)
    return out


#: the memory layouts of :func:`with_layout`
LAYOUTS = ('contiguous', 'channels_last', 'strided', 'transposed')


def with_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout.

    Args:
        t (Tensor): Tensor of shape (N, C, H, W).
        layout (str): One of :data:`LAYOUTS`: ``'contiguous'`` (``t`` itself),
            ``'channels_last'``, ``'strided'`` (every other channel of a bigger tensor) or
            ``'transposed'`` (W-major: the strides of H and W swapped).

    Returns:
        Tensor: A tensor equal to ``t``, of shape (N, C, H, W).
    """
    if layout == 'channels_last':
        return t.contiguous(memory_format=torch.channels_last)
    if layout == 'strided':  # every other channel of a bigger tensor
        return t.repeat_interleave(2, dim=1)[:, ::2]
    if layout == 'transposed':  # W-major: the strides of H and W swapped
        return t.transpose(2, 3).contiguous().transpose(2, 3)
    return t


def randomise(module: nn.Module, seed: int = 0, dtype: Optional[torch.dtype] = None,
              std: float = 0.5) -> nn.Module:
    """Random weights and BatchNorm statistics, in eval mode (BatchNorm uses the statistics).

    Every parameter is drawn from N(0, std^2) in the order of ``module.parameters()``, then
    every :class:`~torch.nn.BatchNorm2d` gets a running mean from N(0, 0.01) and a running
    variance from U[0.5, 1.5), all from one CPU generator seeded with ``seed``.

    Args:
        module (nn.Module): The module, changed in place.
        seed (int): Seed of the generator. Defaults to 0.
        dtype (torch.dtype, optional): Convert the module to this dtype and draw the parameters
            in float64, rounded to it (a float32 and a float64 module of one seed hold the same
            weights up to rounding). Defaults to None: the module's dtype, the parameters drawn
            in it.
        std (float): Standard deviation of the parameters. Defaults to 0.5.

    Returns:
        nn.Module: ``module``, in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    if dtype is not None:
        module = module.to(dtype)
    with torch.no_grad():
        for p in module.parameters():
            draw = torch.float64 if dtype is not None else p.dtype
            p.copy_(torch.randn(p.shape, generator=gen, dtype=draw, device='cpu') * std)
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(
                    torch.randn(m.num_features, generator=gen, device='cpu') * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen, device='cpu') + 0.5)
    return module.eval()


def tiny_options(data_root: str, iters: int = 4, ckpt_interval: Optional[int] = None,
                 crop: int = 64) -> List[str]:
    """``--cfg-options`` shrinking a synthetic-data config to a few CPU iterations.

    The test suite's ``tiny_options`` fixture (``tests/conftest.py``) and
    ``benchmarks/dist_soak.py``.

    Args:
        data_root (str): The synthetic data set.
        iters (int): Training iterations (validation after the last). Defaults to 4.
        ckpt_interval (int, optional): Checkpoint interval. Defaults to None (= ``iters``).
        crop (int): Crop and input size. Defaults to 64.

    Returns:
        list[str]: ``key=value`` options.
    """
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2',
        f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={ckpt_interval or iters}',
        'default_hooks.logger.interval=1',
        f'param_scheduler.0.end={iters}',
        f'model.data_preprocessor.size=({crop},{crop})',
        # the synthetic base pipelines: [load, load_ann, RandomResize, RandomCrop, ...]
        f'train_dataloader.dataset.pipeline.2.scale=({crop},{crop})',
        f'train_dataloader.dataset.pipeline.3.crop_size=({crop},{crop})',
        f'val_dataloader.dataset.pipeline.1.scale=({crop},{crop})',
        f'test_dataloader.dataset.pipeline.1.scale=({crop},{crop})',
        'randomness.seed=0',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return opts


# -------------------------------------------------------------------- convolution, BatchNorm
def naive_conv2d(x: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Zero-padded stride-1 convolution with a square odd kernel, as shifted products.

    ``out[o, y, x] = sum_{c, dy, dx} W[o, c, dy, dx] in[c, y + dy - r, x + dx - r] + b[o]``
    with ``r = k // 2``, one per-pixel (C -> O) product per kernel offset.

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        weight (Tensor): Kernel of shape (O, C, k, k), k odd.
        bias (Tensor, optional): Bias of shape (O, ). Defaults to None.

    Returns:
        Tensor: Float64 output of shape (N, O, H, W).
    """
    x, weight = x.double(), weight.double()
    k = weight.shape[-1]
    r = k // 2
    h, w = x.shape[-2:]
    padded = F.pad(x, (r, r, r, r))
    # (N, O, H, W): the input shifted by (dy, dx), times W[:, :, dy, dx] at every pixel
    out = sum(torch.einsum('nchw,oc->nohw', padded[:, :, dy:dy + h, dx:dx + w],
                           weight[:, :, dy, dx]) for dy in range(k) for dx in range(k))
    return out if bias is None else out + bias.double().view(1, -1, 1, 1)


def naive_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm: ``(x - mean) / sqrt(var + eps) * weight + bias``.

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        bn (nn.BatchNorm2d): The norm, whose running statistics and affine weights are read.

    Returns:
        Tensor: Float64 output of shape (N, C, H, W).
    """
    mean, var, weight, bias = (t.double().view(1, -1, 1, 1) for t in
                               (bn.running_mean, bn.running_var, bn.weight, bn.bias))
    return (x.double() - mean) / torch.sqrt(var + bn.eps) * weight + bias


def naive_conv_module(x: torch.Tensor, m: nn.Module) -> torch.Tensor:
    """An mmcv ``ConvModule`` (conv, optional BatchNorm, optional ReLU) from its parameters.

    Args:
        x (Tensor): Input of shape (N, C, H, W).
        m (mmcv.cnn.ConvModule): A stride-1 module with a square odd kernel, ``k // 2``
            padding, the order conv, norm, act, and a BatchNorm2d norm and a ReLU (if any).

    Returns:
        Tensor: Float64 output of shape (N, O, H, W).
    """
    out = naive_conv2d(x, m.conv.weight, m.conv.bias)
    if m.with_norm:
        if not isinstance(m.norm, nn.BatchNorm2d):
            raise NotImplementedError(f'naive_conv_module: only BatchNorm2d norms, got '
                                      f'{type(m.norm).__name__}')
        out = naive_batch_norm(out, m.norm)
    if m.with_activation:
        if not isinstance(m.activate, nn.ReLU):
            raise NotImplementedError(f'naive_conv_module: only ReLU activations, got '
                                      f'{type(m.activate).__name__}')
        out = out.clamp_min(0)
    return out


# ---------------------------------------------------------------------------------------- AFA
def naive_progressive(att: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Progressive weights ``A_k = a_k prod_{j > k} (1 - a_j)``, every product written out.

    Args:
        att (Sequence[Tensor]): K attention maps a_k of one shape, e.g. (N, 1, H, W).

    Returns:
        list[Tensor]: K float64 weights of that shape.
    """
    weights = []
    for k in range(len(att)):
        w = att[k].double().clone()
        for j in range(k + 1, len(att)):
            w = w * (1 - att[j].double())
        weights.append(w)
    return weights


def naive_spatial(x: torch.Tensor, sa: SpatialAttention, logits: bool = False) -> torch.Tensor:
    """Spatial attention: two conv-BN-ReLU, a 1x1 conv, then the activation.

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        sa (SpatialAttention): The module whose weights and ``activation`` are read.
        logits (bool): Return the map before the activation. Defaults to False.

    Returns:
        Tensor: Float64 map of shape (N, out_channels, H, W).
    """
    out = naive_conv2d(naive_conv_module(naive_conv_module(x, sa.conv), sa.conv_inner),
                       sa.final.weight)
    if logits:
        return out
    return {'sigmoid': torch.sigmoid, 'abs': torch.abs, 'relu': lambda t: t.clamp_min(0),
            None: lambda t: t}[sa.activation](out)


def naive_channel(x: torch.Tensor, ca: ChannelAttention) -> torch.Tensor:
    """Channel attention ``sigmoid(mlp(avg) + mlp(max))`` per sample, pooled by hand.

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        ca (ChannelAttention): The module whose weights are read.

    Returns:
        Tensor: Float64 weights of shape (N, out_channels, 1, 1).
    """
    x = x.double()
    w1, w2 = ca.conv1.conv.weight[:, :, 0, 0].double(), ca.conv2.weight[:, :, 0, 0].double()
    bn = ca.conv1.bn
    out = torch.empty(x.shape[0], w2.shape[0], 1, 1, dtype=torch.float64, device=x.device)
    for n in range(x.shape[0]):
        total = 0
        for pooled in (x[n].flatten(1).mean(1), x[n].flatten(1).max(1).values):
            z = naive_batch_norm((w1 @ pooled).view(1, -1, 1, 1), bn).flatten()
            total = total + w2 @ z.clamp_min(0)
        out[n, :, 0, 0] = torch.sigmoid(total)
    return out


# ------------------------------------------------------------------------------------- MS-CAM
def naive_mscam(x: torch.Tensor, m: MSCAM) -> torch.Tensor:
    """MS-CAM weights ``M(X) = sigmoid(L(X) + G(GAP(X)))``, both branches from their weights.

    Args:
        x (Tensor): Features of shape (N, C, H, W).
        m (MSCAM): The module whose ``local_att`` and ``global_att`` are read.

    Returns:
        Tensor: Float64 weights of shape (N, C, H, W).
    """
    x = x.double()
    local = naive_conv_module(naive_conv_module(x, m.local_att[0]), m.local_att[1])
    pooled = x.mean(dim=(2, 3), keepdim=True)
    glob = naive_conv_module(naive_conv_module(pooled, m.global_att[0]), m.global_att[1])
    return torch.sigmoid(local + glob)


# ------------------------------------------------------------------------ criss-cross attention
def naive_criss_cross(query: torch.Tensor, key: torch.Tensor,
                      value: torch.Tensor) -> torch.Tensor:
    """Criss-cross attention: per pixel, one softmax over its row and its column (itself once).

    Args:
        query (Tensor): Queries of shape (N, C', H, W).
        key (Tensor): Keys of shape (N, C', H, W).
        value (Tensor): Values of shape (N, C, H, W).

    Returns:
        Tensor: Float64 output of shape (N, C, H, W), differentiable in the inputs.
    """
    q, k, v = (t.double() for t in (query, key, value))
    n, _, h, w = q.shape
    out = torch.empty(v.shape, dtype=torch.float64, device=v.device)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                # (C', W + H - 1) and (C, W + H - 1): the row, then the column without (y, x)
                col = [i for i in range(h) if i != y]
                keys = torch.cat([k[b, :, y, :], k[b, :, col, x]], dim=1)
                vals = torch.cat([v[b, :, y, :], v[b, :, col, x]], dim=1)
                out[b, :, y, x] = vals @ torch.softmax(q[b, :, y, x] @ keys, dim=0)
    return out


def naive_criss_cross_3d(query: torch.Tensor, key: torch.Tensor,
                         value: torch.Tensor) -> torch.Tensor:
    """3D criss-cross attention: per position, one softmax over its row, column and time line.

    The position itself is counted once: T + H + W - 2 keys.

    Args:
        query (Tensor): Queries of shape (N, C', T, H, W).
        key (Tensor): Keys of shape (N, C', T, H, W).
        value (Tensor): Values of shape (N, C, T, H, W).

    Returns:
        Tensor: Float64 output of shape (N, C, T, H, W), differentiable in the inputs.
    """
    q, k, v = (t.double() for t in (query, key, value))
    n, _, t, h, w = q.shape
    out = torch.empty(v.shape, dtype=torch.float64, device=v.device)
    for b in range(n):
        for f in range(t):
            for y in range(h):
                for x in range(w):
                    # (C', T + H + W - 2) and (C, T + H + W - 2): the row in frame f, the
                    # column without (y, x), the time line without frame f
                    col = [i for i in range(h) if i != y]
                    times = [s for s in range(t) if s != f]
                    keys = torch.cat([k[b, :, f, y, :], k[b, :, f, col, x],
                                      k[b, :, times, y, x]], dim=1)
                    vals = torch.cat([v[b, :, f, y, :], v[b, :, f, col, x],
                                      v[b, :, times, y, x]], dim=1)
                    out[b, :, f, y, x] = vals @ torch.softmax(q[b, :, f, y, x] @ keys, dim=0)
    return out


def dense_criss_cross(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Criss-cross attention as a full attention over the H*W keys masked to the criss-cross.

    The mask keeps the pixel's row and column (a set: the pixel itself counted once); another
    formulation than :func:`naive_criss_cross`, for the layer tests.

    Args:
        q (Tensor): Queries of shape (N, C', H, W).
        k (Tensor): Keys of shape (N, C', H, W).
        v (Tensor): Values of shape (N, C, H, W).

    Returns:
        Tensor: Float64 output of shape (N, C, H, W).
    """
    q, k, v = (t.double() for t in (q, k, v))
    n, c, h, w = v.shape
    rows = torch.arange(h, device=v.device).repeat_interleave(w)
    cols = torch.arange(w, device=v.device).repeat(h)
    # (H*W, H*W): key i is in the criss-cross of query u
    same = (rows[:, None] == rows[None]) | (cols[:, None] == cols[None])
    # (N, H*W, H*W)
    energy = torch.einsum('ncu,nci->nui', q.flatten(2), k.flatten(2))
    attn = energy.masked_fill(~same, float('-inf')).softmax(dim=-1)
    # (N, C, H*W) -> (N, C, H, W)
    return torch.einsum('nui,nci->ncu', attn, v.flatten(2)).view(n, c, h, w)


# --------------------------------------------------------------------------- double attention
def naive_double_attention(a: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Double attention ``G = A softmax_L(B)^T``, ``Z = G softmax_n(V)``, one at a time.

    One global descriptor per gathering map (softmax of B over the L positions), then one
    distribution per position (softmax of V over the n maps).

    Args:
        a (Tensor): Features A of shape (N, m, ...) (e.g. (N, m, H, W) or (N, m, T, H, W)).
        b (Tensor): Gathering logits B of shape (N, n, ...), the spatial size of ``a``.
        v (Tensor): Distribution logits V of shape (N, n, ...), the spatial size of ``a``.

    Returns:
        Tensor: Float64 output Z of shape (N, m, L), L the product of the spatial sizes.
    """
    a, b, v = (t.double().flatten(2) for t in (a, b, v))
    out = torch.empty(a.shape, dtype=torch.float64, device=a.device)
    for s in range(a.shape[0]):
        gather = torch.exp(b[s]) / torch.exp(b[s]).sum(dim=1, keepdim=True)
        descriptors = [(a[s] * gather[j]).sum(dim=1) for j in range(b.shape[1])]
        for p in range(a.shape[2]):
            mix = torch.exp(v[s, :, p]) / torch.exp(v[s, :, p]).sum()
            out[s, :, p] = sum(mix[j] * descriptors[j] for j in range(b.shape[1]))
    return out


# ------------------------------------------------------------------------------- EM attention
def naive_em(feats: torch.Tensor, bases: torch.Tensor, num_stages: int,
             official: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """EM iterations from the equations, one sample and one basis at a time.

    E-step ``Z = softmax_K(X^T mu)``; M-step ``mu_k = X z_k / sum(z_k)`` and an l2
    normalisation of every basis; ``official``: ``1e-6 +`` denominators, else
    ``max(., 1e-12)`` ones (:func:`torch.nn.functional.normalize`).

    Args:
        feats (Tensor): Features X of shape (N, C, L).
        bases (Tensor): Initial bases mu of shape (N, C, K) or (1, C, K) (shared).
        num_stages (int): Number of EM iterations, >= 1.
        official (bool): The official epsilons.

    Returns:
        tuple[Tensor, Tensor]: Float64 final bases (N, C, K) and responsibilities (N, L, K).
    """
    eps = 1e-6 if official else 1e-12
    out_bases, out_resp = [], []
    for i in range(feats.shape[0]):
        x = feats[i].double()
        mu = bases[min(i, bases.shape[0] - 1)].double()
        for _ in range(num_stages):
            logits = x.t() @ mu  # (L, K)
            z = torch.exp(logits - logits.amax(1, keepdim=True))
            z = z / z.sum(1, keepdim=True)
            cols = []
            for j in range(mu.shape[1]):
                weight = (z[:, j] / (eps + z[:, j].sum()) if official
                          else z[:, j] / max(z[:, j].sum(), eps))
                col = x @ weight
                cols.append(col / (eps + col.norm()) if official else col / max(col.norm(), eps))
            mu = torch.stack(cols, dim=1)
        out_bases.append(mu)
        out_resp.append(z)
    return torch.stack(out_bases), torch.stack(out_resp)


# ------------------------------------------------------------------------------- scale fusion
def naive_ssr(densities: Sequence[torch.Tensor], phi: Callable[[float], float],
              terminal: bool) -> List[torch.Tensor]:
    """SSR weights ``a_i = (1 - exp(-phi(y_i))) prod_{j<i} exp(-phi(y_j))``, pixel by pixel.

    Computed in Python floats; with ``terminal`` the last (finest) scale takes the remaining
    transmittance ``prod_{j<S} exp(-phi(y_j))``.

    Args:
        densities (Sequence[Tensor]): S densities y_i of shape (N, 1, h, w), coarsest first.
        phi (Callable[[float], float]): The non-negative map of a density.
        terminal (bool): Give the last scale the remaining transmittance.

    Returns:
        list[Tensor]: S float64 weights of shape (N, 1, h, w).
    """
    n, _, h, w = densities[0].shape
    out = [torch.zeros(n, 1, h, w, dtype=torch.float64, device=densities[0].device)
           for _ in densities]
    for b in range(n):
        for r in range(h):
            for c in range(w):
                trans = 1.0
                for i, y in enumerate(densities):
                    if terminal and i == len(densities) - 1:
                        out[i][b, 0, r, c] = trans
                        break
                    v = phi(float(y[b, 0, r, c]))
                    out[i][b, 0, r, c] = (1 - math.exp(-v)) * trans
                    trans *= math.exp(-v)
    return out


def naive_hma(logits: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """NVIDIA's HMA weights ``sigma_i prod_{j<i} (1 - sigma_j)`` from the sigmoids.

    The last (finest) scale takes ``prod_{j<S} (1 - sigma_j)`` (its own attention is unused).

    Args:
        logits (Sequence[Tensor]): S attention logits of shape (N, 1, h, w), coarsest first.

    Returns:
        list[Tensor]: S float64 weights of shape (N, 1, h, w).
    """
    sig = [torch.sigmoid(t.double()) for t in logits]
    weights, trans = [], torch.ones_like(sig[0])
    for i, s in enumerate(sig):
        weights.append(trans.clone() if i == len(sig) - 1 else s * trans)
        trans = trans * (1 - s)
    return weights


def naive_softmax_weights(scores: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Softmax over scales ``exp(y_i - max) / sum_j exp(y_j - max)`` per pixel.

    Args:
        scores (Sequence[Tensor]): S scores of shape (N, 1, h, w).

    Returns:
        list[Tensor]: S float64 weights of shape (N, 1, h, w).
    """
    s = [t.double() for t in scores]
    top = torch.stack(s).amax(dim=0)
    total = sum(torch.exp(t - top) for t in s)
    return [torch.exp(t - top) / total for t in s]
