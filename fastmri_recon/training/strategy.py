"""Choosing the tf.distribute strategy: one device, all local GPUs, or several workers (SLURM / TF_CONFIG).

``auto`` picks, in order: several workers when ``TF_CONFIG`` names more than one task or SLURM runs
this process as one of several tasks (``SLURM_STEP_NUM_TASKS`` / ``SLURM_NTASKS`` > 1); all local
GPUs when there are several; otherwise the default one-device strategy. Under SLURM the cluster comes
from ``SlurmClusterResolver`` (it expands the node list with ``scontrol show hostnames``), otherwise
from ``TF_CONFIG``. Keras' ``model.fit`` does not work under ``MultiWorkerMirroredStrategy``
(keras-team/keras#20585): the package trains with its own loop (`training.loop`), which works under
every strategy.

On CPU, TensorFlow runs its convolutions and their gradients with oneDNN's kernels only when
``TF_ENABLE_ONEDNN_OPTS`` says so when TensorFlow is imported, or, unset, on Linux CPUs with AVX-512
VNNI / BF16, AVX-VNNI or AMX; elsewhere (AVX2 CPUs such as this project's AMD EPYC machine) it uses its
Eigen kernels, which made the main job's training steps up to 2.3x slower (BENCHMARKS.md). Importing
``fastmri_recon`` before TensorFlow sets the variable to ``1`` unless it is set; `onednn_enabled` says
which kernels this process has, `cpu_kernels_warning` what to do when TensorFlow came first.
"""

import json
import os
import platform
import shutil
import sys

import tensorflow as tf

from fastmri_recon import ONEDNN_VARIABLE
from fastmri_recon.errors import ConfigError

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")
_NOMINAL_GPUS = 1024


def _slurm_tasks():
    for name in ("SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def _tf_config_tasks():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({err})") from None
    return sum(len(tasks) for tasks in cluster.values())


def _gpus_per_node():
    """GPUs per node for SLURM's resolver, without initialising CUDA (which would freeze the
    visible devices before the resolver assigns them): None lets the resolver ask nvidia-smi."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    return None if shutil.which("nvidia-smi") else 0


def cluster_resolver(port_base=8888):
    """The cluster resolver of a multi-worker run: SLURM's when under SLURM, else TF_CONFIG's.

    Args:
        port_base: first port SLURM tasks listen on (one port per task on a node).

    Returns:
        a ``tf.distribute.cluster_resolver.ClusterResolver``.
    """
    if _slurm_tasks() > 1:
        gpus = _gpus_per_node()
        if gpus == 0:
            # CPU-only nodes: TF's resolver cannot hand out zero GPUs per task (a range with step 0),
            # so give it nominal GPUs that it does not assign (auto_set_gpu=False).
            return tf.distribute.cluster_resolver.SlurmClusterResolver(
                port_base=port_base, gpus_per_node=_NOMINAL_GPUS, gpus_per_task=1, auto_set_gpu=False
            )
        return tf.distribute.cluster_resolver.SlurmClusterResolver(port_base=port_base, gpus_per_node=gpus)
    return tf.distribute.cluster_resolver.TFConfigClusterResolver()


def resolve_kind(kind="auto"):
    """The strategy kind ``auto`` stands for here (see the module docstring), or ``kind`` itself."""
    if kind not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got '{kind}'")
    if kind != "auto":
        return kind
    if _tf_config_tasks() > 1 or _slurm_tasks() > 1:
        return "multi-worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "one-device"


def make_strategy(kind="auto", devices=None):
    """Create the distribution strategy.

    Args:
        kind: one of `STRATEGIES`.
        devices: for ``mirrored``, the device names (default: every local GPU, or the CPU).

    Returns:
        ``(strategy, kind)``, the kind resolved.
    """
    kind = resolve_kind(kind)
    if kind == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=cluster_resolver()), kind
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices), kind
    return tf.distribute.get_strategy(), kind


def is_chief(strategy):
    """Whether this process writes the outputs (always true outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict())


def describe(strategy, kind):
    """A JSON-able description of a strategy: kind, replicas, devices, cluster (for ``--dry-run``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if kind == "one-device":
        devices = [tf.config.list_logical_devices("GPU")[0].name if tf.config.list_logical_devices("GPU") else "/device:CPU:0"]
    else:
        devices = list(strategy.extended.worker_devices)
    return {
        "strategy": kind,
        "class": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "devices": devices,
        "cluster": cluster,
        "task": {"type": resolver.task_type, "id": resolver.task_id} if cluster else None,
    }


def onednn_enabled():
    """Whether this process runs TensorFlow's oneDNN CPU kernels (fixed when TensorFlow was imported).

    Returns:
        bool, or None when this TensorFlow build does not tell (its internal ``IsMklEnabled`` is missing).
    """
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_kernels_warning():
    """A one-line warning when this process trains on an x86-64 Linux CPU (where TensorFlow's wheels
    hold oneDNN) without oneDNN's kernels although ``TF_ENABLE_ONEDNN_OPTS`` did not turn them off
    (``0`` / ``false``): TensorFlow was imported before ``fastmri_recon`` with the variable unset. Else None.

    Returns:
        str or None.
    """
    turned_off = os.environ.get(ONEDNN_VARIABLE, "").strip().lower() in ("0", "false")
    x86_linux = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")
    if turned_off or not x86_linux or tf.config.list_logical_devices("GPU") or onednn_enabled() is not False:
        return None
    return (
        "warning: TensorFlow uses its Eigen CPU kernels here, not oneDNN's: training steps are up to 2.3x slower; "
        f"import fastmri_recon before tensorflow or set {ONEDNN_VARIABLE}=1 ({ONEDNN_VARIABLE}=0 silences this)"
    )
