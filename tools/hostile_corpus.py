"""Build a corpus of hostile scan files and read each one in a child process (issue 9).

Every file goes through ``xadt.scans.read_scan`` in a forked child with a timeout; the child's
peak RSS, anything it printed, and the outcome are recorded, and a table is printed:

    python tools/hostile_corpus.py --out /tmp/corpus [--seed 0] [--timeout 30] [--batch 10000]

Outcomes: *clean skip* (a one-line ``ScanReadError``), *read intact* (the pixels of the pristine
file), *altered, format cannot tell* (pixels changed by damage that no checksum or length in the
format covers, such as a bit flip in JPEG data), *silently wrong* (pixels changed where the
format could tell), *traceback* (any other exception, or a multi-line message), *hang* (killed
after the timeout), *crash* (the child died). ``--batch N`` also reads a folder of N scans, one in
a hundred of them hostile, and reports the peak RSS after 2,000 and after N scans. Run it from the
repository root.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import struct
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.forge

from tests.forge import Page, forged_png, forged_tiff, jpeg_bytes, set_jpeg_size
from xadt.scans import ScanReadError, read_scan

TRUNCATIONS = 36
"""Random truncations per pristine file."""

FLIPS = 36
"""Random bit-flip variants per pristine file (1 to 4 bytes, each xor a random non-zero value)."""

EOI_CUTS = 12
"""JPEG files cut at a random offset with an end-of-image marker appended, per pristine JPEG."""


@dataclass
class Case:
    """One hostile file: where it is, what made it, and whether its format can tell damage."""

    file: str
    category: str
    base: str | None  # the pristine file whose pixels a successful read must match
    tellable: bool  # a change of pixels is detectable from the format (checksum, lengths)


# --- pristine files ---------------------------------------------------------------------------


def _texture(rng: np.random.Generator, h: int, w: int, channels: int, dtype: type) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    top = 255 if dtype == np.uint8 else 65535
    base = (yy * 3 + xx * 2) % (top // 2) + top // 4
    noise = rng.integers(0, top // 8, (h, w, channels))
    return (base[..., None] + noise).astype(dtype).squeeze()


def _pristine(folder: Path, rng: np.random.Generator) -> dict[str, tuple[Path, bool]]:
    """Pristine files by name: (path, whether deflate/LZMA checksums cover its TIFF strips)."""
    h, w = 48, 64
    grey8, rgb8 = _texture(rng, h, w, 1, np.uint8), _texture(rng, h, w, 3, np.uint8)
    grey16 = _texture(rng, h, w, 1, np.uint16)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([yy * 3 + 40, xx * 2 + 50, np.full_like(yy, 180)], -1).astype(np.uint8)
    out: dict[str, tuple[Path, bool]] = {}

    def pillow(name: str, arr: np.ndarray | Image.Image, **kwargs: object) -> None:
        im = arr if isinstance(arr, Image.Image) else Image.fromarray(arr)
        im.save(folder / name, **kwargs)
        out[name] = (folder / name, False)

    def tiff(name: str, arr: np.ndarray | list[np.ndarray], checked: bool, **kw: object) -> None:
        with tifffile.TiffWriter(folder / name) as tw:
            for page in arr if isinstance(arr, list) else [arr]:
                tw.write(page, **kw)  # type: ignore[arg-type]
        out[name] = (folder / name, checked)

    palette = Image.frombytes("P", (w, h), (grey8 // 32).astype(np.uint8).tobytes())
    palette.putpalette([v for k in range(8) for v in (k * 30, 255 - k * 30, 100)])
    pillow("grey8.png", grey8)
    pillow("rgb8.png", rgb8)
    pillow("grey16.png", grey16)
    pillow("palette.png", palette)
    pillow("rgba.png", np.dstack([rgb8, np.full((h, w), 200, np.uint8)]))
    pillow("bilevel.png", Image.fromarray(grey8 > 128))
    pillow("grey.jpg", smooth[..., 0], quality=90)
    pillow("rgb.jpg", smooth, quality=90)
    pillow("progressive.jpg", smooth, quality=90, progressive=True)
    pillow("grey-bmp.bmp", grey8)
    pillow("rgb-bmp.bmp", rgb8)
    pillow("palette-bmp.bmp", palette)
    tiff("u8.tif", grey8, False)
    tiff("u16.tif", grey16, False)
    tiff("rgb8-tif.tif", rgb8, False, photometric="rgb")
    tiff("float32.tif", grey16.astype(np.float32) / 65535, False)
    tiff("multipage.tif", [grey8, grey8[::-1], grey8[:, ::-1]], False)
    tiff("deflate.tif", grey16, True, compression="zlib")
    tiff("lzma.tif", grey16, True, compression="lzma")
    pillow("lzw.tif", grey8, compression="tiff_lzw")
    pillow("palette-tif.tif", palette)
    pillow("jpeg.tif", smooth, compression="jpeg")
    pillow("packbits.tif", rgb8, compression="packbits")
    return out


# --- damage -----------------------------------------------------------------------------------


def _strip_ranges(path: Path) -> list[tuple[int, int]]:
    try:
        with tifffile.TiffFile(path) as tif:
            return [
                (o, o + c)
                for page in tif.pages
                for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)  # type: ignore[union-attr]
            ]
    except Exception:  # a pristine file that tifffile cannot list has no strips to hit
        return []


def _damaged(
    folder: Path, pristine: dict[str, tuple[Path, bool]], rng: np.random.Generator
) -> list[Case]:
    cases = []
    for name, (path, checked) in pristine.items():
        data = path.read_bytes()
        stem, ext = name.rsplit(".", 1)
        is_png = ext == "png"
        strips = _strip_ranges(path) if checked else []
        for k in range(TRUNCATIONS):
            cut = int(rng.integers(1, len(data)))
            target = folder / f"{stem}-cut{k}.{ext}"
            target.write_bytes(data[:cut])
            cases.append(Case(target.name, f"truncated {ext}", name, True))
        for k in range(FLIPS):
            blob = bytearray(data)
            offsets = rng.integers(0, len(blob), int(rng.integers(1, 5)))
            for offset in offsets:
                blob[offset] ^= int(rng.integers(1, 256))
            target = folder / f"{stem}-flip{k}.{ext}"
            target.write_bytes(bytes(blob))
            in_checked_strip = any(lo <= o < hi for o in offsets for lo, hi in strips)
            cases.append(Case(target.name, f"bit flips {ext}", name, is_png or in_checked_strip))
        if ext == "jpg":
            for k in range(EOI_CUTS):
                cut = int(rng.integers(len(data) // 3, len(data) - 2))
                target = folder / f"{stem}-eoi{k}.{ext}"
                target.write_bytes(data[:cut] + b"\xff\xd9")
                tellable = stem != "progressive"  # its first scans already cover every block
                cases.append(Case(target.name, "JPEG cut + end marker", name, tellable))
    return cases


def _garbage(folder: Path, rng: np.random.Generator) -> list[Case]:
    magics = {
        "png": b"\x89PNG\r\n\x1a\n",
        "jpg": b"\xff\xd8\xff",
        "bmp": b"BM",
        "tif": b"II*\x00",
    }
    cases = []
    for ext, magic in magics.items():
        for k in range(15):
            size = int(rng.integers(1, 4000))
            blob = magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            (folder / f"garbage-{ext}{k}.{ext}").write_bytes(blob)
            cases.append(Case(f"garbage-{ext}{k}.{ext}", "random bytes after a magic", None, True))
    return cases


def _specials(folder: Path) -> list[Case]:
    """The crafted findings of issue 9, each as a file or folder entry."""
    made: list[tuple[str, str, Callable[[Path], object]]] = []

    def tiff(pages: list[Page], *, loop_to: int | None = None) -> Callable[[Path], object]:
        return lambda p: p.write_bytes(forged_tiff(pages, loop_to=loop_to)[0])

    one = Page(4, 3, bytes(12))
    made += [
        ("ifd-loop-self.tif", "IFD loop", tiff([one], loop_to=0)),
        ("ifd-loop-back.tif", "IFD loop", tiff([one, one, one], loop_to=1)),
        ("ifd-loop-first.tif", "IFD loop", tiff([one, one], loop_to=0)),
        ("pages-20000.tif", "20,000 pages", tiff([Page(1, 1, b"\x80")] * 20_000)),
        ("wide-1x1e8.tif", "absurd size", tiff([Page(10**8, 1, bytes(64))])),
        ("tall-1e8x1.tif", "absurd size", tiff([Page(1, 10**8, bytes(64))])),
        ("samples-1000.tif", "1,000 samples", tiff([Page(1000, 1000, bytes(8), samples=1000)])),
        ("samples-1000-small.tif", "1,000 samples", tiff([Page(8, 8, bytes(64000), samples=1000)])),
        ("pages-30x5000.tif", "30 x 5000x5000 pages", tiff([Page(5000, 5000, bytes(8))] * 30)),
        (
            "photometric-77.tif",
            "unknown Photometric",
            tiff([Page(4, 3, bytes(12), photometric=77)]),
        ),
        (
            "compression-x.tif",
            "unknown compression",
            tiff([Page(4, 3, bytes(12), compression=60001)]),
        ),
        ("depth-64bit.tif", "odd bits", tiff([Page(4, 3, bytes(96), bits=64)])),
        (
            "palette-short.tif",
            "short palette",
            tiff([Page(4, 2, bytes([0, 1, 3, 1] * 2), photometric=3, tags={320: (3, [0] * 6)})]),
        ),
    ]

    def png_bomb(p: Path) -> None:
        # An all-black 10000 x 10000 grey PNG: ~97 KB holding 100 MB of pixels.
        squeeze = zlib.compressobj(9)
        row = bytes(10_001)
        parts = [squeeze.compress(row) for _ in range(10_000)]
        p.write_bytes(forged_png(10_000, 10_000, b"".join(parts) + squeeze.flush()))

    def png_rows(p: Path) -> None:
        rows = b"".join(b"\0" + bytes([200] * 40) for _ in range(10))
        p.write_bytes(forged_png(40, 30, zlib.compress(rows)))

    def png_short_palette(p: Path) -> None:
        index = b"".join(b"\0" + bytes([5] * 10) for _ in range(8))
        p.write_bytes(forged_png(10, 8, zlib.compress(index), colour=3, plte=bytes(6)))

    smooth = np.tile(np.linspace(60, 200, 80, dtype=np.uint8), (64, 1))

    def jpeg_claims(p: Path) -> None:
        p.write_bytes(set_jpeg_size(jpeg_bytes(smooth, quality=90), 10_000, 10_000))

    def float_nan(p: Path) -> None:
        arr = np.full((8, 8), 0.5, np.float32)
        arr[3, 3] = np.nan
        tifffile.imwrite(p, arr)

    def float_inf(p: Path) -> None:
        tifffile.imwrite(p, np.array([[0.5, 1e300]]))

    def bmp_short_palette(p: Path) -> None:
        im = Image.frombytes("P", (8, 8), bytes([5] * 64))
        im.putpalette([0, 0, 0, 255, 255, 255])
        im.save(p, format="BMP")
        buffer = bytearray(p.read_bytes())
        struct.pack_into("<I", buffer, 46, 2)  # biClrUsed: two colours
        p.write_bytes(bytes(buffer))

    def big_jpeg(p: Path) -> None:
        # A real 10000 x 10000 RGB JPEG: 300 MB decoded, within the default budget.
        row = np.linspace(90, 250, 10_000, dtype=np.uint8)
        arr = np.broadcast_to(row[None, :, None], (10_000, 10_000, 3))
        Image.fromarray(np.ascontiguousarray(arr)).save(p, quality=80)

    def big_tiff(p: Path) -> None:
        # 16-bit RGB, 9000 x 9000: 486 MB decoded, just under the default budget of 512 MiB.
        tifffile.imwrite(p, np.full((9000, 9000, 3), 40_000, np.uint16), photometric="rgb")

    def many_pages(p: Path) -> None:
        # 20 pages of 5000 x 5000: 500 MB decoded (30 such pages are refused up front).
        with tifffile.TiffWriter(p) as tw:
            for k in range(20):
                tw.write(np.full((5000, 5000), k, np.uint8))

    made += [
        ("big-jpeg-10000.jpg", "largest accepted", big_jpeg),
        ("big-tiff-9000-rgb16.tif", "largest accepted", big_tiff),
        ("big-tiff-20x5000.tif", "largest accepted", many_pages),
        ("png-bomb-10000.png", "deflate bomb", png_bomb),
        ("png-10-of-30-rows.png", "PNG rows missing", png_rows),
        ("png-short-palette.png", "short palette", png_short_palette),
        ("bmp-short-palette.bmp", "short palette", bmp_short_palette),
        ("jpeg-claims-10000.jpg", "JPEG size forged", jpeg_claims),
        ("float-nan.tif", "NaN/inf pixels", float_nan),
        ("float-inf.tif", "NaN/inf pixels", float_inf),
    ]
    cases = []
    for name, category, build in made:
        build(folder / name)
        cases.append(Case(name, category, None, True))
    return cases


def _entries(folder: Path) -> list[Case]:
    """Folder entries that are not regular files, or whose names cannot be ids."""
    os.mkfifo(folder / "fifo.png")
    (folder / "loop-a.png").symlink_to("loop-b.png")
    (folder / "loop-b.png").symlink_to("loop-a.png")
    (folder / "dangling.png").symlink_to("nowhere.png")
    (folder / "device.png").symlink_to(os.devnull)
    (folder / "folder.png").mkdir()
    names = ["fifo.png", "loop-a.png", "dangling.png", "device.png", "folder.png"]
    for raw in (b"caf\xe9.png", b"new\nline.png"):
        name = os.fsdecode(raw)
        Image.fromarray(np.full((6, 7), 90, np.uint8)).save(folder / name, format="PNG")
        names.append(name)
    return [Case(n, "folder entry", None, True) for n in names]


# --- reading each file in a child -------------------------------------------------------------


def _child(path: str, base: str | None, limit: int, conn: mp.connection.Connection) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sink = tempfile.TemporaryFile()  # noqa: SIM115  (open until the child exits)
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    try:
        scan = read_scan(path)
        views = list(scan.views)
        if base is None:
            outcome, detail = "read", f"{len(views)} view(s) {views[0].shape}"
        else:
            expected = read_scan(base).views
            same = len(views) == len(expected) and all(
                a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
                for a, b in zip(views, expected, strict=False)
            )
            outcome, detail = ("intact" if same else "altered"), ""
    except ScanReadError as exc:
        text = str(exc)
        outcome, detail = ("skip", exc.reason) if "\n" not in text else ("traceback", text)
    except BaseException as exc:  # the point is to see every failure
        outcome = "traceback"
        detail = "".join(traceback.format_exception_only(exc)).strip().splitlines()[-1]
        detail += " @ " + traceback.extract_tb(exc.__traceback__)[-1].name
    sys.stdout.flush()
    sys.stderr.flush()
    printed = os.fstat(sink.fileno()).st_size
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send((outcome, detail, printed, rss))


@dataclass
class Result:
    """What reading one case did."""

    file: str
    category: str
    outcome: str
    detail: str
    printed: int
    rss: int
    seconds: float


def run_in_child(
    target: Callable[..., None], args: tuple[Any, ...], timeout: float
) -> tuple[Any, tuple[str, str] | None, float]:
    """Run ``target(*args, conn)`` in a forked child that sends one reply on ``conn``.

    Returns ``(reply, failure, seconds)``: ``failure`` is ``("hang", ...)`` when no reply came
    within ``timeout`` (the child is killed), ``("crash", "exit N")`` when the child died
    without one, else None.
    """
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=target, args=(*args, theirs))
    start = time.perf_counter()
    child.start()
    theirs.close()
    got = ours.poll(timeout)
    seconds = time.perf_counter() - start
    if not got:
        child.kill()
        child.join()
        return None, ("hang", f"> {timeout:g} s"), seconds
    try:
        reply = ours.recv()
    except EOFError:
        child.join()
        return None, ("crash", f"exit {child.exitcode}"), seconds
    child.join()
    return reply, None, seconds


def _run(case: Case, folder: Path, timeout: float, limit: int) -> Result:
    base = str(folder / case.base) if case.base else None
    reply, failure, seconds = run_in_child(_child, (str(folder / case.file), base, limit), timeout)
    if failure is not None:
        return Result(case.file, case.category, *failure, 0, 0, seconds)
    outcome, detail, printed, rss = reply
    if outcome == "altered":
        outcome = "silently wrong" if case.tellable else "altered, format cannot tell"
    return Result(case.file, case.category, outcome, detail, printed, rss, seconds)


COLUMNS = (
    "clean skip",
    "read intact",
    "read",
    "altered, format cannot tell",
    "silently wrong",
    "traceback",
    "hang",
    "crash",
)


def outcome_table(
    results: Sequence[Any],
    columns: Sequence[str],
    *,
    names: dict[str, str] | None = None,
    extra: dict[str, Callable[[list[Any]], str]] | None = None,
) -> str:
    """A Markdown table of ``results`` (anything with ``category`` and ``outcome``): a row per
    category and one for all, counting each outcome in ``columns`` (``names`` renames outcomes),
    then one column per ``extra`` entry computed from the row's results."""
    rows: dict[str, list[Any]] = {}
    for r in results:
        rows.setdefault(r.category, []).append(r)
    rows["all"] = list(results)
    extra = extra or {}
    head = ["category", "tried", *columns, *extra]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for category, group in rows.items():
        counts = Counter((names or {}).get(r.outcome, r.outcome) for r in group)
        label = f"**{category}**" if category == "all" else category
        cells = [label, str(len(group)), *(str(counts[c]) for c in columns)]
        lines.append("| " + " | ".join([*cells, *(f(group) for f in extra.values())]) + " |")
    return "\n".join(lines)


