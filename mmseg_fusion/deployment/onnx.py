"""ONNX export of a segmentor's whole-image inference, SSR multi-scale fusion included.

Shape shorthand: N batch, C classes, H x W input size, S scales.

:class:`SegmentorExportWrapper` turns a segmentor into one function from normalised images
(N, 3, H, W) (what ``SegDataPreProcessor`` gives: BGR->RGB, mean/std applied) to the logits
(N, C, H, W) and the label map (N, H, W). It calls the segmentor's own inference code: a plain
:class:`~mmseg.models.EncoderDecoder` runs ``encode_decode``; an
:class:`~mmseg_fusion.models.SSREncoderDecoder` runs the multi-scale fusion that ``predict``
runs (its density path and :mod:`mmseg_fusion.functional.scale_fusion`) over ``test_cfg.scales``
or the given scales, with the optional flip average. Nothing of the fusion is re-implemented
here, so the exported graph computes what ``predict`` computes.

Exporter: the TorchScript exporter, ``torch.onnx.export(..., dynamo=False)``. In torch 2.13
the default is the dynamo exporter (``dynamo=True``, needs ``onnxscript``, writes the weights
into a separate ``.data`` file by default). With dynamic height and width it specialises sizes
computed by Python arithmetic (``int(round(h * scale))``) to their export-time values without
an error: for an ``SSREncoderDecoder`` the graph's input came out static (onnxruntime rejects
any other size; checked with onnxscript 0.7.2), and a module that resizes to such a size kept
a dynamic input but a constant intermediate size, wrong at other sizes. Single-scale models
exported dynamically with it matched. The TorchScript tracer records size arithmetic on traced sizes
(:func:`mmseg_fusion.utils.scaled_size`), and the components of this project record their
size-dependent resizes while traced (:func:`mmseg_fusion.utils.is_tracing`), so one graph
serves every input size; :func:`verify_onnx` checks that at two sizes.

:func:`export_onnx` writes atomically (:class:`~mmseg_fusion.utils.atomic_io.AtomicFile`): the
graph is exported to a temporary file next to the target, checked with ``onnx.checker`` and
(optionally) verified against PyTorch in onnxruntime, and only then moved into place; on any
failure nothing is written.
"""
import os
import os.path as osp
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder

from ..models.segmentors import SSREncoderDecoder
from ..models.utils.scales import check_scales
from ..utils.atomic_io import AtomicFile
from ..utils.quiet_init import init_weights_quietly

__all__ = [
    'ExportError', 'SegmentorExportWrapper', 'build_export_model', 'export_onnx',
    'load_verify_images', 'onnx_session', 'random_verify_inputs', 'verify_onnx'
]

#: names of the graph's input and outputs
INPUT_NAME = 'input'
OUTPUT_NAMES = ('logits', 'labels')


class ExportError(RuntimeError):
    """An export or its verification failed; nothing was written."""


