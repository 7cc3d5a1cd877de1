"""Reading scans and masks: formats, naming rules, bad input and folders read lazily."""

from __future__ import annotations

import logging
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from xadt.colour import false_colour
from xadt.errors import XadtError
from xadt.scans import (
    IMAGE_EXTENSIONS,
    Scan,
    ScanFolder,
    ScanReadError,
    ScanSkippedWarning,
    full_scale,
    iter_scans,
    read_scan,
    to_rgb,
)

RNG = np.random.default_rng(0)


def _grey8(h: int = 12, w: int = 17) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _rgb8(h: int = 12, w: int = 17) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, arr: np.ndarray, **kwargs: object) -> Path:
    """Write with tifffile for .tif/.tiff and with Pillow otherwise."""
    if path.suffix.lower() in (".tif", ".tiff"):
        if arr.ndim == 3 and arr.shape[-1] == 3:
            kwargs.setdefault("photometric", "rgb")
        tifffile.imwrite(path, arr, **kwargs)  # type: ignore[arg-type]
    else:
        Image.fromarray(arr).save(path, **kwargs)
    return path


# --- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arr", "encoding"),
    [
        ("a.png", _grey8(), "grey"),
        ("a.png", _rgb8(), "rgb"),
        ("a.png", RNG.integers(0, 65536, (9, 11), dtype=np.uint16), "grey"),
        ("a.bmp", _grey8(), "grey"),
        ("a.bmp", _rgb8(), "rgb"),
        ("a.tif", _grey8(), "grey"),
        ("a.tiff", _rgb8(), "rgb"),
        ("a.tif", RNG.integers(0, 65536, (9, 11), dtype=np.uint16), "grey"),
        ("a.tif", RNG.integers(0, 65536, (9, 11, 3), dtype=np.uint16), "rgb"),
        ("a.tif", RNG.random((9, 11), dtype=np.float32), "grey"),
        ("a.TIF", RNG.random((9, 11, 3), dtype=np.float32), "rgb"),
    ],
)
def test_lossless_formats_keep_pixels_and_dtype(
    tmp_path: Path, name: str, arr: np.ndarray, encoding: str
) -> None:
    path = _save(tmp_path / name, arr)
    scan = read_scan(path)
    assert scan.id == "a"
    assert scan.encoding == encoding
    assert scan.sources == (path,)
    assert scan.masks is None
    (view,) = scan.views
    assert view.dtype == arr.dtype
    np.testing.assert_array_equal(view, arr.reshape(*arr.shape[:2], -1))


