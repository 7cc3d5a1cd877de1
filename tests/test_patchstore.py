"""Patch store: patches as a direct crop + tile + extract gives them, boxes back in full-view
coordinates, reuse by key, atomic builds, bounded memory, seeded loader order and its shards."""

from __future__ import annotations

import json
import math
import os
import pickle
import socket
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xadt.patchstore as patchstore
from xadt.crop import CropBox, crop_air
from xadt.errors import XadtError
from xadt.kernels import extract_patches, tile_boxes
from xadt.patchstore import (
    PatchSampler,
    PatchSettings,
    PatchStore,
    scan_digest,
    scan_patches,
    unit_patches,
)
from xadt.scans import Scan, full_scale
from xadt.testing import normal_scans

SMALL = PatchSettings(patch=16, stride=8)


def _view(
    rng: np.random.Generator, height: int, width: int, channels: int, dtype: type
) -> np.ndarray:
    """White air with a textured parcel rectangle somewhere inside, in ``dtype``."""
    grey = np.ones((height, width, channels))
    y0, x0 = rng.integers(0, height // 3), rng.integers(0, width // 3)
    y1, x1 = rng.integers(2 * height // 3, height + 1), rng.integers(2 * width // 3, width + 1)
    grey[y0:y1, x0:x1] = rng.uniform(0.1, 0.8, (y1 - y0, x1 - x0, channels))
    if dtype is np.float32:
        return grey.astype(np.float32)
    return np.round(grey * np.iinfo(dtype).max).astype(dtype)


def grey_scans(n: int, *, seed: int = 0, views: int = 1) -> list[Scan]:
    """``n`` one-channel uint16 scans of about 70 × 60 pixels."""
    rng = np.random.default_rng(seed)
    return [
        Scan(
            f"grey-{k:02d}",
            [_view(rng, 70 + k, 60 - k, 1, np.uint16) for _ in range(views)],
            encoding="grey",
        )
        for k in range(n)
    ]


def dual_scans(n: int, *, seed: int = 0) -> list[Scan]:
    """``n`` two-view, two-channel (high, low) uint16 dual-energy scans."""
    rng = np.random.default_rng(seed)
    return [
        Scan(
            f"dual-{k:02d}",
            [_view(rng, 64, 50 + 3 * k, 2, np.uint16) for _ in range(2)],
            encoding="dual-energy",
        )
        for k in range(n)
    ]


KINDS = {
    "rgb-uint8": lambda: normal_scans(3),
    "grey-uint16": lambda: grey_scans(3, views=2),
    "dual-uint16": lambda: dual_scans(3),
    "grey-float32": lambda: [
        Scan("f", [_view(np.random.default_rng(5), 40, 50, 1, np.float32)], encoding="grey")
    ],
}


def _rows_of(store: PatchStore, k: int) -> np.ndarray:
    return np.flatnonzero(store.scan_index == k)


# ---------------------------------------------------------------------------------------------
# Patches and boxes


@pytest.mark.parametrize("kind", list(KINDS))
def test_patches_equal_a_direct_crop_tile_and_extract(kind: str, tmp_path: Path) -> None:
    scans = KINDS[kind]()
    store = PatchStore.build(scans, tmp_path, SMALL)
    assert store.scan_ids == tuple(s.id for s in scans)
    assert store.dtype == scans[0].views[0].dtype
    assert store.channels == scans[0].views[0].shape[2]
    for k, scan in enumerate(scans):
        rows = _rows_of(store, k)
        got, boxes, views = store.read(rows), store.boxes[rows], store.view_index[rows]
        channel = 0 if scan.encoding == "dual-energy" else None
        for v, view in enumerate(scan.views):
            crop = crop_air(view, channel=channel)
            cropped = crop.apply(view)
            local = tile_boxes(cropped.shape[0], cropped.shape[1], 16, 8)
            white = full_scale(view.dtype)
            expected = extract_patches(cropped, local, 16, 0.0, 1.0, white)
            mine = views == v
            np.testing.assert_array_equal(boxes[mine], crop.shift(local))
            np.testing.assert_allclose(unit_patches(got[mine]), expected, rtol=1e-6, atol=0)
            assert store.view_info(scan.id)[v] == (view.shape[:2], crop)


@settings(max_examples=40)
@given(
    height=st.integers(8, 60),
    width=st.integers(8, 60),
    patch=st.integers(1, 40),
    stride_fraction=st.floats(0.05, 1.0),
    dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
)
def test_any_tiling_equals_the_kernels_with_white_overhang(
    height: int, width: int, patch: int, stride_fraction: float, dtype: type
) -> None:
    view = _view(np.random.default_rng(height + 100 * width), height, width, 2, dtype)
    stride = max(1, round(patch * stride_fraction))
    result = scan_patches(
        Scan("s", [view], encoding="dual-energy"),
        PatchSettings(patch=patch, stride=stride, opening=1, min_area=0.0),
    )
    (one,) = result.views
    crop = crop_air(view, channel=0, opening=1, min_area=0.0)
    cropped = crop.apply(view)
    local = tile_boxes(cropped.shape[0], cropped.shape[1], patch, stride)
    expected = extract_patches(cropped, local, patch, 0.0, 1.0, full_scale(view.dtype))
    np.testing.assert_array_equal(one.boxes, crop.shift(local))
    assert one.patches.dtype == view.dtype
    np.testing.assert_allclose(unit_patches(one.patches), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_boxes_address_the_patch_pixels_at_downscale_1(kind: str, tmp_path: Path) -> None:
    scans = KINDS[kind]()
    store = PatchStore.build(scans, tmp_path, PatchSettings(patch=12, stride=5))
    boxes, scan_index, view_index = store.boxes, store.scan_index, store.view_index
    for i in range(len(store)):
        view = scans[scan_index[i]].views[view_index[i]]
        y0, x0, y1, x1 = boxes[i]
        np.testing.assert_array_equal(store[i], view[y0:y1, x0:x1].transpose(2, 0, 1))


def test_boxes_map_back_through_downscale_half(tmp_path: Path) -> None:
    # A parcel of even size at even offsets, so that half size is exact and every patch is the
    # rounded 2 x 2 mean of the full-view pixels under its box.
    rng = np.random.default_rng(3)
    view = np.full((90, 100, 3), 255, np.uint8)
    view[10:80, 20:96] = rng.integers(0, 200, (70, 76, 3))
    scan = Scan("half", [view])
    store = PatchStore.build([scan], tmp_path, PatchSettings(patch=8, stride=4, downscale=0.5))
    assert store.view_info("half")[0][1] == CropBox(10, 20, 80, 96)
    for i in range(len(store)):
        y0, x0, y1, x1 = store.boxes[i]
        assert (y1 - y0, x1 - x0) == (16, 16)
        block = view[y0:y1, x0:x1].astype(np.float64).reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
        diff = np.abs(store[i].astype(np.float64) - block.transpose(2, 0, 1))
        assert diff.max() <= 0.5 + 1e-9


@settings(max_examples=25)
@given(
    height=st.integers(30, 90),
    width=st.integers(30, 90),
    downscale=st.sampled_from([1.0, 0.75, 0.5, 0.3]),
    patch=st.integers(4, 12),
)
def test_boxes_cover_the_crop_at_any_downscale(
    height: int, width: int, downscale: float, patch: int
) -> None:
    view = _view(np.random.default_rng(height * width), height, width, 1, np.uint8)
    scan = Scan("s", [view], encoding="grey")
    result = scan_patches(scan, PatchSettings(patch=patch, stride=patch, downscale=downscale))
    (one,) = result.views
    assert one.crop is not None
    boxes, crop = one.boxes, one.crop
    # Each side is scaled by (crop side) / (downscaled side), the latter rounded to a pixel.
    small = [max(1, math.floor(n * downscale + 0.5)) for n in (crop.height, crop.width)]
    side = patch * np.array([crop.height / small[0], crop.width / small[1]])
    assert np.all(np.abs((boxes[:, 2:] - boxes[:, :2]) - side) <= 1)
    if min(crop.height, crop.width) * downscale >= patch + 1:  # no patch overhangs the crop
        assert boxes[:, :2].min(axis=0).tolist() == [crop.y0, crop.x0]
        assert boxes[:, 2:].max(axis=0).tolist() == [crop.y1, crop.x1]
    assert one.patches.shape == (len(boxes), 1, patch, patch)
    assert one.patches.dtype == np.uint8


def test_all_air_views_give_no_patches_and_are_listed(tmp_path: Path) -> None:
    (scan,) = grey_scans(1, views=2)
    air = np.full_like(scan.views[1], 65535)
    scan = Scan(scan.id, [scan.views[0], air], encoding="grey")
    result = scan_patches(scan, SMALL)
    assert result.views[1].empty
    assert result.views[1].patches.shape == (0, 1, 16, 16)
    store = PatchStore.build([scan], tmp_path, SMALL)
    assert store.empty_views == [(scan.id, 1)]
    assert set(store.view_index.tolist()) == {0}
    assert store.view_info(scan.id)[1] == (air.shape[:2], None)
    with pytest.raises(XadtError, match="every view of the 1 scans is all air"):
        PatchStore.build([Scan("air", [air], encoding="grey")], tmp_path / "b", SMALL)


def test_dual_energy_views_are_cropped_on_the_high_energy_channel() -> None:
    view = np.full((60, 60, 2), 65535, np.uint16)
    view[10:30, 15:40, 0] = 20000  # parcel in the high-energy channel
    view[:, :, 1] = 10000  # the low-energy channel is dark everywhere
    result = scan_patches(Scan("d", [view], encoding="dual-energy"), SMALL)
    assert result.views[0].crop == CropBox(10, 15, 30, 40)


# ---------------------------------------------------------------------------------------------
# Keys and reuse


def test_reuse_by_key_and_a_new_store_beside_it_on_another_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = normal_scans(4)
    first = PatchStore.build(scans, tmp_path, SMALL)
    stamp = (first.path / "patches.bin").stat().st_mtime_ns

    def refuse(*_: object) -> None:
        msg = "a reused store must not tile scans again"
        raise AssertionError(msg)

    monkeypatch.setattr(patchstore, "scan_patches", refuse)
    again = PatchStore.build(iter(scans), tmp_path, SMALL)
    assert again.path == first.path
    assert (again.path / "patches.bin").stat().st_mtime_ns == stamp
    monkeypatch.undo()

    other = PatchStore.build(scans, tmp_path, PatchSettings(patch=16, stride=4))
    assert other.path != first.path
    assert other.path.parent == first.path.parent
    assert len(other) > len(first)
    assert PatchStore.open(first.path).key == first.key


def test_changed_pixels_give_a_new_store_that_copies_the_unchanged_scans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = normal_scans(4)
    first = PatchStore.build(scans, tmp_path, SMALL)
    changed = list(scans)
    view = scans[2].views[0].copy()
    view[40, 40] ^= 1
    changed[2] = Scan(scans[2].id, [view])
    assert scan_digest(changed[2]) != scan_digest(scans[2])

    calls = []
    real = patchstore.scan_patches
    monkeypatch.setattr(patchstore, "scan_patches", lambda s, c: calls.append(s.id) or real(s, c))
    second = PatchStore.build(changed, tmp_path, SMALL)
    assert calls == [scans[2].id]
    assert second.path != first.path
    for k in (0, 1, 3):
        np.testing.assert_array_equal(
            second.read(_rows_of(second, k)), first.read(_rows_of(first, k))
        )
        np.testing.assert_array_equal(
            second.boxes[_rows_of(second, k)], first.boxes[_rows_of(first, k)]
        )

    calls.clear()
    prefix = PatchStore.build(scans[:2], tmp_path, SMALL)  # the first scans of a store
    assert calls == []
    assert len(prefix) == len(_rows_of(first, 0)) + len(_rows_of(first, 1))
    np.testing.assert_array_equal(
        prefix.read(np.arange(len(prefix))), first.read(np.arange(len(prefix)))
    )


# ---------------------------------------------------------------------------------------------
# Atomic builds


def test_an_interrupted_build_leaves_no_store_and_no_temporary_folder(tmp_path: Path) -> None:
    def interrupted() -> Iterator[Scan]:
        yield from normal_scans(2)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PatchStore.build(interrupted(), tmp_path, SMALL)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_build_is_never_opened_and_is_cleaned_up(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from xadt.patchstore import PatchSettings, PatchStore
        from xadt.testing import normal_scans

        def scans():
            yield from normal_scans(3)
            os.kill(os.getpid(), signal.SIGKILL)  # dies in the middle of the build

        PatchStore.build(scans(), {str(tmp_path)!r}, PatchSettings(patch=16, stride=8))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f".building-{socket.gethostname()}-")
    assert (left / "patches.bin").stat().st_size > 0
    with pytest.raises(XadtError, match="not a complete patch store"):
        PatchStore.open(left)
    store = PatchStore.build(normal_scans(3), tmp_path, SMALL)
    assert [p.name for p in tmp_path.iterdir()] == [store.path.name]


def test_a_live_process_build_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / f".building-{socket.gethostname()}-{os.getpid()}-abcd1234"
    mine.mkdir()
    PatchStore.build(normal_scans(1), tmp_path, SMALL)
    assert mine.is_dir()


def test_a_truncated_store_is_refused_and_rebuilt(tmp_path: Path) -> None:
    scans = normal_scans(2)
    store = PatchStore.build(scans, tmp_path, SMALL)
    expected = store.read(np.arange(len(store)))
    data = store.path / "patches.bin"
    with data.open("r+b") as handle:
        handle.truncate(data.stat().st_size - 100)
    with pytest.raises(XadtError, match=r"patches\.bin: holds \d+ bytes, but store\.json promises"):
        PatchStore.open(store.path)
    rebuilt = PatchStore.build(scans, tmp_path, SMALL)
    assert rebuilt.path == store.path
    np.testing.assert_array_equal(rebuilt.read(np.arange(len(rebuilt))), expected)
    assert [p.name for p in tmp_path.iterdir()] == [store.path.name]


def _corrupt(meta: dict) -> None:
    meta["scans"][0]["views"][0]["count"] += 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: m.update(format=99), "patch store format 99, but this xadt reads format 1"),
        (lambda m: m.update(count=m["count"] + 1), "the scans list .* but 'count' is"),
        (_corrupt, "the scans list"),
        (lambda m: m["settings"].update(stride=0), "'settings' are not valid"),
        (lambda m: m["settings"].update(colour=1), "'settings' are not valid"),
        (lambda m: m.update(dtype="int32"), "'dtype' is 'int32'"),
        (lambda m: m.pop("scans"), "'scans' is missing"),
        (lambda m: m.update(channels=True), "'channels' is missing or not an integer"),
        (lambda m: m["scans"][0]["views"][0].update(crop=[0, 0, 9999, 5]), "not inside its shape"),
        (lambda m: m["scans"][0].pop("digest"), "scan 0 of 'scans' has no string 'digest'"),
    ],
)
def test_bad_metadata_is_a_one_line_error_naming_the_file(
    tmp_path: Path, change: object, match: str
) -> None:
    store = PatchStore.build(normal_scans(2), tmp_path, SMALL)
    file = store.path / "store.json"
    meta = json.loads(file.read_text())
    change(meta)  # type: ignore[operator]
    file.write_text(json.dumps(meta))
    with pytest.raises(XadtError, match=match) as info:
        PatchStore.open(store.path)
    assert str(info.value).startswith(f"{file}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["{not json", "[]", '"a string"'])
def test_unreadable_metadata_is_a_one_line_error(tmp_path: Path, text: str) -> None:
    store = PatchStore.build(normal_scans(1), tmp_path, SMALL)
    (store.path / "store.json").write_text(text)
    with pytest.raises(XadtError, match=r"store\.json: ") as info:
        PatchStore.open(store.path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# Memory


def test_building_from_a_stream_never_holds_the_store_in_memory(tmp_path: Path) -> None:
    def stream(n: int) -> Iterator[Scan]:
        for k in range(n):
            yield from normal_scans(1, seed=k, prefix=f"s{k:03d}")

    def peak_of(n: int) -> tuple[int, PatchStore]:
        tracemalloc.start()
        try:
            store = PatchStore.build(stream(n), tmp_path / str(n), settings_)
            return tracemalloc.get_traced_memory()[1], store
        finally:
            tracemalloc.stop()

    settings_ = PatchSettings(patch=8, stride=4)
    PatchStore.build(normal_scans(1), tmp_path / "warm", settings_)  # imports, caches
    small_peak, small = peak_of(40)
    large_peak, large = peak_of(160)
    assert len(large.scan_ids) == 160
    assert large.nbytes > 10_000_000
    # The peak is one scan's working memory plus a scan table of about 1 kB a scan.
    assert large_peak < large.nbytes / 8, f"peak {large_peak} B for a {large.nbytes} B store"
    assert large_peak - small_peak < (large.nbytes - small.nbytes) / 20


# ---------------------------------------------------------------------------------------------
# The loader


def _epoch(store: PatchStore, **options: object) -> tuple[np.ndarray, list[np.ndarray]]:
    indices, batches = [], []
    for patches, index in store.loader(16, **options):  # type: ignore[arg-type]
        indices.append(index.numpy())
        batches.append(patches.numpy())
    return np.concatenate(indices), batches


def test_loader_batches_are_unit_floats_of_the_stored_patches(tmp_path: Path) -> None:
    store = PatchStore.build(grey_scans(3), tmp_path, SMALL)
    for patches, index in store.loader(16, seed=3):
        assert patches.dtype == np.float32 or str(patches.dtype) == "torch.float32"
        assert tuple(patches.shape[1:]) == (1, 16, 16)
        np.testing.assert_array_equal(patches.numpy(), unit_patches(store.read(index.numpy())))
        assert 0.0 <= float(patches.min()) <= float(patches.max()) <= 1.0


def test_loader_order_depends_on_seed_and_epoch_only(tmp_path: Path) -> None:
    store = PatchStore.build(normal_scans(3), tmp_path, SMALL)
    order, _ = _epoch(store, seed=7, epoch=2)
    assert sorted(order.tolist()) == list(range(len(store)))
    again, _ = _epoch(PatchStore.open(store.path), seed=7, epoch=2)
    np.testing.assert_array_equal(order, again)
    assert not np.array_equal(order, _epoch(store, seed=7, epoch=3)[0])
    assert not np.array_equal(order, _epoch(store, seed=8, epoch=2)[0])
    unshuffled, _ = _epoch(store, shuffle=False)
    np.testing.assert_array_equal(unshuffled, np.arange(len(store)))
    loader = store.loader(16, seed=7, epoch=0)
    loader.sampler.set_epoch(2)
    np.testing.assert_array_equal(np.concatenate([i.numpy() for _, i in loader]), order)


def test_loader_is_the_same_with_two_workers(tmp_path: Path) -> None:
    store = PatchStore.build(normal_scans(2), tmp_path, SMALL)
    order, batches = _epoch(store, seed=1, epoch=4, workers=0)
    order2, batches2 = _epoch(store, seed=1, epoch=4, workers=2)
    np.testing.assert_array_equal(order, order2)
    for one, two in zip(batches, batches2, strict=True):
        np.testing.assert_array_equal(one, two)


def test_loader_drop_last_and_lengths(tmp_path: Path) -> None:
    store = PatchStore.build(normal_scans(1), tmp_path, SMALL)
    n = len(store)
    assert n % 16
    assert len(store.loader(16)) == -(-n // 16)
    sizes = [len(i) for _, i in store.loader(16, drop_last=True)]
    assert sizes == [16] * (n // 16)


@settings(max_examples=60)
@given(
    n=st.integers(1, 200),
    world_size=st.integers(1, 5),
    batch_size=st.integers(1, 17),
    drop_last=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_shards_are_equal_disjoint_and_cover_the_epoch(
    n: int, world_size: int, batch_size: int, drop_last: bool, epoch: int
) -> None:
    def shard(rank: int) -> tuple[np.ndarray, int]:
        sampler = PatchSampler(
            n,
            batch_size,
            seed=5,
            epoch=epoch,
            drop_last=drop_last,
            rank=rank,
            world_size=world_size,
        )
        batches = [indices for indices, rows in sampler]
        assert len(batches) == len(sampler)
        assert all(np.array_equal(indices, rows) for indices, rows in (b for b in sampler))
        return (np.concatenate(batches) if batches else np.zeros(0, np.int64)), len(batches)

    shards = [shard(r) for r in range(world_size)]
    assert len({len(s) for s, _ in shards}) == 1  # equal lengths
    assert len({b for _, b in shards}) == 1  # and as many batches on every rank
    union = np.concatenate([s for s, _ in shards])
    whole = np.random.default_rng([5, epoch]).permutation(n)
    if drop_last:
        kept = n // world_size * world_size
        per_rank = n // world_size // batch_size * batch_size
        assert len(np.unique(union)) == len(union)  # disjoint
        assert set(union.tolist()) <= set(whole[:kept].tolist())
        assert len(union) == per_rank * world_size
    else:
        assert set(union.tolist()) == set(range(n))  # cover
        assert len(union) - n == (-n) % world_size  # only the padding repeats


def test_subset_holds_only_the_chosen_scans(tmp_path: Path) -> None:
    scans = normal_scans(4)
    store = PatchStore.build(scans, tmp_path, SMALL)
    part = store.subset([scans[3].id, scans[1].id])
    assert part.scan_ids == (scans[1].id, scans[3].id)
    rows = np.concatenate([_rows_of(store, 1), _rows_of(store, 3)])
    assert len(part) == len(rows)
    np.testing.assert_array_equal(part.read(np.arange(len(part))), store.read(rows))
    np.testing.assert_array_equal(part.boxes, store.boxes[rows])
    np.testing.assert_array_equal(
        part.scan_index, np.repeat([0, 1], [len(_rows_of(store, 1)), len(_rows_of(store, 3))])
    )
    order, _ = _epoch(part, seed=2)
    assert sorted(order.tolist()) == list(range(len(part)))
    with pytest.raises(XadtError, match="scan 'nope' is not in this patch store"):
        store.subset(["nope"])


# ---------------------------------------------------------------------------------------------
# Errors


def test_mixed_kinds_duplicates_and_no_scans_are_refused(tmp_path: Path) -> None:
    with pytest.raises(
        XadtError, match=r"is uint16 with 1 channel\(s\), but the patch store holds uint8"
    ):
        PatchStore.build([*normal_scans(1), *grey_scans(1)], tmp_path, SMALL)
    with pytest.raises(XadtError, match="appears twice"):
        PatchStore.build([*normal_scans(1), *normal_scans(1)], tmp_path, SMALL)
    with pytest.raises(XadtError, match="no scans to build a patch store from"):
        PatchStore.build([], tmp_path, SMALL)
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"patch": 0}, "patch"),
        ({"stride": 17}, "stride"),
        ({"downscale": 0.0}, "downscale"),
        ({"downscale": 1.5}, "downscale"),
        ({"air_level": 0}, "air_level"),
        ({"opening": 0}, "opening"),
        ({"min_area": 1.0}, "min_area"),
        ({"patch": True}, "patch"),
    ],
)
def test_bad_settings_name_the_option(options: dict, name: str) -> None:
    with pytest.raises(XadtError, match=f"The '{name}' option of the patch store must be"):
        PatchSettings(**{"patch": 16, "stride": 8, **options})


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"epoch": 1.5}, "epoch"),
        ({"workers": -1}, "workers"),
        ({"rank": 2, "world_size": 2}, "rank"),
        ({"world_size": 0}, "world_size"),
    ],
)
def test_bad_loader_options_name_the_option(tmp_path: Path, options: dict, name: str) -> None:
    store = PatchStore.build(normal_scans(1), tmp_path, SMALL)
    with pytest.raises(XadtError, match=f"The '{name}' option of the patch loader must be"):
        store.loader(**{"batch_size": 4, **options})


def test_equal_settings_give_equal_keys() -> None:
    assert PatchSettings(downscale=1) == PatchSettings(downscale=1.0)
    assert json.dumps(vars(PatchSettings(downscale=1))) == json.dumps(vars(PatchSettings()))


def test_workers_get_the_file_name_not_the_patches(tmp_path: Path) -> None:
    store = PatchStore.build(normal_scans(3), tmp_path, SMALL)
    loader = store.loader(16)
    next(iter(loader))  # maps the file in this process
    assert len(pickle.dumps(loader.dataset)) < 1000 < store.nbytes


def test_progress_counts_scans(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    scans = normal_scans(3)
    PatchStore.build(scans, tmp_path, SMALL, progress=lambda *a: calls.append(a))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    calls.clear()
    PatchStore.build(iter(scans), tmp_path, SMALL, progress=lambda *a: calls.append(a))
    assert calls == [(1, None), (2, None), (3, None)]