class SegmentorExportWrapper(nn.Module):
    """Whole-image inference of a segmentor: normalised images -> (logits, labels).

    Args:
        segmentor (EncoderDecoder): An ``EncoderDecoder`` or ``SSREncoderDecoder`` in
            ``whole`` test mode (``test_cfg.mode``), on the CPU, in eval mode.
        scales (Sequence[float], optional): Scales fused by an ``SSREncoderDecoder``
            (positive, ascending, containing 1.0). Defaults to None: its ``test_cfg.scales``.
            A plain ``EncoderDecoder`` accepts only None or ``(1.0,)``.
        flip (bool): Also run the horizontally flipped image and average the (fused) logits
            with the un-flipped result, as ``SSREncoderDecoder.predict`` with
            ``test_cfg.flip=True``. Defaults to False.

    Returns of :meth:`forward`: logits (N, C, H, W) in the input's dtype and labels (N, H, W)
    int64 (the argmax over C; for C = 1 the sigmoid thresholded at the decode head's
    ``threshold``, as mmseg's ``postprocess_result``).
    """

    def __init__(self, segmentor: EncoderDecoder, scales: Optional[Sequence[float]] = None,
                 flip: bool = False) -> None:
        super().__init__()
        name = type(self).__name__
        if not isinstance(segmentor, EncoderDecoder):
            raise TypeError(f'{name}: segmentor must be an EncoderDecoder or '
                            f'SSREncoderDecoder, got {type(segmentor).__name__}')
        test_cfg = segmentor.test_cfg or {}
        mode = test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(f"{name}: the segmentor's test_cfg.mode must be 'whole' (the "
                             f'exported inference runs on the whole image), got {mode!r}; '
                             'build_export_model switches it')
        self.segmentor = segmentor
        self.is_ssr = isinstance(segmentor, SSREncoderDecoder)
        if self.is_ssr:
            self.scales = check_scales(test_cfg['scales'] if scales is None else scales,
                                       'scales', owner=name)
        else:
            if scales is not None and tuple(float(s) for s in scales) != (1.0, ):
                raise ValueError(f'{name}: scales other than (1.0,) need an SSREncoderDecoder '
                                 f'(a learned multi-scale fusion); {type(segmentor).__name__} '
                                 f'exports one scale, got scales={tuple(scales)!r}')
            self.scales = (1.0, )
        self.flip = bool(flip)
        # inference only: the exporter restores this mode after tracing
        self.eval()

    def _single_scale(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) of a plain ``EncoderDecoder`` (its ``encode_decode``)."""
        # a torch.Size img_shape: the logits are resized to the input's (traced) size
        metas = [dict(img_shape=inputs.shape[2:])] * inputs.shape[0]
        return self.segmentor.encode_decode(inputs, metas)

    def labels(self, logits: torch.Tensor) -> torch.Tensor:
        """Label map (N, H, W) int64 of logits (N, C, H, W), as ``postprocess_result``."""
        if logits.shape[1] > 1:
            return logits.argmax(dim=1)
        threshold = self.segmentor.decode_head.threshold
        return (logits.sigmoid() > threshold).squeeze(1).to(torch.int64)

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Fused logits and labels of normalised images.

        Args:
            inputs (Tensor): Normalised images (N, 3, H, W).

        Returns:
            tuple[Tensor, Tensor]: Logits (N, C, H, W) and labels (N, H, W).
        """
        if self.is_ssr:
            # SSREncoderDecoder.predict's own fusion over the scales (and flips)
            logits = self.segmentor.multiscale_logits(inputs, self.scales, self.flip)[0]
        else:
            logits = self._single_scale(inputs)
            if self.flip:
                flipped = self._single_scale(inputs.flip(-1)).flip(-1)
                logits = (logits + flipped) / 2
        return logits, self.labels(logits)


