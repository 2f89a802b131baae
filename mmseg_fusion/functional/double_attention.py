"""Double attention (A²): second-order attention pooling, then attention distribution.

Paper: Chen, Kalantidis, Li, Yan, Feng, "A²-Nets: Double Attention Networks", NeurIPS 2018,
https://arxiv.org/abs/1810.11579. The authors released no code; the equations were checked
against the paper's description (gathering: softmax of each attention map over all positions;
distribution: softmax over the descriptors at each position) and against the reimplementation
gjylt/DoubleAttentionNet (read, not copied). Some popular reimplementations apply the gathering
softmax over the maps instead of over the positions; that is not what the paper describes.

Shape shorthand: N batch, m feature channels (descriptor size), n attention maps (number of
descriptors), ``*`` any spatial dimensions (H, W for images, T, H, W for videos), L their
product.
"""
import torch

__all__ = ['double_attention']


def double_attention(a: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Gather ``n`` global descriptors with attention maps ``b``, distribute them with ``v``.

    ``G = A softmax_L(B)^T`` (the n global descriptors, each an attention-weighted sum of the
    features over all L positions) and ``Z = G softmax_n(V)`` (each position receives a convex
    combination of the descriptors). No projection, no residual.

    Args:
        a (Tensor): Features A of shape (N, m, *).
        b (Tensor): Gathering attention logits B of shape (N, n, *), normalised here over all
            positions of each map.
        v (Tensor): Distribution attention logits V of shape (N, n, *), normalised here over
            the n maps at each position.

    Returns:
        Tensor: Z of shape (N, m, *).
    """
    if a.dim() < 3 or b.shape != v.shape or a.shape[0] != b.shape[0] \
            or a.shape[2:] != b.shape[2:]:
        raise ValueError('double_attention: expected a (N, m, *), b and v (N, n, *) with the '
                         f'same N and spatial size, got {tuple(a.shape)}, {tuple(b.shape)}, '
                         f'{tuple(v.shape)}')
    # (N, m, L), (N, n, L), (N, n, L)
    a_flat, b_flat, v_flat = (t.flatten(2) for t in (a, b, v))
    # (N, m, n): second-order attention pooling over all L positions
    descriptors = torch.einsum('nml,nkl->nmk', a_flat, b_flat.softmax(dim=2))
    # (N, m, L): each position mixes the n descriptors with its own weights
    z = torch.einsum('nmk,nkl->nml', descriptors, v_flat.softmax(dim=1))
    # (N, m, L) -> (N, m, *)
    return z.reshape(a.shape)
