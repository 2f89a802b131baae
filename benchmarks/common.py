"""What the benchmark scripts share: training and testing on mmseg's pipeline, seeds, memory.

- :func:`train` trains a config with mmengine's ``Runner`` (mmseg's datasets, transforms, data
  preprocessor, losses, optimizer wrapper and schedulers, exactly as ``tools/train.py``);
  :func:`evaluate` runs a model over a config's test dataloader with mmseg's ``IoUMetric``
  (as ``tools/test.py``) and also returns the per-class IoU.
- :func:`run_jobs` runs worker processes in parallel (one intra-op thread each by default),
  printing a line as each finishes; :class:`JsonCache` keeps each job's result, so a second
  run only does what is missing.
- :func:`mean_std` / :func:`fmt_mean_std`: the seeds' mean ± sample standard deviation.
- :class:`PeakMemory`: peak memory of a block (CPU: the kernel's resident-set high-water
  mark, reset first; CUDA: ``max_memory_allocated``).
- :func:`step_flops`: FLOPs of one call (``torch.utils.flop_counter``), e.g. a training step.

Not shipped: ``benchmarks/`` lives beside the package.
"""
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

__all__ = [
    'ROOT', 'JsonCache', 'PeakMemory', 'evaluate', 'fmt_mean_std', 'load_config',
    'mean_std', 'random_samples', 'run_jobs', 'step_flops', 'train'
]


# ----------------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    values = list(values)
    if not values:
        raise ValueError('mean_std: no values')
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def fmt_mean_std(values: Sequence[float], digits: int = 1) -> str:
    """``'80.8 ± 0.8'`` (or ``'80.8'`` for one value, ``''`` for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return ''
    mean, std = mean_std(values)
    return f'{mean:.{digits}f}' + (f' ± {std:.{digits}f}' if len(values) > 1 else '')


# ----------------------------------------------------------------------------- result cache
class JsonCache:
    """One JSON file per key under ``folder`` (written atomically)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)

    def path(self, key: str) -> str:
        """The file of ``key``."""
        return osp.join(self.folder, f'{key}.json')

    def get(self, key: str) -> Optional[dict]:
        """The stored result of ``key``, or None."""
        try:
            with open(self.path(key)) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def put(self, key: str, value: dict) -> None:
        """Store ``value`` under ``key``."""
        tmp = f'{self.path(key)}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump(value, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path(key))


# ----------------------------------------------------------------------------- mmseg runs
def load_config(config: str, options: Optional[dict] = None):
    """An mmengine ``Config`` of ``config`` (a path) with ``options`` merged in."""
    from mmengine.config import Config

    import mmseg_fusion  # noqa: F401  (registers the components and the config scope)
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def train(cfg, work_dir: str, seed: int):
    """Train ``cfg`` with mmengine's ``Runner`` (as ``tools/train.py``); the trained model.

    Args:
        cfg (Config): The config (``load_config``); its ``work_dir``, ``randomness`` and
            ``visualizer`` are set here.
        work_dir (str): Where the runner writes its logs and checkpoint.
        seed (int): ``randomness.seed`` (``deterministic=False``).

    Returns:
        nn.Module: The trained model (eval mode not set).
    """
    from mmengine.runner import Runner
    cfg.work_dir = work_dir
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.default_hooks.pop('visualization', None)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=cfg.train_cfg.max_iters, max_keep_ckpts=1)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_cfg.val_interval = cfg.train_cfg.max_iters + 1  # no validation during training
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner.model