@pytest.mark.parametrize(("arr", "channels"), [(_grey8(32, 40) // 4 + 100, 1), (None, 3)])
def test_jpeg_grey_and_rgb(tmp_path: Path, arr: np.ndarray | None, channels: int) -> None:
    if arr is None:  # smooth colour image: JPEG keeps it within a few grey levels
        yy, xx = np.mgrid[0:32, 0:40]
        arr = np.stack([yy * 4, xx * 4, np.full_like(yy, 128)], axis=-1).astype(np.uint8)
    path = _save(tmp_path / "j.jpeg", arr, quality=95)
    (view,) = read_scan(path).views
    assert view.shape == (32, 40, channels)
    assert view.dtype == np.uint8
    assert np.abs(view.astype(int) - arr.reshape(view.shape)).mean() < 3


def test_rgba_png_and_tiff_drop_alpha(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    png = _save(tmp_path / "p.png", rgba)
    tif = _save(tmp_path / "t.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    for path in (png, tif):
        scan = read_scan(path)
        assert scan.encoding == "rgb"
        np.testing.assert_array_equal(scan.views[0], rgba[..., :3])


def test_grey_alpha_and_bilevel_become_grey(tmp_path: Path) -> None:
    la = RNG.integers(0, 256, (8, 9, 2), dtype=np.uint8)
    (view,) = read_scan(_save(tmp_path / "la.png", la)).views
    np.testing.assert_array_equal(view[..., 0], la[..., 0])
    bits = RNG.random((8, 9)) > 0.5
    (view,) = read_scan(_save(tmp_path / "bits.png", bits)).views
    assert view.dtype == np.uint8
    np.testing.assert_array_equal(view[..., 0], np.where(bits, 255, 0))


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_palette_images_become_rgb(tmp_path: Path, ext: str) -> None:
    colours = np.array([[0, 0, 0], [255, 0, 0], [10, 200, 30], [250, 250, 250]], dtype=np.uint8)
    index = RNG.integers(0, 4, (8, 9), dtype=np.uint8)
    im = Image.frombytes("P", (9, 8), index.tobytes())
    im.putpalette(colours.ravel().tolist())
    im.save(tmp_path / f"pal{ext}")
    scan = read_scan(tmp_path / f"pal{ext}")
    assert scan.encoding == "rgb"
    np.testing.assert_array_equal(scan.views[0], colours[index])


def test_multipage_tiff_is_one_scan_with_a_view_per_page(tmp_path: Path) -> None:
    pages = [np.full((6, 7), 40 * k, dtype=np.uint16) for k in range(3)]
    with tifffile.TiffWriter(tmp_path / "bag.tif") as tw:
        for page in pages:
            tw.write(page)
    scan = read_scan(tmp_path / "bag.tif")
    assert len(scan.views) == 3
    for view, page in zip(scan.views, pages, strict=True):
        np.testing.assert_array_equal(view[..., 0], page)


def test_lzw_tiff_is_read_through_pillow(tmp_path: Path) -> None:
    # tifffile cannot decode LZW without imagecodecs; Pillow can, for grey and 8-bit colour.
    grey16 = RNG.integers(0, 65536, (8, 9), dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g.tif", compression="tiff_lzw")
    frames = [Image.fromarray(_rgb8(5, 6)) for _ in range(2)]
    frames[0].save(
        tmp_path / "m.tif", compression="tiff_lzw", save_all=True, append_images=frames[1:]
    )
    (view,) = read_scan(tmp_path / "g.tif").views
    assert view.dtype == np.uint16
    np.testing.assert_array_equal(view[..., 0], grey16)
    views = read_scan(tmp_path / "m.tif").views
    for view, frame in zip(views, frames, strict=True):
        np.testing.assert_array_equal(view, np.asarray(frame))


def test_16bit_colour_tiff_needing_imagecodecs_is_refused_not_truncated(tmp_path: Path) -> None:
    path = _save(tmp_path / "c.tif", np.zeros((4, 5, 3), np.uint16), photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].tags["Compression"].valueoffset
        byteorder = tif.byteorder
    data = bytearray(path.read_bytes())
    data[offset : offset + 2] = (5).to_bytes(2, "little" if byteorder == "<" else "big")  # LZW
    path.write_bytes(bytes(data))
    with pytest.raises(ScanReadError, match=r"c\.tif: 16-bit colour TIFF .* needs .*imagecodecs"):
        read_scan(path)


def test_tiff_layouts_and_types(tmp_path: Path) -> None:
    rgb = _rgb8()
    planar = _save(
        tmp_path / "planar.tif",
        np.moveaxis(rgb, -1, 0),
        photometric="rgb",
        planarconfig="separate",
    )
    np.testing.assert_array_equal(read_scan(planar).views[0], rgb)
    big = RNG.integers(0, 65536, (5, 6), dtype=np.uint16)
    view = read_scan(_save(tmp_path / "be.tif", big, byteorder=">")).views[0]
    assert view.dtype == np.uint16
    assert view.dtype.isnative
    np.testing.assert_array_equal(view[..., 0], big)
    white0 = _save(tmp_path / "inv.tif", np.array([[0, 255]], np.uint8), photometric="miniswhite")
    np.testing.assert_array_equal(read_scan(white0).views[0][..., 0], [[255, 0]])
    ints = _save(tmp_path / "i32.tif", np.array([[0, 70, 65535]], np.int32))
    view = read_scan(ints).views[0]
    assert view.dtype == np.uint16
    np.testing.assert_array_equal(view[..., 0], [[0, 70, 65535]])
    f64 = _save(tmp_path / "f64.tif", np.array([[0.25, 1.0]]))
    assert read_scan(f64).views[0].dtype == np.float32
    with pytest.raises(ScanReadError, match=r"neg\.tif: int32 pixel values outside 0\.\.65535"):
        read_scan(_save(tmp_path / "neg.tif", np.array([[-1, 5]], np.int32)))


# --- naming rules ------------------------------------------------------------------------------


def test_views_are_ordered_by_number_not_by_name(tmp_path: Path) -> None:
    for k in range(11):
        _save(tmp_path / f"bag_1_v{k}.png", np.full((4, 5), k, np.uint8))
    scan = read_scan(sorted(tmp_path.iterdir()))  # sorted by name: v0, v1, v10, v2, ...
    assert scan.id == "bag_1"
    assert [int(v[0, 0, 0]) for v in scan.views] == list(range(11))
    assert [p.name for p in scan.sources] == [f"bag_1_v{k}.png" for k in range(11)]


def test_dual_energy_pair_is_one_view_high_then_low(tmp_path: Path) -> None:
    high = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    low = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    _save(tmp_path / "p_low.png", low)
    _save(tmp_path / "p_high.png", high)
    scan = read_scan([tmp_path / "p_low.png", tmp_path / "p_high.png"])
    assert scan.encoding == "dual-energy"
    (view,) = scan.views
    assert view.shape == (6, 7, 2)
    assert view.dtype == np.uint16
    np.testing.assert_array_equal(view[..., 0], high)
    np.testing.assert_array_equal(view[..., 1], low)
    assert [p.name for p in scan.sources] == ["p_high.png", "p_low.png"]


def test_dual_view_dual_energy(tmp_path: Path) -> None:
    for k in range(2):
        _save(tmp_path / f"p_v{k}_high.png", np.full((5, 6), 10 + k, np.uint8))
        _save(tmp_path / f"p_v{k}_low.png", np.full((5, 6), 20 + k, np.uint8))
    scan = read_scan(list(tmp_path.iterdir()))
    assert scan.encoding == "dual-energy"
    assert [v[0, 0].tolist() for v in scan.views] == [[10, 20], [11, 21]]


def test_rgb_by_default_energies_on_request(tmp_path: Path) -> None:
    rgb = _rgb8(5, 6)
    for k in range(2):
        _save(tmp_path / f"s_v{k}.png", rgb)
        _save(tmp_path / f"s_v{k}_high.png", np.full((5, 6), 7, np.uint16))
        _save(tmp_path / f"s_v{k}_low.png", np.full((5, 6), 9, np.uint16))
    files = list(tmp_path.iterdir())
    default = read_scan(files)
    assert default.encoding == "rgb"
    assert len(default.views) == 2
    np.testing.assert_array_equal(default.views[1], rgb)
    energies = read_scan(files, energies=True)
    assert energies.encoding == "dual-energy"
    assert energies.views[1][0, 0].tolist() == [7, 9]
    folder = list(iter_scans(tmp_path, energies=True))
    assert [s.encoding for s in folder] == ["dual-energy"]


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["x.png", "x_v0.png"], r"x\.png: scan 'x' also has per-view files such as x_v0\.png"),
        (["x_v0.png", "x_v2.png"], r"scan 'x' has no view 1"),
        (["x_v20240101.png"], r"x_v20240101\.png: scan 'x' has no view 0"),
        (["x.png", "x.tif"], r"x\.tif: same scan view as x\.png"),
        (["x_high.png"], r"x_high\.png: has no matching x_low energy image"),
        (["x_v1_low.png", "x_v0.png"], r"x_v1_low\.png: has no matching x_v1_high energy image"),
        (["x.png", "y.png"], r"x\.png: belongs to a different scan than y\.png"),
    ],
)
def test_naming_mistakes_name_the_file(tmp_path: Path, names: list[str], match: str) -> None:
    for name in names:
        _save(tmp_path / name, _grey8(4, 4))
    with pytest.raises(ScanReadError, match=match):
        read_scan([tmp_path / n for n in names])


def test_energies_requested_without_a_pair(tmp_path: Path) -> None:
    path = _save(tmp_path / "x.png", _grey8())
    with pytest.raises(ScanReadError, match=r"x\.png: energies were requested but .* no _high"):
        read_scan(path, energies=True)


def test_views_must_share_an_encoding(tmp_path: Path) -> None:
    _save(tmp_path / "m_v0.png", _grey8())
    _save(tmp_path / "m_v1.png", _rgb8())
    with pytest.raises(ScanReadError, match=r"m_v1\.png: view 1 of scan 'm' is rgb but view 0"):
        read_scan(list(tmp_path.iterdir()))


@pytest.mark.parametrize(
    ("high", "low", "match"),
    [
        (_grey8(4, 5), _grey8(4, 6), r"e_low\.png: is 4x6 uint8 but .* e_high\.png is 4x5 uint8"),
        (_rgb8(4, 5), _grey8(4, 5), r"e_high\.png: energy image is in colour"),
    ],
)
def test_energy_pairs_must_match(
    tmp_path: Path, high: np.ndarray, low: np.ndarray, match: str
) -> None:
    paths = [_save(tmp_path / "e_high.png", high), _save(tmp_path / "e_low.png", low)]
    with pytest.raises(ScanReadError, match=match):
        read_scan(paths)


def test_multipage_tiff_cannot_be_one_view_of_several(tmp_path: Path) -> None:
    with tifffile.TiffWriter(tmp_path / "t_v0.tif") as tw:
        tw.write(_grey8())
        tw.write(_grey8())
    _save(tmp_path / "t_v1.tif", _grey8())
    with pytest.raises(ScanReadError, match=r"t_v0\.tif: has 2 pages but is one view"):
        read_scan(list(tmp_path.iterdir()))


# --- masks -------------------------------------------------------------------------------------


def test_masks_are_boolean_non_zero_per_view(tmp_path: Path) -> None:
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir()
    masks.mkdir()
    for k in range(2):
        _save(scans / f"d_v{k}.png", _grey8(6, 8))
    truth = np.zeros((6, 8), np.uint8)
    truth[1:3, 2:5] = 1  # any non-zero value marks an anomaly
    _save(masks / "d_v1.png", truth)
    scan = read_scan(list(scans.iterdir()), masks_dir=masks)
    assert scan.masks is not None
    assert scan.masks[0] is None
    np.testing.assert_array_equal(scan.masks[1], truth > 0)
    assert scan.masks[1].dtype == bool
    _save(masks / "e.png", np.full((6, 8), 255, np.uint8))
    _save(scans / "e.png", _grey8(6, 8))
    (folder_scan,) = [s for s in iter_scans(scans, masks=masks) if s.id == "e"]
    assert folder_scan.masks is not None
    assert folder_scan.masks[0].all()


def test_mask_of_wrong_size_names_the_mask(tmp_path: Path) -> None:
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir()
    masks.mkdir()
    path = _save(scans / "q.png", _grey8(6, 8))
    _save(masks / "q.png", np.zeros((6, 9), np.uint8))
    with pytest.raises(ScanReadError, match=r"masks/q\.png: mask is 6x9 pixels but its view"):
        read_scan(path, masks_dir=masks)


def test_single_mask_for_a_multi_view_scan_is_refused(tmp_path: Path) -> None:
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    scans.mkdir()
    masks.mkdir()
    paths = [_save(scans / f"r_v{k}.png", _grey8(6, 8)) for k in range(2)]
    _save(masks / "r.png", np.zeros((6, 8), np.uint8))
    with pytest.raises(ScanReadError, match=r"r\.png: one mask for scan 'r', which has 2 views"):
        read_scan(paths, masks_dir=masks)
    (masks / "r.png").unlink()
    _save(masks / "r_v2.png", np.zeros((6, 8), np.uint8))
    with pytest.raises(ScanReadError, match=r"r_v2\.png: mask for view 2, but scan 'r' has 2"):
        read_scan(paths, masks_dir=masks)


# --- bad input ---------------------------------------------------------------------------------


def _truncated(path: Path, arr: np.ndarray) -> Path:
    _save(path, arr)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_file(kind: str, folder: Path) -> Path:
    """A file in ``folder`` that must not read, of the given kind."""
    if kind == "empty":
        path = folder / "e.png"
        path.write_bytes(b"")
    elif kind.startswith("truncated"):
        ext = kind.split()[1]
        path = _truncated(folder / f"t.{ext}", _rgb8(64, 64) if ext == "jpg" else _grey8(64, 64))
    elif kind == "text":
        path = folder / "n.png"
        path.write_text("not an image")
    elif kind == "zero":  # a TIFF whose ImageWidth tag says 0
        path = _save(folder / "z.tif", _grey8(4, 4))
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages[0].tags["ImageWidth"]
            offset, nbytes = tag.valueoffset, tag.valuebytecount
        data = bytearray(path.read_bytes())
        data[offset : offset + nbytes] = bytes(nbytes)
        path.write_bytes(bytes(data))
    elif kind == "gif":
        path = _save(folder / "g.png", _grey8(), format="GIF")
    else:  # a PNG cut inside its header
        path = folder / "h.png"
        path.write_bytes(_save(folder / "ok.png", _grey8()).read_bytes()[:30])
    return path


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("empty", r"e\.png: file is empty \(0 bytes\)"),
        ("truncated png", r"t\.png: damaged or truncated image \(PNG 'IDAT' chunk runs past"),
        ("truncated jpg", r"t\.jpg: damaged or truncated image"),
        ("truncated bmp", r"t\.bmp: damaged or truncated image"),
        ("truncated tif", r"t\.tif: damaged or truncated TIFF"),
        ("text", r"n\.png: not a PNG, JPEG, BMP or TIFF image$"),
        ("gif", r"g\.png: GIF image, not a PNG, JPEG, BMP or TIFF image$"),
        ("zero", r"z\.tif: image has zero size \(4x0 pixels\)$"),
        ("header", r"h\.png: damaged PNG file"),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path: Path, kind: str, match: str) -> None:
    path = _bad_file(kind, tmp_path)
    with pytest.raises(ScanReadError, match=match) as info:
        read_scan(path)
    assert "\n" not in str(info.value)
    assert info.value.path == path


def test_missing_file_and_folder_named_like_an_image(tmp_path: Path) -> None:
    with pytest.raises(ScanReadError, match=r"nope\.png: no such file"):
        read_scan(tmp_path / "nope.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ScanReadError, match=r"dir\.png: is a folder"):
        read_scan(tmp_path / "dir.png")


def test_16bit_colour_png_is_refused(tmp_path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + bytes(6 * 3) for _ in range(2))  # 2x3 RGB, 16 bits per sample
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 2, 0, 0, 0))
    png = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    (tmp_path / "c16.png").write_bytes(png)
    with pytest.raises(ScanReadError, match=r"c16\.png: 16-bit colour PNG is not supported"):
        read_scan(tmp_path / "c16.png")


def test_max_pixels_is_checked_before_decoding(tmp_path: Path) -> None:
    png = _save(tmp_path / "big.png", _grey8(20, 30))
    tif = _save(tmp_path / "big.tif", _grey8(20, 30))
    for path in (png, tif):
        with pytest.raises(ScanReadError, match=r"20x30 = 600 pixels, over the limit of 599"):
            read_scan(path, max_pixels=599)
        assert read_scan(path, max_pixels=600).views[0].shape == (20, 30, 1)
    with pytest.raises(XadtError, match=r"'max_pixels' option must be an integer >= 1\. Got 0"):
        read_scan(png, max_pixels=0)


def test_pillow_decompression_bomb_becomes_our_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(tmp_path / "bomb.png", _grey8(20, 30))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 250)  # 600 px > 2 x 250: Pillow refuses
    with pytest.raises(ScanReadError, match=r"bomb\.png: image too large"):
        read_scan(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # Pillow only warns; max_pixels rules
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_scan(path).views[0].shape == (20, 30, 1)


def test_tifffile_log_does_not_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _save(tmp_path / "c.tif", _grey8(64, 64))
    path.write_bytes(path.read_bytes()[:8])  # header only: the first IFD is missing
    with caplog.at_level(logging.DEBUG), pytest.raises(ScanReadError, match=r"c\.tif: "):
        read_scan(path)
    assert not [r for r in caplog.records if r.name.startswith("tifffile")]


# --- folders -----------------------------------------------------------------------------------


def test_folder_groups_by_id_sorted_and_ignores_other_files(tmp_path: Path) -> None:
    for name in ("b_v0.png", "b_v1.png", "a.tif", "c_high.png", "c_low.png"):
        _save(tmp_path / name, _grey8())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "z.png", _grey8())
    folder = iter_scans(tmp_path)
    assert isinstance(folder, ScanFolder)
    assert len(folder) == 3
    assert folder.ids == ["a", "b", "c"]
    scans = list(folder)
    assert [(s.id, len(s.views), s.encoding) for s in scans] == [
        ("a", 1, "grey"),
        ("b", 2, "grey"),
        ("c", 1, "dual-energy"),
    ]
    assert folder.skipped == []
    assert folder.summary() == "3 of 3 scans read, none skipped"
    folder.raise_if_skipped()


