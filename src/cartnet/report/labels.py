"""Printable chain-of-identity labels (PNG or PDF, 300 dpi, 4 x 2 in) for a
:class:`~cartnet.identity.labels.LabelContent`.

The CoI identifier and the DIN are drawn as Code 128 bar codes made by python-barcode,
each with its eye-readable text and the keyboard entry check character in a box. Text
that does not fit is refused with a :class:`ValueError` naming the field: a label that
silently cut a product name would be a mislabelled product.

>>> from datetime import date
>>> from cartnet.identity import ChainOfIdentityId, DonationIdentificationNumber
>>> content = LabelContent(
...     coi=ChainOfIdentityId.parse("&/CHG123426A1B2C3"),
...     din=DonationIdentificationNumber.parse("G123426000123"),
...     product_name="CAR-T cell suspension for infusion",
...     expiry=date(2026, 5, 31),
... )
>>> render_label(content, "png")[:8]
b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

import matplotlib
from barcode import Code128  # type: ignore[import-untyped]
from barcode.writer import BaseWriter  # type: ignore[import-untyped]
from PIL import Image, ImageDraw, ImageFont, features

from cartnet.identity.labels import NO_DIN, LabelContent, expiry_text

LabelFormat = Literal["png", "pdf"]
FORMATS: tuple[str, ...] = get_args(LabelFormat)

DPI = 300
"""Print resolution: the usual thermal transfer label printer."""
LABEL_INCHES = (4, 2)
LABEL_SIZE = (LABEL_INCHES[0] * DPI, LABEL_INCHES[1] * DPI)
"""Label size in printer dots (width, height)."""
MODULE_DOTS = 3
"""Narrowest bar or space of the bar codes: 3 dots, 0.254 mm at 300 dpi."""
QUIET_ZONE_MODULES = 10
"""Blank space before and after each bar code, the minimum Code 128 asks for."""
BAR_HEIGHT_MM = 8.0


_MARGIN = 30
_GAP = 24
_RIGHT_X = 750
"""Left edge of the right-hand column; the CoI bar code (about 690 dots) ends before it."""
_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
_REGULAR = "DejaVuSans.ttf"
_BOLD = "DejaVuSans-Bold.ttf"
_CAPTION_SIZE = 25
"""6 pt: the smallest text on the label."""


def render_label(content: LabelContent, fmt: LabelFormat) -> bytes:
    """The label as PNG or PDF bytes, 4 x 2 inches at 300 dpi, ready to send to a printer.

    Black and white only, as a label printer prints: the image is what comes out, and
    the PDF can embed it losslessly (CCITT G4) where grey would be JPEG-compressed,
    blurring the bars. Raises ValueError for an unknown ``fmt`` and for text too long
    to fit its place.
    """
    if fmt not in FORMATS:
        raise ValueError(f"label format {fmt!r} is not supported; use one of {', '.join(FORMATS)}")
    if fmt == "pdf" and not features.check("libtiff"):
        raise RuntimeError(
            "this Pillow has no libtiff, so its PDF writer would JPEG-compress the bar codes; "
            "install Pillow from its wheels (they include libtiff)"
        )
    image = _draw_label(content)
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, "PNG", dpi=(DPI, DPI))
    else:
        image.save(buffer, "PDF", resolution=DPI)
    return buffer.getvalue()


def _draw_label(content: LabelContent) -> Image.Image:
    image = Image.new("1", LABEL_SIZE, 255)
    draw = ImageDraw.Draw(image)
    width, _ = LABEL_SIZE
    left_width = _RIGHT_X - _GAP - _MARGIN
    right_width = width - _MARGIN - _RIGHT_X

    if content.site_name is not None:
        font = _fit_one_line(draw, "site_name", content.site_name, width - 2 * _MARGIN, 30, 22)
        draw.text((_MARGIN, _MARGIN), content.site_name, font=font, fill=0, anchor="la")

    # Left column: the two bar codes, each under a caption and over its eye-readable text.
    y = 80
    _caption(draw, _MARGIN, y, "Chain of identity (CoI)")
    y = _barcode(image, content.coi.barcode_data(), _MARGIN, y + 32)
    _identifier(draw, _MARGIN, y + 8, content.coi.eye_readable(), left_width)
    y = 275
    _caption(draw, _MARGIN, y, "Donation (DIN)")
    if content.din is None:
        draw.text((_MARGIN, y + 40), NO_DIN, font=_font(_REGULAR, 32), fill=0, anchor="la")
    else:
        y = _barcode(image, content.din.barcode_data(), _MARGIN, y + 32)
        _identifier(draw, _MARGIN, y + 8, content.din.eye_readable(), left_width)

    # Right column, top down: product (up to 3 lines), expiry, pseudonym. At the largest
    # sizes it ends near dot 440, above the SEC row.
    y = 80
    _caption(draw, _RIGHT_X, y, "Product")
    font, lines = _fit_lines(draw, "product_name", content.product_name, right_width, 3, 40, 26)
    y += 32
    for line in lines:
        draw.text((_RIGHT_X, y), line, font=font, fill=0, anchor="la")
        y += _line_height(font)
    y += 12
    _caption(draw, _RIGHT_X, y, "Expiry")
    expiry_font = _font(_BOLD, 36)
    draw.text(
        (_RIGHT_X, y + 32), expiry_text(content.expiry), font=expiry_font, fill=0, anchor="la"
    )
    y += 32 + _line_height(expiry_font) + 12
    if content.pseudonym is not None:
        _caption(draw, _RIGHT_X, y, "Order pseudonym")
        font = _fit_one_line(draw, "pseudonym", content.pseudonym, right_width, 34, 24)
        draw.text((_RIGHT_X, y + 32), content.pseudonym, font=font, fill=0, anchor="la")

    # Bottom row, full width: the SEC is 46 characters long.
    if content.sec is not None:
        y = 485
        _caption(draw, _MARGIN, y, "Single European Code")
        text = content.sec.eye_readable()
        font = _fit_one_line(draw, "sec", text, width - 2 * _MARGIN, 34, 28)
        draw.text((_MARGIN, y + 32), text, font=font, fill=0, anchor="la")
    return image


@lru_cache(maxsize=32)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """DejaVu from matplotlib's own fonts: present wherever the project installs."""
    return ImageFont.truetype(str(_FONT_DIR / name), size)