def evaluate(model, cfg, num_classes: int) -> Dict[str, object]:
    """mIoU, aAcc and per-class IoU of ``model`` on ``cfg``'s test data (mmseg's IoUMetric).

    The loop of mmengine's ``TestLoop``: the test dataloader of ``cfg`` (mmseg's dataset and
    transforms), ``model.test_step`` and mmseg's ``IoUMetric``.

    Returns:
        dict: ``mIoU``, ``aAcc`` (percent) and ``class_iou`` (list, percent).
    """
    import torch
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    model.eval()
    with torch.no_grad():
        for data in loader:
            evaluator.process(data_samples=model.test_step(data), data_batch=data)
    metric = evaluator.metrics[0]
    # (area_intersect, area_union, area_pred, area_label) per image, summed over the images
    inter = sum(r[0] for r in metric.results)
    union = sum(r[1] for r in metric.results)
    class_iou = [100.0 * float(i) / max(float(u), 1.0) for i, u in zip(inter, union)]
    metrics = evaluator.evaluate(len(loader.dataset))
    return dict(mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                class_iou=class_iou[:num_classes])


def step_flops(fn: Callable[[], object]) -> float:
    """FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` while ``fn`` runs."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


# ----------------------------------------------------------------------------- parallel jobs
def run_jobs(jobs: Sequence[dict], command: Callable[[dict], List[str]], num_jobs: int,
             log_dir: str, threads: int = 1, describe: Callable[[dict], str] = str,
             env: Optional[dict] = None) -> List[int]:
    """Run ``command(job)`` for every job, ``num_jobs`` processes at a time.

    Each process gets ``threads`` intra-op threads and writes its output to
    ``log_dir/<index>.log``; a line is printed (and flushed) when it starts and finishes.

    Returns:
        list[int]: The exit codes, in the order of ``jobs``.
    """
    os.makedirs(log_dir, exist_ok=True)
    full_env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                    PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1', **(env or {}))
    pending = list(enumerate(jobs))
    running: Dict[int, Tuple[subprocess.Popen, float, object]] = {}
    codes: List[int] = [None] * len(jobs)
    start = time.time()
    while pending or running:
        while pending and len(running) < num_jobs:
            i, job = pending.pop(0)
            log = open(osp.join(log_dir, f'{i}.log'), 'w')  # noqa: SIM115 (closed below)
            proc = subprocess.Popen(command(job), stdout=log, stderr=subprocess.STDOUT,
                                    env=full_env, cwd=ROOT)
            running[i] = (proc, time.time(), log)
            print(f'[{time.time() - start:6.0f} s] start  {i + 1}/{len(jobs)} {describe(job)}',
                  flush=True)
        for i, (proc, began, log) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            codes[i] = proc.returncode
            state = 'done  ' if proc.returncode == 0 else f'FAILED ({proc.returncode}, see ' \
                f'{osp.join(log_dir, f"{i}.log")})'
            print(f'[{time.time() - start:6.0f} s] {state} {i + 1}/{len(jobs)} '
                  f'{describe(jobs[i])} in {time.time() - began:.0f} s', flush=True)
            del running[i]
        time.sleep(0.5)
    return codes


# ----------------------------------------------------------------------------- memory
def _status_kib(key: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(f'{key}:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of a ``with`` block, in bytes, above what was in use when it started.

    CPU: the resident set's high-water mark ``VmHWM`` after resetting it
    (``/proc/self/clear_refs``, Linux >= 4.0); where that is refused, ``ru_maxrss`` (the
    process's lifetime peak: an upper bound, ``exact`` is False). CUDA (``device`` starting
    with ``'cuda'``): ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
    """

    def __init__(self, device: str = 'cpu') -> None:
        self.device = device
        self.peak: Optional[int] = None
        self.exact = True

    def __enter__(self) -> 'PeakMemory':
        if self.device.startswith('cuda'):
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._before = torch.cuda.memory_allocated()
            return self
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            self.exact = False
        self._before = (_status_kib('VmRSS') or 0) * 1024
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith('cuda'):
            import torch
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._before
            return
        high = _status_kib('VmHWM') if self.exact else None
        if high is None:
            self.exact = False
            high = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak = high * 1024 - self._before


def random_samples(n: int, h: int, w: int, num_classes: int) -> list:
    """``n`` SegDataSamples of (h, w) images with random labels in [0, num_classes)."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples = []
    for _ in range(n):
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, num_classes, (1, h, w)))
        samples.append(sample)
    return samples