def test_folder_skips_bad_scans_warns_and_summarises(tmp_path: Path) -> None:
    for name in ("a.png", "c.png", "e.png"):
        _save(tmp_path / name, _grey8())
    (tmp_path / "b.png").write_bytes(b"")
    _truncated(tmp_path / "d.jpg", _rgb8(64, 64))
    folder = iter_scans(tmp_path)
    with pytest.warns(ScanSkippedWarning) as record:
        ids = [scan.id for scan in folder]
    assert ids == ["a", "c", "e"]
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "skipped scan 'b'" in messages[0]
    assert "b.png: file is empty" in messages[0]
    assert "d.jpg: damaged or truncated" in messages[1]
    assert [(p.name, r.split(" (")[0]) for p, r in folder.skipped] == [
        ("b.png", "file is empty"),
        ("d.jpg", "damaged or truncated image"),
    ]
    assert folder.n_read == 3
    assert folder.summary().startswith(
        "2 of 5 scans skipped: b.png: file is empty (0 bytes); d.jpg"
    )
    with pytest.raises(XadtError, match=r"2 of 5 scans skipped: b\.png: file is empty"):
        folder.raise_if_skipped()


def test_folder_summary_shortens_long_lists(tmp_path: Path) -> None:
    for k in range(5):
        (tmp_path / f"s{k}.png").write_bytes(b"")
    folder = iter_scans(tmp_path)
    with pytest.warns(ScanSkippedWarning):
        assert list(folder) == []
    assert folder.summary().endswith("s2.png: file is empty (0 bytes); and 2 more")