def _table(results: list[Result]) -> str:
    return outcome_table(
        results,
        COLUMNS,
        names={"skip": "clean skip", "intact": "read intact"},
        extra={
            "printed": lambda group: str(sum(r.printed > 0 for r in group)),
            "peak RSS MB": lambda group: f"{max(r.rss for r in group) / 2**20:.0f}",
        },
    )


def _folder_child(folder: str, conn: mp.connection.Connection) -> None:
    import warnings

    from xadt.scans import ScanSkippedWarning, iter_scans

    warnings.simplefilter("ignore", ScanSkippedWarning)
    scans = iter_scans(folder)
    sources = {str(p) for scan in scans for p in scan.sources}
    named = {str(p) for p, _ in scans.skipped}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send((len(scans), scans.n_read, len(scans.skipped), sorted(sources | named), rss))


def _folder_pass(folder: Path, timeout: float) -> str:
    """Read the whole corpus folder as one ``iter_scans`` run; say whether every entry is named."""
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_folder_child, args=(str(folder), theirs))
    child.start()
    theirs.close()
    if not ours.poll(timeout):
        child.kill()
        child.join()
        return f"folder pass: hang (> {timeout:g} s)"
    total, n_read, n_skipped, accounted, rss = ours.recv()
    child.join()
    entries = {
        str(p) for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp", ".tif")
    }
    missing = len(entries - set(accounted))
    return (
        f"folder pass (iter_scans over all {len(entries)} entries): {total} scans, {n_read} read, "
        f"{n_skipped} skipped, {missing} entries neither read nor named as skipped, "
        f"peak RSS {rss / 2**20:.0f} MB"
    )