def build_export_model(config: str, checkpoint: Optional[str] = None,
                       cfg_options: Optional[dict] = None) -> EncoderDecoder:
    """Build a config's segmentor for export: whole test mode, weights loaded, eval, CPU.

    ``SyncBN`` layers become ``BatchNorm`` (mmengine's ``revert_sync_batchnorm``).

    Args:
        config (str): Path of an mmseg config (with ``custom_imports`` of mmseg_fusion).
        checkpoint (str, optional): Checkpoint loaded strictly (``state_dict``), through the
            safe loader of :mod:`mmseg_fusion.engine`. Defaults to None: random weights
            (``init_weights``), e.g. for a latency benchmark.
        cfg_options (dict, optional): Config overrides, as ``--cfg-options`` gives them.
            Defaults to None.

    Returns:
        EncoderDecoder: The segmentor.

    Raises:
        ExportError: The checkpoint does not load strictly into the config's model.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint

    from ..converters.common import build_target_model

    if not osp.isfile(config):
        raise FileNotFoundError(f'build_export_model: config {config!r} does not exist')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'build_export_model: checkpoint {checkpoint!r} does not exist')
    options = dict(cfg_options or {})
    options['model.test_cfg.mode'] = 'whole'
    model = build_target_model(config, options)
    if checkpoint is None:
        init_weights_quietly(model)
    else:
        try:
            load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                            logger='silent')
        except RuntimeError as err:  # strict load: missing, unexpected or mis-shaped keys
            detail = ' '.join(str(err).split())[:600]
            raise ExportError(f'build_export_model: checkpoint {checkpoint!r} does not fit the '
                              f'model of {config!r}: {detail}') from None
    model = revert_sync_batchnorm(model)
    return model.cpu().eval()


def _dynamic_axes(dynamic: bool) -> Optional[Dict[str, Dict[int, str]]]:
    if not dynamic:
        return None
    image = {0: 'batch', 2: 'height', 3: 'width'}
    return {INPUT_NAME: image, OUTPUT_NAMES[0]: image,
            OUTPUT_NAMES[1]: {0: 'batch', 1: 'height', 2: 'width'}}


def _check_shape(shape: Sequence[int], name: str) -> Tuple[int, int]:
    ok = (len(shape) == 2 and all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                                  for s in shape))
    if not ok:
        raise ValueError(f'{name}: shape must be two positive ints (H, W), got {shape!r}')
    return int(shape[0]), int(shape[1])


def onnx_session(path: str, threads: Optional[int] = None):
    """An onnxruntime CPU session of an ONNX file.

    Args:
        path (str): The ONNX file.
        threads (int, optional): Intra-op threads. Defaults to None (onnxruntime's default).

    Returns:
        onnxruntime.InferenceSession: The session.
    """
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=options,
                                providers=['CPUExecutionProvider'])


def random_verify_inputs(shape: Sequence[int], dynamic: bool, seed: int = 0,
                         batch: int = 1) -> List[torch.Tensor]:
    """Two random normalised inputs: at ``shape`` and, for a dynamic graph, at an odd size.

    The second size is ``(3 * H // 4) | 1, (3 * W // 4) | 1`` (odd) for a dynamic graph; a
    static graph accepts only ``shape``, so both inputs have it (different values).

    Args:
        shape (Sequence[int]): (H, W) of the export.
        dynamic (bool): Whether the graph has dynamic height and width.
        seed (int): Seed of the generator. Defaults to 0.
        batch (int): Batch size N. Defaults to 1.

    Returns:
        list[Tensor]: Two tensors (N, 3, H_i, W_i) drawn from N(0, 1).
    """
    h, w = _check_shape(shape, 'random_verify_inputs')
    gen = torch.Generator().manual_seed(seed)
    sizes = [(h, w), ((3 * h // 4) | 1, (3 * w // 4) | 1) if dynamic else (h, w)]
    return [torch.randn(batch, 3, *size, generator=gen) for size in sizes]


def load_verify_images(paths: Sequence[str], segmentor: EncoderDecoder,
                       shape: Optional[Sequence[int]] = None) -> List[torch.Tensor]:
    """Images read from files and normalised by the segmentor's data preprocessor.

    Args:
        paths (Sequence[str]): Image files (read by ``mmcv.imread``, BGR).
        segmentor (EncoderDecoder): Its ``data_preprocessor`` normalises (and, as configured,
            converts BGR to RGB).
        shape (Sequence[int], optional): Resize every image to (H, W) first (bilinear; a
            static graph accepts only its export size). Defaults to None (native size).

    Returns:
        list[Tensor]: One normalised tensor (1, 3, H_i, W_i) per image.
    """
    import mmcv
    out = []
    for path in paths:
        if not osp.isfile(path):
            raise FileNotFoundError(f'load_verify_images: image {path!r} does not exist')
        img = mmcv.imread(path)
        if img is None:
            raise ValueError(f'load_verify_images: {path!r} is not an image mmcv can read')
        if shape is not None:
            h, w = _check_shape(shape, 'load_verify_images')
            img = mmcv.imresize(img, (w, h), interpolation='bilinear')
        # (3, H, W) uint8, as PackSegInputs gives it
        tensor = torch.from_numpy(img.transpose(2, 0, 1).copy())
        data = segmentor.data_preprocessor(dict(inputs=[tensor]), training=False)
        out.append(data['inputs'].float())
    return out


def _label_errors(ref_logits: torch.Tensor, ref_labels: torch.Tensor,
                  ort_labels: torch.Tensor, tol: float, threshold: float) -> int:
    """Pixels whose labels differ although PyTorch's logits are no near-tie there.

    With every onnxruntime logit within ``tol`` of PyTorch's, a label can only change where
    PyTorch's logits of the two labels are within ``2 * tol`` (for C = 1: the logit within
    ``2 * tol`` of the threshold's logit).
    """
    differ = ort_labels != ref_labels
    if not differ.any():
        return 0
    if ref_logits.shape[1] > 1:
        top = ref_logits.gather(1, ref_labels.unsqueeze(1))
        other = ref_logits.gather(1, ort_labels.clamp(0, ref_logits.shape[1] - 1).unsqueeze(1))
        margin = (top - other).squeeze(1)
    else:
        threshold = min(max(threshold, 1e-12), 1 - 1e-12)
        margin = (ref_logits.squeeze(1) - torch.logit(torch.tensor(threshold))).abs()
    return int((differ & (margin > 2 * tol)).sum())


@torch.no_grad()
def verify_onnx(path: str, model: nn.Module, inputs: Sequence[torch.Tensor],
                atol: float = 1e-4, rtol: float = 1e-4,
                threads: Optional[int] = None) -> List[dict]:
    """Run an ONNX file in onnxruntime (CPU) and ``model`` in PyTorch on the same inputs.

    An input passes when ``max |ort - torch| <= tol = atol + rtol * max |torch|`` over the
    logits and every label that differs is a near-tie of PyTorch's logits (within ``2 *
    tol``; elsewhere a different label is an error of the ``labels`` output).

    Args:
        path (str): The ONNX file (input ``'input'``, outputs ``'logits'``, ``'labels'``).
        model (nn.Module): The exported module (e.g. :class:`SegmentorExportWrapper`).
        inputs (Sequence[Tensor]): Inputs (N, 3, H, W).
        atol (float): Absolute tolerance of the logits. Defaults to 1e-4.
        rtol (float): Tolerance relative to the largest PyTorch logit magnitude. Defaults to
            1e-4.
        threads (int, optional): onnxruntime intra-op threads. Defaults to None.

    Returns:
        list[dict]: Per input: ``shape`` (H, W), ``max_abs_diff``, ``max_abs_logit``,
        ``agreement`` (fraction of equal labels), ``label_errors`` (differing labels that are
        no near-tie), ``passed`` (bool).
    """
    session = onnx_session(path, threads)
    segmentor = getattr(model, 'segmentor', None)
    threshold = float(getattr(getattr(segmentor, 'decode_head', None), 'threshold', None)
                      or 0.5)
    results = []
    for x in inputs:
        ref_logits, ref_labels = model(x)
        try:
            ort_logits, ort_labels = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x.numpy()})
        except Exception as err:  # onnxruntime's own error (e.g. a size the graph rejects)
            raise ExportError(f'verify_onnx: onnxruntime failed on input {tuple(x.shape)}: '
                              f'{type(err).__name__}: {err}') from err
        ort_logits, ort_labels = torch.from_numpy(ort_logits), torch.from_numpy(ort_labels)
        if ort_logits.shape != ref_logits.shape or ort_labels.shape != ref_labels.shape:
            raise ExportError(
                f'verify_onnx: onnxruntime gave logits {tuple(ort_logits.shape)} and labels '
                f'{tuple(ort_labels.shape)} for input {tuple(x.shape)}, PyTorch '
                f'{tuple(ref_logits.shape)} and {tuple(ref_labels.shape)}')
        diff = (ort_logits.double() - ref_logits.double()).abs().max().item()
        scale = ref_logits.double().abs().max().item()
        tol = atol + rtol * scale
        errors = _label_errors(ref_logits.double(), ref_labels, ort_labels, tol, threshold)
        agreement = (ort_labels == ref_labels).double().mean().item()
        results.append(dict(shape=tuple(x.shape[-2:]), max_abs_diff=diff, max_abs_logit=scale,
                            agreement=agreement, label_errors=errors,
                            passed=diff <= tol and errors == 0))
    return results


def _expm1_symbolic(g, x):
    """``expm1(x)`` as ``Exp(x) - 1`` (the TorchScript exporter has no ``aten::expm1``)."""
    return g.op('Sub', g.op('Exp', x), g.op('Constant', value_t=torch.tensor(1.0)))


def _export_graph(model: nn.Module, path: str, shape: Tuple[int, int], dynamic: bool,
                  opset: int) -> None:
    """``torch.onnx.export`` (TorchScript exporter) of ``model`` at a (1, 3, H, W) input.

    SSR's opacities ``-expm1(-phi)`` are exported as ``1 - Exp(-phi)``: in float32 the same up
    to ~1e-7 absolute (no relative precision for tiny ``phi``, where the weight is ~0 anyway).
    """
    torch.onnx.register_custom_op_symbolic('::expm1', _expm1_symbolic, opset)
    model.eval()
    dummy = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), torch.no_grad():
        # size conversions in warnings and asserts; what matters is checked by verify_onnx
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='.*align_corners.*')
        torch.onnx.export(model, (dummy, ), path, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=_dynamic_axes(dynamic), do_constant_folding=True)


def export_onnx(model: nn.Module,
                out: str,
                shape: Sequence[int] = (512, 512),
                dynamic: bool = False,
                opset: int = 17,
                force: bool = False,
                verify_inputs: Optional[Sequence[torch.Tensor]] = None,
                atol: float = 1e-4,
                rtol: float = 1e-4,
                log: Optional[Callable[[str], None]] = None) -> List[dict]:
    """Export ``model`` to ``out`` atomically, optionally verified in onnxruntime first.

    Args:
        model (nn.Module): Module from images (N, 3, H, W) to ``(logits, labels)``, e.g.
            :class:`SegmentorExportWrapper`, in eval mode.
        out (str): Target ONNX file. Its folder is created if needed.
        shape (Sequence[int]): (H, W) of the example input the graph is traced with (the only
            size a static graph accepts). Defaults to (512, 512).
        dynamic (bool): Dynamic batch, height and width. Defaults to False.
        opset (int): ONNX opset. Defaults to 17.
        force (bool): Replace an existing ``out``. Defaults to False.
        verify_inputs (Sequence[Tensor], optional): Inputs on which the exported file must
            match ``model`` (:func:`verify_onnx`) before it is moved to ``out``.
            Defaults to None (no verification).
        atol (float): Absolute logit tolerance of :func:`verify_onnx`. Defaults to 1e-4.
        rtol (float): Relative logit tolerance of :func:`verify_onnx`. Defaults to 1e-4.
        log (Callable[[str], None], optional): Receives progress lines. Defaults to None.

    Returns:
        list[dict]: The verification results (empty without ``verify_inputs``).

    Raises:
        FileExistsError: ``out`` exists and ``force`` is False.
        ExportError: The export, the ONNX check or the verification failed (nothing written).
    """
    import onnx

    log = log or (lambda line: None)
    shape = _check_shape(shape, 'export_onnx')
    out = osp.abspath(out)
    if osp.isdir(out):
        raise ExportError(f'export_onnx: out must be a file path, {out!r} is a folder')
    if osp.lexists(out) and not force:
        raise FileExistsError(f'export_onnx: {out!r} exists; pass force=True (--force) to '
                              'replace it')
    folder = osp.dirname(out)
    made = []
    probe = folder
    while not osp.isdir(probe):
        made.append(probe)
        probe = osp.dirname(probe)
    os.makedirs(folder, exist_ok=True)
    try:
        with AtomicFile(out, overwrite=force, suffix='.onnx') as target:
            tmp = target.name
            start = time.perf_counter()
            log(f'exporting (TorchScript exporter, opset {opset}, traced at '
                f'{shape[0]}x{shape[1]}, {"dynamic" if dynamic else "static"} shape) ...')
            try:
                _export_graph(model, tmp, shape, dynamic, opset)
                onnx.checker.check_model(tmp)
            except Exception as err:  # the exporter's own error, passed on with its type
                raise ExportError(f'export_onnx: torch.onnx.export failed: '
                                  f'{type(err).__name__}: {err}') from err
            log(f'exported in {time.perf_counter() - start:.1f} s, '
                f'{osp.getsize(tmp) / 2**20:.1f} MiB')
            results: List[dict] = []
            if verify_inputs:
                results = verify_onnx(tmp, model, verify_inputs, atol, rtol)
                for r in results:
                    log(f"verify {r['shape'][0]}x{r['shape'][1]}: max |ort - torch| = "
                        f"{r['max_abs_diff']:.3g} (max |logit| {r['max_abs_logit']:.3g}), "
                        f"argmax agreement {100 * r['agreement']:.4f} % "
                        f"({r['label_errors']} labels off without a near-tie) "
                        f"{'ok' if r['passed'] else 'FAILED'}")
                failed = [r for r in results if not r['passed']]
                if failed:
                    raise ExportError(
                        f'export_onnx: onnxruntime differs from PyTorch on {len(failed)} of '
                        f'{len(results)} inputs beyond the tolerance (max |diff| <= {atol} + '
                        f'{rtol} * max |logit|, labels equal but at near-ties); nothing '
                        'written')
        log(f'wrote {out}')
        return results
    finally:
        if not osp.isfile(out):
            for path in made:  # folders created for a file that was not written
                if osp.isdir(path) and not os.listdir(path):
                    os.rmdir(path)