def test_folder_reads_lazily(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _grey8())
    _save(tmp_path / "b.png", _grey8())
    folder = iter_scans(tmp_path)
    scans = iter(folder)
    assert next(scans).id == "a"
    (tmp_path / "b.png").write_bytes(b"")  # b has not been read yet, so this spoils it
    with pytest.warns(ScanSkippedWarning, match=r"b\.png: file is empty"):
        assert list(scans) == []
    (tmp_path / "b.png").unlink()
    with pytest.warns(ScanSkippedWarning, match=r"b\.png: no such file|b\.png: cannot open"):
        assert [s.id for s in folder] == ["a"]
    assert len(folder.skipped) == 1  # a second pass starts a fresh record


def test_folder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(XadtError, match=r"absent: no such file or folder$"):
        iter_scans(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(XadtError, match=r"empty: no image files \(\.png, .*\.tiff\) in this"):
        iter_scans(tmp_path / "empty")


def test_missing_mask_folder_is_an_error(tmp_path: Path) -> None:
    _save(tmp_path / "a.png", _grey8())
    with pytest.raises(XadtError, match=r"gt: mask folder does not exist"):
        iter_scans(tmp_path, masks=tmp_path / "gt")


def test_image_extensions_cover_the_documented_formats() -> None:
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


# --- conversions -------------------------------------------------------------------------------


def test_full_scale() -> None:
    assert full_scale(np.uint8) == 255
    assert full_scale(np.uint16) == 65535
    assert full_scale(np.float32) == 1.0
    with pytest.raises(ValueError, match="int32"):
        full_scale(np.int32)


def test_to_rgb_repeats_grey_and_keeps_rgb() -> None:
    grey = Scan("g", [_grey8()[..., None]], encoding="grey", masks=[np.ones((12, 17), bool)])
    rgb = to_rgb(grey)
    assert rgb.encoding == "rgb"
    assert rgb.masks is grey.masks
    np.testing.assert_array_equal(rgb.views[0], np.repeat(grey.views[0], 3, axis=2))
    already = Scan("c", [_rgb8()])
    assert to_rgb(already) is already


def test_to_rgb_renders_dual_energy_with_false_colour() -> None:
    high = np.linspace(1000, 65535, 6 * 7, dtype=np.uint16).reshape(6, 7)
    low = (high // 2).astype(np.uint16)
    scan = Scan("d", [np.stack([high, low], axis=-1)], encoding="dual-energy")
    rgb = to_rgb(scan)
    assert rgb.encoding == "rgb"
    (view,) = rgb.views
    assert view.shape == (6, 7, 3)
    assert view.dtype == np.uint8
    expected = false_colour(high.astype(np.float32) / 65535, low.astype(np.float32) / 65535)
    np.testing.assert_array_equal(view, expected)


def test_files_folders_and_patterns_are_inputs_too(tmp_path: Path) -> None:
    for name in ("a.png", "b_v0.png", "b_v1.png", "c.tif", "notes.txt"):
        if name.endswith(".txt"):
            (tmp_path / name).write_text("not a scan")
        else:
            _save(tmp_path / name, _grey8())
    other = tmp_path / "other"
    other.mkdir()
    _save(other / "d.png", _grey8())
    inputs = [tmp_path / "a.png", tmp_path / "b_v*.png", other]
    folder = iter_scans(inputs)
    assert folder.ids == ["a", "b", "d"]
    assert [len(s.views) for s in folder] == [1, 2, 1]
    assert folder.folder == tmp_path
    assert iter_scans(str(tmp_path / "*.tif")).ids == ["c"]


def test_recursive_ids_keep_the_subfolder_so_equal_names_stay_apart(tmp_path: Path) -> None:
    for sub in ("day1", "day2/late", ".hidden"):
        (tmp_path / sub).mkdir(parents=True)
        _save(tmp_path / sub / "bag.png", _grey8())
    _save(tmp_path / "top.png", _grey8())
    assert iter_scans(tmp_path).ids == ["top"]
    assert iter_scans(tmp_path, recursive=True).ids == ["day1/bag", "day2/late/bag", "top"]
    pattern = str(tmp_path / "**" / "bag.png")
    assert len(iter_scans(pattern, recursive=True)) == 1  # one id "bag" from two files
    with pytest.warns(ScanSkippedWarning, match="same scan view"):
        assert list(iter_scans(pattern, recursive=True)) == []


def test_recursive_masks_sit_in_the_same_subfolders(tmp_path: Path) -> None:
    scans, masks = tmp_path / "scans", tmp_path / "masks"
    for root in (scans, masks):
        (root / "day1").mkdir(parents=True)
        _save(root / "day1" / "bag.png", _grey8())
    _save(scans / "top.png", _grey8())
    read = {s.id: s for s in iter_scans(scans, recursive=True, masks=masks)}
    assert read["day1/bag"].masks[0] is not None
    assert read["top"].masks is None


def test_bad_inputs_are_named_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(XadtError, match=r"notes\.txt: not an image file \(\.png"):
        iter_scans([tmp_path / "notes.txt"])
    with pytest.raises(XadtError, match=r"nothing\*\.png: no image file matches this pattern$"):
        iter_scans(tmp_path / "nothing*.png")
    with pytest.raises(XadtError, match="no scans given"):
        iter_scans([])


def test_a_folder_whose_images_are_in_subfolders_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "2026" / "day1").mkdir(parents=True)
    _save(tmp_path / "2026" / "day1" / "bag.png", _grey8())
    with pytest.raises(
        XadtError, match=r"no image files .* its subfolder 2026/day1/ holds some: name "
    ):
        iter_scans(tmp_path)
    assert iter_scans(tmp_path, recursive=True).ids == ["2026/day1/bag"]
