"""Result previews made from the image tensor inside the prompt (issue 25 item 1): the node's reduction, its
store, and EarlyPreviews taking them instead of decoding the file. The real prompt is in
tests/integration/test_delivery.py; the cost is bench/overhead.py's."""

from __future__ import annotations

import io
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mcp_bridge.comfyui.artifacts import Artifact
from mcp_bridge.delivery import previews, tensor_previews
from mcp_bridge.media import artifacts


def test_a_big_tensor_is_averaged_down_on_its_device_and_previewed_within_the_limits() -> None:
    image = torch.zeros(2048, 1536, 3)
    image[:, :768, 0] = 1.0  # left half red, right half black
    small = tensor_previews.reduced(image)
    assert small.dtype == np.uint8 and small.shape == (1024, 768, 3)
    assert small[10, 10].tolist() == [255, 0, 0] and small[10, 700].tolist() == [0, 0, 0]
    preview = tensor_previews._encode(small)
    with Image.open(io.BytesIO(preview.data)) as im:
        assert im.format == "WEBP" and max(im.size) == 512 and im.size == (384, 512)
    assert len(preview.data) <= 150_000


def test_a_small_image_is_kept_as_it_is() -> None:
    image = np.full((300, 200, 3), 0.5, dtype=np.float32)
    assert tensor_previews.reduced(image).shape == (300, 200, 3)


def test_the_node_stores_one_preview_per_batch_image_under_its_key_once() -> None:
    store = tensor_previews.STORE
    tensor_previews.ResultPreview().preview(torch.rand(2, 64, 96, 3), "p1/9")
    futures = store.take("p1/9")
    assert futures is not None and len(futures) == 2
    assert all(f.result(timeout=10).mime_type == "image/webp" for f in futures)
    assert store.take("p1/9") is None


def test_the_store_keeps_only_the_newest_keys() -> None:
    store = tensor_previews.Store(keep=2)
    for n in range(3):
        store.put(f"k{n}", [np.zeros((8, 8, 3), dtype=np.uint8)])
    assert len(store) == 2 and store.take("k0") is None and store.take("k2") is not None


def test_prepare_takes_the_made_preview_and_falls_back_to_the_file(tmp_path: Path) -> None:
    Image.new("RGB", (640, 640), (0, 0, 255)).save(tmp_path / "a.png")
    artifact = Artifact("9", "image", "a.png", "", "output", "image/png")
    ready: Future[artifacts.Preview] = Future()
    ready.set_result(artifacts.Preview(b"made", "image/webp"))
    taken = previews.prepare(tmp_path / "a.png", str(tmp_path), artifact, 512, ready)
    assert taken.preview == artifacts.Preview(b"made", "image/webp") and taken.info is not None
    failed: Future[artifacts.Preview] = Future()
    failed.set_exception(RuntimeError("encoder died"))
    decoded = previews.prepare(tmp_path / "a.png", str(tmp_path), artifact, 512, failed)
    assert decoded.preview is not None and decoded.preview.data != b"made"


@pytest.mark.parametrize("count", [2, 3])
def test_early_previews_take_the_node_previews_by_prompt_and_node(count: int) -> None:
    class Job:
        prompt_ids = ["other", "p2"]

    found = tuple(Artifact("9", "image", f"f{n}.png", "", "output", "image/png") for n in range(2))
    tensor_previews.STORE.put("p2/9", [np.zeros((8, 8, 3), dtype=np.uint8)] * count)
    made = previews._made_previews(Job(), found)  # type: ignore[arg-type]
    assert len(made) == (2 if count == 2 else 0)  # a count that does not match: decode the files