def _line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent + 4


def _caption(draw: ImageDraw.ImageDraw, x: int, y: int, text: str) -> None:
    draw.text((x, y), text, font=_font(_REGULAR, _CAPTION_SIZE), fill=0, anchor="la")


def _identifier(draw: ImageDraw.ImageDraw, x: int, y: int, text: str, max_width: int) -> None:
    """Eye-readable identifier, its last character (the check character K) in a box."""
    body, check = text.rsplit(" ", 1)
    font = _fit_one_line(draw, "identifier", f"{body} [{check}]", max_width, 38, 30, _BOLD)
    draw.text((x, y), body, font=font, fill=0, anchor="la")
    box_x = x + draw.textlength(body + "  ", font=font)
    left, top, right, bottom = draw.textbbox((box_x, y), check, font=font, anchor="la")
    pad = 6
    draw.rectangle((left - pad, top - pad, right + pad, bottom + pad), outline=0, width=3)
    draw.text((box_x, y), check, font=font, fill=0, anchor="la")


def _fit_one_line(
    draw: ImageDraw.ImageDraw,
    field: str,
    text: str,
    max_width: int,
    largest: int,
    smallest: int,
    face: str = _REGULAR,
) -> ImageFont.FreeTypeFont:
    return _fit_lines(draw, field, text, max_width, 1, largest, smallest, face)[0]


def _fit_lines(
    draw: ImageDraw.ImageDraw,
    field: str,
    text: str,
    max_width: int,
    max_lines: int,
    largest: int,
    smallest: int,
    face: str = _BOLD,
) -> tuple[ImageFont.FreeTypeFont, list[str]]:
    """The largest font (and the wrapped lines) that fits ``text`` in its place.

    Shrinks before it wraps; refuses rather than cutting text off.
    """
    for size in range(largest, smallest - 1, -2):
        font = _font(face, size)
        lines = _wrap(draw, text, font, max_width)
        if len(lines) <= max_lines:
            return font, lines
    room = "one line" if max_lines == 1 else f"{max_lines} lines"
    raise ValueError(
        f"{field} {text!r} ({len(text)} characters) does not fit on the label on {room} "
        f"even at {smallest} dots ({smallest * 72 / DPI:.1f} pt); shorten it"
    )


def _wrap(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, max_width: int
) -> list[str]:
    """Greedy word wrap; a word wider than the line is broken between characters."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if draw.textlength(candidate, font=font) <= max_width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for char in word:
            if draw.textlength(line + char, font=font) > max_width and line:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    return lines


def _barcode(label: Image.Image, data: str, x: int, y: int) -> int:
    """Paste the Code 128 of ``data`` at (x, y), quiet zones included; the y below it."""
    symbol = _DotWriter().render(data)
    label.paste(symbol, (x, y))
    return y + symbol.height


def _dots(mm: float) -> int:
    return round(mm * DPI / 25.4)


class _DotWriter:
    """python-barcode writer callbacks that paint each bar on whole printer dots.

    python-barcode does the Code 128 encoding (code sets, check symbol, stop pattern)
    and places the modules; its stock ImageWriter truncates each edge from millimetres
    to dots, which at 300 dpi drew 3-dot bars 2 or 4 dots wide. Rounding every edge
    keeps each bar and space an exact multiple of :data:`MODULE_DOTS`.
    """

    def __init__(self) -> None:
        self._writer = BaseWriter(self._initialize, self._paint_module, None, self._finish)
        self._image = Image.new("1", (1, 1), 255)
        self._draw = ImageDraw.Draw(self._image)

    def render(self, data: str) -> Image.Image:
        module_mm = MODULE_DOTS * 25.4 / DPI
        Code128(data, writer=self._writer).render(
            {
                "module_width": module_mm,
                "module_height": BAR_HEIGHT_MM,
                "quiet_zone": QUIET_ZONE_MODULES * module_mm,
                "margin_top": 0,
                "margin_bottom": 0,
                "write_text": False,
            }
        )
        return self._image

    def _initialize(self, code: list[str]) -> None:
        width_mm, height_mm = self._writer.calculate_size(len(code[0]), 1)
        self._image = Image.new("1", (_dots(width_mm), _dots(height_mm)), 255)
        self._draw = ImageDraw.Draw(self._image)

    def _paint_module(self, xpos: float, ypos: float, width: float, color: str) -> None:
        x0, x1 = _dots(xpos), _dots(xpos + width)
        y0, y1 = _dots(ypos), _dots(ypos + BAR_HEIGHT_MM)
        self._draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=color)

    def _finish(self) -> Image.Image:
        return self._image
