r"""Export an mmseg_fusion segmentor (SSR multi-scale fusion included) to ONNX.

Usage::

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT OUT.onnx \\
        [--shape H W] [--dynamic] [--scales S ...] [--flip] [--opset N] \\
        [--verify [IMG ...]] [--force] [--cfg-options KEY=VALUE ...]

The graph maps normalised images ``input`` (N, 3, H, W) (``SegDataPreProcessor``'s output:
channel order and mean/std as the config says) to ``logits`` (N, C, H, W) and ``labels``
(N, H, W) int64, with the segmentor's whole-image inference (an ``SSREncoderDecoder`` fuses
``test_cfg.scales`` or ``--scales``; ``--flip`` averages with the flipped image). ``--verify``
runs the file in onnxruntime and the model in PyTorch on the given images (else on random
inputs at two sizes, an odd one included, with ``--dynamic``) and prints the largest logit
difference and the argmax agreement; above the tolerance the tool exits with 1 and writes
nothing. OUT is written atomically and never replaced without ``--force``. See
:mod:`mmseg_fusion.deployment.onnx`.
"""
import argparse
import os.path as osp
import sys


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description='Export a segmentor to ONNX (normalised image -> logits, labels)')
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='checkpoint (loaded strictly)')
    parser.add_argument('out', help='output ONNX file')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='input size the graph is traced with (default: the config\'s '
                             'data_preprocessor.size, else 512 512)')
    parser.add_argument('--dynamic', action='store_true',
                        help='dynamic batch, height and width')
    parser.add_argument('--scales', type=float, nargs='+', default=None,
                        help='scales of an SSREncoderDecoder (default: its test_cfg.scales)')
    parser.add_argument('--flip', action='store_true',
                        help='average with the horizontally flipped image')
    parser.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    parser.add_argument('--verify', nargs='*', default=None, metavar='IMG',
                        help='check onnxruntime against PyTorch on these images, or on random '
                             'inputs at two sizes when none is given')
    parser.add_argument('--atol', type=float, default=1e-4,
                        help='absolute logit tolerance of --verify (default 1e-4)')
    parser.add_argument('--rtol', type=float, default=1e-4,
                        help='tolerance relative to the largest |logit| (default 1e-4)')
    parser.add_argument('--force', action='store_true', help='replace OUT if it exists')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override config settings, e.g. model.test_cfg.flip=True')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = osp.abspath(args.out)
    for name, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if osp.exists(path) and osp.exists(out) and osp.samefile(path, out):
            print(f'pytorch2onnx: OUT is the {name} {path!r}; an input is never overwritten',
                  file=sys.stderr)
            return 1
    if osp.lexists(out) and not args.force:
        print(f'pytorch2onnx: {out} exists; pass --force to replace it', file=sys.stderr)
        return 1

    import mmseg_fusion  # noqa: F401  (registers the components and the checkpoint loader)
    from mmseg_fusion.deployment import (
        ExportError,
        SegmentorExportWrapper,
        build_export_model,
        export_onnx,
        load_verify_images,
        random_verify_inputs,
    )
    from mmseg_fusion.models.fusions import SCALE_FUSIONS

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        log(f'building {args.config} with {args.checkpoint}')
        segmentor = build_export_model(args.config, args.checkpoint, args.cfg_options)
        wrapper = SegmentorExportWrapper(segmentor, scales=args.scales, flip=args.flip)
        if args.shape is not None:
            shape = tuple(args.shape)
        else:
            size = getattr(segmentor.data_preprocessor, 'size', None)
            shape = tuple(size) if size else (512, 512)
        kind = 'single-scale'
        if wrapper.is_ssr:  # the fusion's shorthand ('ssr', 'hma', ...) or its class name
            name = type(segmentor.fusion).__name__
            kind = 'SSR ' + {v: k for k, v in SCALE_FUSIONS.items()}.get(name, name)
        log(f'{type(segmentor).__name__}: {kind} over scales {wrapper.scales}'
            f'{" with flip" if wrapper.flip else ""}, {segmentor.out_channels} classes')
        inputs = None
        if args.verify is not None:
            if args.verify:
                inputs = load_verify_images(args.verify, segmentor,
                                            None if args.dynamic else shape)
            else:
                inputs = random_verify_inputs(shape, args.dynamic)
        export_onnx(wrapper, out, shape=shape, dynamic=args.dynamic, opset=args.opset,
                    force=args.force, verify_inputs=inputs, atol=args.atol, rtol=args.rtol,
                    log=log)
    except (ExportError, FileExistsError, FileNotFoundError, ValueError, TypeError) as err:
        print(f'\npytorch2onnx failed, nothing written: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
