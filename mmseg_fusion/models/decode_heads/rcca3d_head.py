"""CCNet decode head for clips: recurrent 3D criss-cross attention over consecutive frames.

Paper: Huang, Wang, Wei, Huang, Shi, Liu, Huang, "CCNet: Criss-Cross Attention for Semantic
Segmentation", TPAMI 2020, https://arxiv.org/abs/1811.11721 (3D criss-cross attention for
video segmentation).

mmseg has no clip pipeline; the one used here is the least intrusive: a batch of ``B * T``
frames in which every ``clip_length = T`` consecutive samples are consecutive frames of one
video (what :class:`~mmseg_fusion.datasets.ClipSampler` yields with a dataloader
``batch_size`` that is a multiple of ``clip_length``). Backbone, neck, losses and metrics see
ordinary frames; only this head regroups its features into (B, C, T, H, W) clips for the
attention and back. Every other part is :class:`~mmseg_fusion.models.decode_heads.RCCAHead`.
"""
import torch
from mmseg.registry import MODELS

from ...layers.criss_cross_3d import CrissCrossAttention3d
from ...utils.checks import check_int
from .rcca_head import RCCAHead

__all__ = ['RCCA3DHead']


@MODELS.register_module()
class RCCA3DHead(RCCAHead):
    """Recurrent 3D criss-cross attention head of CCNet (TPAMI) for clips of frames.

    ``x -> convs.0 (3x3, per frame) -> cca3d x recurrence over each clip (shared weights)
    -> convs.1 (3x3) -> [conv_cat] -> cls_seg``. Each position attends to its row and column in
    its frame and to the same pixel in the other frames of its clip.

    Weight compatibility: the attention is
    :class:`~mmseg_fusion.layers.CrissCrossAttention3d`, whose parameters are those of the 2D
    layer, so the state dict is exactly :class:`RCCAHead`'s (and mmseg's ``CCHead``'s): a 2D
    checkpoint loads with ``strict=True`` and ``clip_length`` adds no parameters. With
    ``clip_length=1`` the outputs are bit-identical to :class:`RCCAHead`'s.

    In 3D, R = 3 steps are needed for every position to reach every other (time line, then
    row, then column; our notes record R = 3 for the TPAMI video experiments, not re-checked
    against the paper text). The default stays R = 2, the 2D default under which 2D
    checkpoints were trained; set ``recurrence=3`` for full 3D reach.

    Args:
        clip_length (int): Frames T per clip. The batch must hold ``B * clip_length`` frames,
            each run of ``clip_length`` consecutive samples one clip in frame order.
            Defaults to 4.
        **kwargs: Arguments of :class:`RCCAHead` (``recurrence``, ``in_channels``,
            ``channels``, ``num_classes``, ``loss_decode`` ...).
    """

    def __init__(self, clip_length: int = 4, **kwargs) -> None:
        check_int('RCCA3DHead', 'clip_length', clip_length)
        super().__init__(**kwargs)
        self.clip_length = clip_length
        self.cca = CrissCrossAttention3d(self.channels)

    def _attend(self, feats: torch.Tensor) -> torch.Tensor:
        """Recurrent 3D criss-cross attention over the clips of the batch.

        Args:
            feats (Tensor): Features of shape (B * T, channels, H, W), T = ``clip_length``.

        Returns:
            Tensor: Attended features, same shape.
        """
        n, c, h, w = feats.shape
        t = self.clip_length
        if n % t:
            raise ValueError(
                f'RCCA3DHead: the batch holds {n} frames, not a multiple of clip_length={t}; '
                'feed whole clips of consecutive frames (ClipSampler with a dataloader '
                'batch_size that is a multiple of clip_length; with mmseg.apis, a list of '
                'clip_length frames, or MMSegInferencer with batch_size=clip_length)')
        # (B * T, C, H, W) -> (B, T, C, H, W) -> (B, C, T, H, W) view
        clips = feats.view(n // t, t, c, h, w).transpose(1, 2)
        for _ in range(self.recurrence):
            clips = self.cca(clips)
        # (B, C, T, H, W) -> (B, T, C, H, W) -> (B * T, C, H, W)
        return clips.transpose(1, 2).reshape(n, c, h, w)
