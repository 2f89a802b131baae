"""What the benchmark scripts share: training and testing on mmseg's pipeline, seeds, memory.

- :func:`train` trains a config with mmengine's ``Runner`` (mmseg's datasets, transforms, data
  preprocessor, losses, optimizer wrapper and schedulers, exactly as ``tools/train.py``);
  :func:`evaluate` runs a model over a config's test dataloader with mmseg's ``IoUMetric``
  (as ``tools/test.py``) and also returns the per-class IoU; :func:`evaluate_groups` does the
  same over groups of the test images too (e.g. the degraded frames of a video).
- :func:`run_jobs` runs worker processes in parallel (one intra-op thread each by default),
  printing a line as each finishes; :class:`JsonCache` keeps each job's result, so a second
  run only does what is missing.
- :func:`mean_std` / :func:`fmt_mean_std`: the seeds' mean ± sample standard deviation.
- :class:`PeakMemory`: peak memory of a block (CPU: the kernel's resident-set high-water
  mark, reset first; CUDA: ``max_memory_allocated``); :func:`rss_bytes` the resident set now.
  A CPU measurement runs in a fresh process: :func:`memory_env` is its environment (a fixed
  ``mmap`` threshold, so that the resident set follows the live tensors) and
  :func:`run_json` runs it and returns the JSON line it prints.
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
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

__all__ = [
    'MIB', 'ROOT', 'JsonCache', 'PeakMemory', 'evaluate', 'evaluate_groups', 'fmt_mean_std',
    'load_config', 'mean_std', 'memory_env', 'random_samples', 'rss_bytes', 'run_jobs',
    'run_json', 'step_flops', 'train'
]
MIB = 1024**2


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


def evaluate_groups(model, cfg, num_classes: int,
                    groups: Callable[[dict], Iterable[str]]) -> Dict[str, Dict[str, object]]:
    """:func:`evaluate` over all of ``cfg``'s test images and over groups of them.

    One pass of the loop of :func:`evaluate`; each group's metrics are mmseg's
    ``IoUMetric.compute_metrics`` of the per-image areas of its images.

    Args:
        model (nn.Module): The model (put in eval mode here).
        cfg (Config): Its config; the test dataloader and evaluator are built from it.
        num_classes (int): Classes (the length of ``class_iou``).
        groups (Callable[[dict], Iterable[str]]): The names of the groups an image belongs to,
            from its metainfo (``img_path``, ``ori_shape``, ...); ``'all'`` holds every image.

    Returns:
        dict[str, dict]: Per group, in the order first met (``'all'`` first): ``mIoU``,
        ``aAcc``, ``class_iou`` (percent, as :func:`evaluate`) and ``images`` (how many).
    """
    import torch
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = loader.dataset.metainfo
    metric = evaluator.metrics[0]
    members: Dict[str, List[int]] = {'all': []}
    model.eval()
    with torch.no_grad():
        for data in loader:
            outputs = model.test_step(data)
            for sample in outputs:
                index = len(members['all'])
                members['all'].append(index)
                for name in groups(sample.metainfo):
                    members.setdefault(name, []).append(index)
            evaluator.process(data_samples=outputs, data_batch=data)
    # (area_intersect, area_union, area_pred, area_label) per image, in the loader's order
    results = list(metric.results)
    metric.results.clear()
    if len(results) != len(members['all']):
        raise RuntimeError(f'evaluate_groups: {len(results)} metric results for '
                           f'{len(members["all"])} images')
    out = {}
    for name, indices in members.items():
        subset = [results[i] for i in indices]
        metrics = metric.compute_metrics(subset)
        inter = sum(r[0] for r in subset)
        union = sum(r[1] for r in subset)
        class_iou = [100.0 * float(i) / max(float(u), 1.0) for i, u in zip(inter, union)]
        out[name] = dict(mIoU=float(metrics['mIoU']), aAcc=float(metrics['aAcc']),
                         class_iou=class_iou[:num_classes], images=len(indices))
    return out


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


def _status_kibs(*keys: str) -> Dict[str, Optional[int]]:
    """``keys`` of ``/proc/self/status`` (KiB) read at once (None where absent)."""
    values: Dict[str, Optional[int]] = dict.fromkeys(keys)
    try:
        with open('/proc/self/status') as f:
            for line in f:
                key = line.split(':', 1)[0]
                if key in values:
                    values[key] = int(line.split()[1])
    except OSError:
        pass
    return values


def rss_bytes() -> int:
    """The resident set size of this process now (``/proc/self/statm``), in bytes.

    Falls back to ``ru_maxrss`` (the lifetime peak) where ``/proc`` is missing.
    """
    try:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """Peak memory of a ``with`` block, in bytes, above what was in use when it started.

    CPU: the resident set's high-water mark ``VmHWM`` after resetting it
    (``/proc/self/clear_refs``, Linux >= 4.0). Where the reset is refused, or ``VmHWM``
    stays more than :attr:`RESET_TOLERANCE` above the resident set after it (the reset did
    not take), the process's lifetime peak is used instead (``ru_maxrss``: an upper bound,
    ``exact`` is False). Run it in a fresh process started with :func:`memory_env`, after a
    warm-up, so that the resident set follows the live tensors. CUDA (``device`` starting with
    ``'cuda'``): ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, above
    ``memory_allocated`` at the start.

    Args:
        device (str): ``'cpu'`` or a CUDA device. Defaults to ``'cpu'``.

    Attributes:
        before (int): Bytes in use when the block started (CPU: the resident set; CUDA: the
            allocated bytes).
        peak (int): After the block: the peak above ``before``, in bytes.
        exact (bool): False where ``peak`` is only an upper bound (see above).

    Example:
        >>> with PeakMemory() as mem:
        ...     run()
        >>> print(f'{mem.peak_mib:.0f} MiB', '' if mem.exact else '(upper bound)')
    """

    #: how far ``VmHWM`` may stay above the resident set right after a reset (bytes)
    RESET_TOLERANCE = 4 * MIB

    def __init__(self, device: str = 'cpu') -> None:
        self.device = device
        self.peak: Optional[int] = None
        self.before: Optional[int] = None
        self.exact = True

    @property
    def peak_mib(self) -> Optional[float]:
        """:attr:`peak` in MiB (None before the block has ended)."""
        return None if self.peak is None else self.peak / MIB

    def __enter__(self) -> 'PeakMemory':
        if self.device.startswith('cuda'):
            import torch
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.before = torch.cuda.memory_allocated()
            self._before = self.before
            return self
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            self.exact = False
        status = _status_kibs('VmRSS', 'VmHWM')
        rss = status['VmRSS']
        self.before = rss * 1024 if rss is not None else rss_bytes()
        self._before = self.before
        hwm = status['VmHWM']
        if hwm is None or (hwm * 1024 - self.before > self.RESET_TOLERANCE):
            self.exact = False
        return self

    def __exit__(self, *exc) -> None:
        if self.device.startswith('cuda'):
            import torch
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.before
            return
        high = _status_kib('VmHWM') if self.exact else None
        if high is None:
            self.exact = False
            high = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak = high * 1024 - self.before


#: glibc's ``mmap`` threshold of the processes that measure memory: a fixed 128 KiB
MMAP_THRESHOLD = '131072'


def memory_env(**defaults: str) -> Dict[str, str]:
    """The environment of a child process that measures its peak memory (:class:`PeakMemory`).

    This process's environment, with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB:
    every block above it is ``mmap``-ed and unmapped when freed, so the resident set follows
    the live tensors (with glibc's default, dynamic threshold, freed blocks of a few hundred
    KiB stay resident). Unbuffered output, no version warning.

    Args:
        **defaults (str): More variables, set (like the threshold) only where the
            environment has none, e.g. ``OMP_WAIT_POLICY='PASSIVE'``.

    Returns:
        dict[str, str]: The environment.
    """
    env = dict(os.environ, PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1')
    for key, value in dict(MALLOC_MMAP_THRESHOLD_=MMAP_THRESHOLD, **defaults).items():
        env.setdefault(key, str(value))
    return env


def run_json(cmd: Sequence[str], env: Optional[Dict[str, str]] = None,
             timeout: Optional[float] = None) -> dict:
    """Run a worker process that prints its result as a JSON line; that result.

    Args:
        cmd (Sequence[str]): The command.
        env (dict, optional): Its environment. Defaults to None (:func:`memory_env`).
        timeout (float, optional): Seconds before it is killed. Defaults to None.

    Returns:
        dict: The last line of its standard output that starts with ``{``, parsed.

    Raises:
        RuntimeError: ``exit <status>: <the end of its standard error>`` when it exits
            non-zero or prints no such line.
    """
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          env=memory_env() if env is None else env, timeout=timeout,
                          check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f'exit {proc.returncode}: {proc.stderr.strip()[-2000:]}')
    return json.loads(lines[-1])


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
