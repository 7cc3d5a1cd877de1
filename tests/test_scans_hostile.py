"""Hostile scan files (issue 9): each failure of one file is a one-line skip, memory is bounded
from the headers, silently wrong decodes are refused where the format can tell, and odd folder
entries are named. Each test builds its own small hostile file; big files are forged headers."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from tests.forge import LONG, SHORT, Page, forged_png, forged_tiff, jpeg_bytes, set_jpeg_size
from xadt.errors import XadtError
from xadt.scans import (
    DEFAULT_MAX_BYTES,
    MAX_TIFF_PAGES,
    ScanReadError,
    ScanSkippedWarning,
    iter_scans,
    printable,
    read_scan,
)

RNG = np.random.default_rng(9)

# --- helpers ----------------------------------------------------------------------------------


def _smooth_rgb(h: int = 64, w: int = 80) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy * 3, xx * 3, np.full_like(yy, 200)], axis=-1).astype(np.uint8)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _refused(path: Path, match: str, **kwargs: object) -> ScanReadError:
    with pytest.raises(ScanReadError, match=match) as info:
        read_scan(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(printable(path) + ": ")
    return info.value


# --- decoder failures become one-line skips ----------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_lzma_tiff_damage_is_a_clean_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "l.tif"
    tifffile.imwrite(path, RNG.integers(0, 65536, (64, 80), dtype=np.uint16), compression="lzma")
    with tifffile.TiffFile(path) as tif:
        start, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data = bytearray(path.read_bytes())
    if damage == "truncated":  # the strip still ends inside the file; the LZMA stream does not
        data[start + count // 2 : start + count] = bytes(count - count // 2)
    else:
        data[start + count // 2] ^= 0xFF
    _write(path, bytes(data))
    _refused(path, r"l\.tif: damaged or truncated TIFF \(.*(Corrupt|ended|LZMA|data)")


@pytest.mark.parametrize(
    ("error", "match"),
    [
        (MemoryError(), r"a\.tif: not enough memory to decode it \(lower max_bytes"),
        (AttributeError("'int' object has no attribute 'name'"), r"a\.tif: damaged or .* TIFF \("),
        (RecursionError("maximum recursion depth"), r"a\.tif: damaged or truncated TIFF \(max"),
    ],
)
def test_any_decoder_failure_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, match: str
) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((4, 5), np.uint8))

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(tifffile.TiffPage, "asarray", fail)
    _refused(tmp_path / "a.tif", match)


def test_unknown_photometric_is_named(tmp_path: Path) -> None:
    blob, _ = forged_tiff([Page(4, 3, bytes(12), photometric=77)])
    _refused(_write(tmp_path / "p.tif", blob), r"unsupported TIFF colour space Photometric 77$")


def test_unknown_compression_is_a_clean_error(tmp_path: Path) -> None:
    blob, _ = forged_tiff([Page(4, 3, bytes(12), compression=60001)])
    _refused(_write(tmp_path / "c.tif", blob), r"c\.tif: damaged or truncated TIFF \(")


@pytest.mark.parametrize("loop_to", [0, 1, 2])
def test_ifd_chain_loop_is_refused_at_once(tmp_path: Path, loop_to: int) -> None:
    page = Page(4, 3, bytes(12))
    blob, _ = forged_tiff([page, page, page], loop_to=loop_to)
    start = time.perf_counter()
    _refused(
        _write(tmp_path / "loop.tif", blob),
        rf"IFD chain loops: page 2 points back to page {loop_to}",
    )
    assert time.perf_counter() - start < 5


def test_page_count_is_bounded_before_pages_are_parsed(tmp_path: Path) -> None:
    blob, _ = forged_tiff([Page(1, 1, b"\x80")] * 20_000)
    start = time.perf_counter()
    _refused(_write(tmp_path / "many.tif", blob), rf"more than {MAX_TIFF_PAGES:,} pages")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(("height", "width"), [(1, 10**8), (10**8, 1)])
def test_absurd_dimensions_with_little_data_are_refused_before_allocating(
    tmp_path: Path, height: int, width: int
) -> None:
    blob, _ = forged_tiff([Page(width, height, bytes(64))])
    _refused(_write(tmp_path / "thin.tif", blob), r"strips hold 64 of the 100,000,000 bytes")


def test_budget_counts_samples_not_just_pixels(tmp_path: Path) -> None:
    # 1000 x 1000 pixels is far under max_pixels, but 1000 samples each make a gigabyte.
    blob, _ = forged_tiff([Page(1000, 1000, bytes(8), samples=1000)])
    error = _refused(
        _write(tmp_path / "wide.tif", blob),
        r"decoded, it would take 1,000,000,000 bytes \(1000x1000 pixels x 1000 samples x 1 "
        r"bytes\), over the limit of 536,870,912 bytes per scan \(--max-scan-bytes\)",
    )
    assert "(--max-scan-bytes); raise it" in error.reason


def test_budget_counts_pages_bytes_per_sample_and_every_file_of_a_scan(tmp_path: Path) -> None:
    pages = [RNG.integers(0, 65536, (10, 10), dtype=np.uint16) for _ in range(3)]
    with tifffile.TiffWriter(tmp_path / "m.tif") as tw:
        for page in pages:
            tw.write(page)
    _refused(
        tmp_path / "m.tif",
        r"600 bytes \(10x10 pixels x 1 samples x 2 bytes x 3 pages\)",
        max_bytes=599,
    )
    assert len(read_scan(tmp_path / "m.tif", max_bytes=600).views) == 3
    views = []
    for k in range(2):
        views.append(tmp_path / f"s_v{k}.png")
        Image.fromarray(np.full((10, 10), 9, np.uint8)).save(views[-1])
    with pytest.raises(ScanReadError, match=r"s_v1\.png: .* other files already take 100"):
        read_scan(views, max_bytes=150)
    assert len(read_scan(views, max_bytes=200).views) == 2
    with pytest.raises(XadtError, match=r"'max_bytes' option must be an integer >= 1"):
        read_scan(views, max_bytes=0)
    assert DEFAULT_MAX_BYTES == 512 * 2**20


def test_forged_png_header_is_refused_without_decoding(tmp_path: Path) -> None:
    # The header of a 10000 x 10000 RGB image (300 MB decoded) over a few bytes of data.
    path = _write(
        tmp_path / "bomb.png", forged_png(10_000, 10_000, zlib.compress(bytes(301)), colour=2)
    )
    _refused(path, r"300,000,000 bytes .* over the limit of 100,000,000", max_bytes=10**8)
    start = time.perf_counter()
    _refused(path, r"PNG image data holds 301 of the 300,010,000 bytes its size needs")
    assert time.perf_counter() - start < 5


def test_deflate_bomb_png_decodes_within_the_budget(tmp_path: Path) -> None:
    # All-black rows compress about 1000:1: 2 MB of pixels in a 2 KB file.
    rows = bytes(2000 * 1001)
    path = _write(tmp_path / "black.png", forged_png(1000, 2000, zlib.compress(rows)))
    assert path.stat().st_size < 5000
    _refused(path, r"2,000,000 bytes", max_bytes=1_999_999)
    (view,) = read_scan(path, max_bytes=2_000_000).views
    assert view.shape == (2000, 1000, 1)
    assert not view.any()


def test_jpeg_claiming_more_pixels_than_its_bytes_can_hold(tmp_path: Path) -> None:
    data = set_jpeg_size(jpeg_bytes(_smooth_rgb(), quality=90), 10_000, 10_000)
    path = _write(tmp_path / "huge.jpg", data)
    start = time.perf_counter()
    _refused(path, r"JPEG header claims 10000x10000 pixels, but its [\d,]+ bytes cannot hold")
    assert time.perf_counter() - start < 5


# --- silently wrong decodes --------------------------------------------------------------------


def test_jpeg_cut_short_with_an_end_marker_appended(tmp_path: Path) -> None:
    data = jpeg_bytes(_smooth_rgb(), quality=90)
    path = _write(tmp_path / "cut.jpg", data[: len(data) * 2 // 3] + b"\xff\xd9")
    _refused(path, r"JPEG data ends early: the decoder filled the rest with grey")
    full = _write(tmp_path / "full.jpg", data)
    assert read_scan(full).views[0].shape == (64, 80, 3)


def test_png_whose_data_ends_cleanly_after_some_rows(tmp_path: Path) -> None:
    rows = b"".join(b"\0" + bytes([200] * 10) for _ in range(3))  # 3 of 8 rows
    _refused(
        _write(tmp_path / "rows.png", forged_png(10, 8, zlib.compress(rows))),
        r"holds 33 of the 88 bytes",
    )


def test_png_bit_flip_is_caught_by_its_crc(tmp_path: Path) -> None:
    rows = b"".join(b"\0" + bytes(range(10)) for _ in range(8))
    data = bytearray(forged_png(10, 8, zlib.compress(rows)))
    data[-20] ^= 0x04  # inside IDAT
    _refused(_write(tmp_path / "flip.png", bytes(data)), r"PNG 'IDAT' chunk at byte \d+: bad CRC")


def test_truncated_multipage_tiff_is_not_read_as_fewer_views(tmp_path: Path) -> None:
    path = tmp_path / "bag.tif"
    with tifffile.TiffWriter(path) as tw:
        for k in range(3):
            tw.write(np.full((16, 16), k, np.uint8))
    with tifffile.TiffFile(path) as tif:
        third = tif.pages[2].offset
    _write(path, path.read_bytes()[:third])  # pages 0 and 1 intact, page 2's IFD gone
    _refused(path, r"IFD of page 2 at byte [\d,]+ lies past the end")


def test_truncated_tiff_strip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.tif"
    tifffile.imwrite(path, np.full((32, 32), 7, np.uint8))
    _write(path, path.read_bytes()[:-100])
    _refused(path, r"strip or tile 0 ends at byte [\d,]+, past the end")


def test_short_palettes_are_refused(tmp_path: Path) -> None:
    index = b"".join(b"\0" + bytes([5] * 10) for _ in range(8))
    png = forged_png(10, 8, zlib.compress(index), colour=3, plte=bytes([10, 20, 30, 40, 50, 60]))
    _refused(_write(tmp_path / "p.png", png), r"palette has 2 colours but pixels use colour 5")
    colormap = (SHORT, [0, 65535, 0, 0, 65535, 0])  # two entries for 8-bit indices
    page = Page(4, 2, bytes([0, 1, 3, 1] * 2), photometric=3, tags={320: colormap})
    blob, _ = forged_tiff([page])
    _refused(
        _write(tmp_path / "p.tif", blob),
        r"p\.tif: (palette has 2 colours but pixels "
        r"use colour 3|damaged or truncated TIFF)",
    )


@pytest.mark.parametrize("palette", [[0, 0, 0, 255, 255, 255], [0, 0, 0, 1, 1, 1, 2, 2, 2]])
def test_bmp_pixels_beyond_a_short_palette_are_refused(tmp_path: Path, palette: list[int]) -> None:
    # A grey-ramp palette makes Pillow read indices as grey levels, hiding the short palette.
    im = Image.frombytes("P", (8, 6), bytes([0, 1, 5, 1] * 12))
    im.putpalette(palette)
    im.save(tmp_path / "p.bmp")
    data = bytearray((tmp_path / "p.bmp").read_bytes())
    struct.pack_into("<I", data, 46, len(palette) // 3)  # biClrUsed: the colours in the palette
    path = _write(tmp_path / "p.bmp", bytes(data))
    _refused(path, rf"palette has {len(palette) // 3} colours but pixels use colour 5")


def test_truncated_files_are_refused_even_if_pillow_is_told_to_load_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpeg = jpeg_bytes(_smooth_rgb(), quality=90)
    _refused(_write(tmp_path / "j.jpg", jpeg[: len(jpeg) * 2 // 3]), r"j\.jpg: damaged")
    rows = b"".join(b"\0" + bytes(range(10)) for _ in range(8))
    png = forged_png(10, 8, zlib.compress(rows))
    _refused(_write(tmp_path / "p.png", png[: len(png) - 30]), r"p\.png: damaged or truncated")


def test_float_tiff_with_nan_or_infinity_is_refused(tmp_path: Path) -> None:
    arr = np.full((4, 5), 0.5, np.float32)
    arr[1, 2], arr[3, 4] = np.nan, np.inf
    tifffile.imwrite(tmp_path / "nan.tif", arr)
    _refused(tmp_path / "nan.tif", r"2 pixel value\(s\) are NaN or infinite")
    tifffile.imwrite(tmp_path / "big.tif", np.array([[0.5, 1e300]]))  # overflows float32
    _refused(tmp_path / "big.tif", r"1 pixel value\(s\) are NaN or infinite")


# --- nothing reaches stderr --------------------------------------------------------------------


def test_libtiff_messages_do_not_reach_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    arr = (np.arange(64 * 80) % 251).astype(np.uint8).reshape(64, 80)
    path = tmp_path / "lzw.tif"
    Image.fromarray(arr).save(path, compression="tiff_lzw")  # read through Pillow and libtiff
    with tifffile.TiffFile(path) as tif:
        start, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data = bytearray(path.read_bytes())
    for k in range(0, count, 7):
        data[start + k] ^= 0x5A
    _write(path, bytes(data))
    error = _refused(path, r"lzw\.tif: damaged or truncated TIFF \(")
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    assert "Using code not yet in table" in error.reason  # what libtiff printed, kept for the user


def test_tifffile_warnings_are_errors_and_stay_off_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # An XResolution tag whose value lies past the end: tifffile logs it and reads on.
    blob, offsets = forged_tiff([Page(4, 3, bytes(12), tags={282: (LONG, [1, 2, 3])})])
    data = bytearray(blob)
    (n,) = struct.unpack_from("<H", data, offsets[0])
    for k in range(n):
        at = offsets[0] + 2 + 12 * k
        if struct.unpack_from("<H", data, at)[0] == 282:
            struct.pack_into("<HHII", data, at, 282, 5, 1, 10**6)
    _refused(_write(tmp_path / "odd.tif", bytes(data)), r"invalid value offset 1000000")
    assert capfd.readouterr().err == ""


# --- orientation -------------------------------------------------------------------------------


def test_exif_orientation_is_not_applied(tmp_path: Path) -> None:
    arr = _smooth_rgb(24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(arr).save(tmp_path / "o.jpg", exif=exif, quality=95)
    (view,) = read_scan(tmp_path / "o.jpg").views
    assert view.shape == (24, 40, 3)  # raw sensor order, as stored
    assert np.abs(view.astype(int) - arr).mean() < 3
    tifffile.imwrite(tmp_path / "o.tif", arr, photometric="rgb", extratags=[(274, 3, 1, 6, True)])
    np.testing.assert_array_equal(read_scan(tmp_path / "o.tif").views[0], arr)


# --- folder entries ----------------------------------------------------------------------------


def _png_file(path: Path) -> Path:
    Image.fromarray(np.full((6, 7), 90, np.uint8)).save(path, format="PNG")
    return path


def test_every_odd_folder_entry_is_named_as_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    _png_file(folder / "good.png")
    _png_file(folder / "bag_v0.png")
    os.mkfifo(folder / "bag_v1.png")  # a FIFO as one view: the whole scan is skipped
    os.mkfifo(folder / "pipe.png")
    (folder / "loop.png").symlink_to(folder / "loop2.png")
    (folder / "loop2.png").symlink_to(folder / "loop.png")
    (folder / "gone.png").symlink_to(folder / "nowhere.png")
    (folder / "null.png").symlink_to(os.devnull)
    (folder / "dir.png").mkdir()
    _png_file(folder / "line\nbreak.png")
    bad_utf8 = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.png"))
    _png_file(bad_utf8)
    scans = iter_scans(folder)
    assert len(scans) == 11 - 1  # loop and loop2 are views of one scan id each; 11 ids in all
    start = time.perf_counter()
    with pytest.warns(ScanSkippedWarning) as record:
        read = [scan.id for scan in scans]
    assert time.perf_counter() - start < 10  # no FIFO blocked the reads
    assert read == ["good"]
    reasons = {printable(path.name): reason for path, reason in scans.skipped}
    assert reasons == {
        "caf\\xe9.png": "file name is not valid UTF-8; rename the file",
        "line\\nbreak.png": "file name contains a control character (such as a newline); "
        "rename the file",
        "bag_v1.png": "is a FIFO (named pipe), not a regular file",
        "dir.png": "is a folder, not an image file",
        "gone.png": f"is a dangling symbolic link (to {folder / 'nowhere.png'})",
        "loop.png": "is a symbolic link loop (it never reaches a file)",
        "loop2.png": "is a symbolic link loop (it never reaches a file)",
        "null.png": "is a character device, not a regular file",
        "pipe.png": "is a FIFO (named pipe), not a regular file",
    }
    assert len(record) == len(scans.skipped) == len(scans) - 1
    assert scans.summary().startswith(f"{len(scans) - 1} of {len(scans)} scans skipped: ")
    for warning in record:
        assert "\n" not in str(warning.message)


def test_read_scan_refuses_special_files_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.png")
    _refused(tmp_path / "p.png", r"is a FIFO \(named pipe\), not a regular file$")
    (tmp_path / "l.png").symlink_to(tmp_path / "l.png")
    _refused(tmp_path / "l.png", r"is a symbolic link loop")
    (tmp_path / "d.png").symlink_to(tmp_path / "absent.png")
    _refused(tmp_path / "d.png", r"is a dangling symbolic link")
    name = Path(os.fsdecode(bytes(tmp_path) + b"/x\xff\n.png"))
    _png_file(name)
    error = _refused(name, r"x\\xff\\n\.png: file name is not valid UTF-8")
    assert error.path == name


def test_printable_keeps_unicode_and_escapes_the_rest() -> None:
    assert printable("scans/röntgen 1.png") == "scans/röntgen 1.png"
    assert printable(os.fsdecode(b"a\xffb\n\tc")) == "a\\xffb\\n\\tc"
    assert printable(b"raw\x00") == "raw\\x00"
