"""A ranked HTML gallery of localised scans: the most anomalous first, with overlays and scores.

``xadt localize --html`` writes ``index.html`` beside the overlays. It is one static file with
relative links (no script, nothing fetched), so it opens from a shared folder or an archive, and
a screener reads it top-down: rank, scan, calibrated score, flag, and every view's overlay.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from xadt.calibration import Calibration
from xadt.outputs import write_bytes_atomic
from xadt.workflows.score import ScoreRow, ranked

__all__ = ["DEFAULT_GALLERY_SIZE", "GALLERY_NAME", "write_gallery"]

PathLike = str | os.PathLike[str]

GALLERY_NAME = "index.html"
"""File name of the gallery in the overlay folder."""

DEFAULT_GALLERY_SIZE = 50
"""Scans shown by default: a screener reads the top of the ranking, not ten thousand rows."""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; background: #1d1d1f; color: #eee; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
p.about { color: #bbb; max-width: 60em; }
section.scan { margin: 1.2em 0; padding: 0.8em; background: #2a2a2e; border-radius: 6px; }
section.flagged { border-left: 6px solid #ff4d4d; }
h2 { font-size: 1.1em; margin: 0 0 0.5em 0; }
span.flag { color: #ff6b6b; font-weight: bold; }
div.views { display: flex; flex-wrap: wrap; gap: 0.6em; }
div.views img { max-width: 46vw; max-height: 70vh; border: 1px solid #555; }
"""


def write_gallery(
    out: PathLike,
    rows: Sequence[ScoreRow],
    images: dict[str, list[str]],
    *,
    model_name: str,
    calibration: Calibration | None,
    top: int | None = DEFAULT_GALLERY_SIZE,
    overwrite: bool = False,
) -> Path:
    """Write the gallery of ``rows`` (most anomalous first) to ``out/index.html``, atomically.

    Args:
        out: the overlay folder; image paths are relative to it.
        rows: the scored scans.
        images: each scan id's overlay file names, one per view.
        model_name: the detector, for the title.
        calibration: the model's calibration, to say what the threshold means.
        top: show only this many scans (None: all).
        overwrite: replace an existing gallery.

    Returns:
        The gallery's path.
    """
    shown = ranked(rows, top)
    flagged = sum(bool(r.flag) for r in rows)
    about = [
        f"{len(rows)} scans localised, {flagged} flagged; "
        f"{'all shown' if len(shown) == len(rows) else f'the {len(shown)} most anomalous shown'}"
        ", most anomalous first."
    ]
    if calibration is not None:
        about.append(
            f"A scan is flagged above the threshold {calibration.threshold:.4g}, set for "
            f"{100 * calibration.target_fpr:g}% false alarms on {calibration.n_holdout} held-out "
            "normal scans. Colours use one fixed scale for every scan: the colour bar reads as the "
            "percentile among normal patches, and its cyan mark is the patch-level threshold."
        )
        warning = calibration.warning()
        if warning is not None:
            about.append(f"Warning: {warning[0].upper()}{warning[1:]}.")
    body = [
        f"<h1>xadt: most anomalous scans ({html.escape(model_name)})</h1>",
        f'<p class="about">{html.escape(" ".join(about))}</p>',
    ]
    for rank, row in enumerate(shown, start=1):
        css = "scan flagged" if row.flag else "scan"
        caption = html.escape(row.caption)
        if row.flag:
            caption = caption.replace("FLAGGED", '<span class="flag">FLAGGED</span>')
        views = "".join(
            f'<a href="{quote(name)}"><img src="{quote(name)}" '
            f'alt="{html.escape(row.id)} view {k}" loading="lazy"></a>'
            for k, name in enumerate(images.get(row.id, []))
        )
        body.append(
            f'<section class="{css}" id="rank-{rank}"><h2>{rank}. {html.escape(row.id)} — '
            f'{caption}</h2><div class="views">{views}</div></section>'
        )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>xadt gallery: {html.escape(model_name)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    return write_bytes_atomic(
        Path(out) / GALLERY_NAME, page.encode("utf-8"), overwrite=overwrite, what="gallery"
    )