def _batch_child(folder: str, checkpoint: int, conn: mp.connection.Connection) -> None:
    import warnings

    from xadt.scans import ScanSkippedWarning, iter_scans

    warnings.simplefilter("ignore", ScanSkippedWarning)
    scans = iter_scans(folder)
    rss_at = {}
    for _ in scans:
        done = scans.n_read + len(scans.skipped)
        if done >= checkpoint and checkpoint not in rss_at:
            rss_at[checkpoint] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    rss_at[len(scans)] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    conn.send((scans.n_read, sorted(Path(p).name for p, _ in scans.skipped), rss_at))


def _batch(out: Path, corpus: Path, results: list[Result], n: int, timeout: float) -> str:
    """``n`` scans, 1% of them hostile files the corpus skips, read as one folder."""
    folder = out / "batch"
    folder.mkdir()
    good = [r.file for r in results if r.category == "pristine"]
    bad = [r.file for r in results if r.outcome == "skip" and r.category.startswith("trunc")]
    expected = set()
    for k in range(n):
        source = bad[k // 100 % len(bad)] if k % 100 == 99 else good[k % len(good)]
        name = f"scan{k:05d}.{source.rsplit('.', 1)[1]}"
        (folder / name).write_bytes((corpus / source).read_bytes())
        if k % 100 == 99:
            expected.add(name)
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe(duplex=False)
    checkpoint = min(2000, n)
    child = ctx.Process(target=_batch_child, args=(str(folder), checkpoint, theirs))
    start = time.perf_counter()
    child.start()
    theirs.close()
    if not ours.poll(timeout):
        child.kill()
        child.join()
        return f"batch of {n}: hang (> {timeout:g} s)"
    n_read, skipped, rss_at = ours.recv()
    child.join()
    rss = ", ".join(f"{rss_at[k] / 2**20:.0f} MB after {k:,}" for k in sorted(rss_at))
    return (
        f"batch of {n:,} scans with {len(expected)} hostile: {n_read:,} read, {len(skipped)} "
        f"skipped, every hostile one named: {set(skipped) == expected}; peak RSS {rss}; "
        f"{time.perf_counter() - start:.0f} s"
    )


def main() -> None:
    """Build the corpus under ``--out``, read every file, print the table, save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the corpus (new)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per file")
    parser.add_argument("--memory-limit-gb", type=float, default=8.0, help="RLIMIT_AS per child")
    parser.add_argument("--batch", type=int, default=0, help="also read a folder of N scans")
    args = parser.parse_args()
    folder: Path = args.out / "files"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    pristine = _pristine(folder, rng)
    cases = [Case(name, "pristine", name, True) for name in pristine]
    cases += _damaged(folder, pristine, rng) + _garbage(folder, rng)
    cases += _specials(folder) + _entries(folder)
    print(f"{len(cases)} cases in {folder}", flush=True)
    limit = int(args.memory_limit_gb * 2**30)
    results = []
    for k, case in enumerate(cases, 1):
        results.append(_run(case, folder, args.timeout, limit))
        if k % 250 == 0:
            print(f"  {k} read", flush=True)
    (args.out / "results.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    print(_table(results))
    bad = [r for r in results if r.outcome in ("traceback", "hang", "crash", "silently wrong")]
    for r in bad:
        print(f"{r.outcome}: {r.file} ({r.category}): {r.detail}")
    slowest = max(results, key=lambda r: r.seconds)
    print(f"slowest: {slowest.file} {slowest.seconds:.1f} s ({slowest.outcome})")
    print(_folder_pass(folder, 20 * args.timeout))
    if args.batch:
        print(_batch(args.out, folder, results, args.batch, 100 * args.timeout))


if __name__ == "__main__":
    main()
