"""Product labels: file formats and size, bar codes that scan back, eye-readable text."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from itertools import groupby
from typing import Any

import pytest
from barcode.charsets import code128  # type: ignore[import-untyped]
from PIL import Image, ImageChops

from cartnet.identity import (
    ChainOfIdentityId,
    DonationIdentificationNumber,
    SingleEuropeanCode,
    TissueEstablishmentCode,
)
from cartnet.identity.labels import NO_DIN, NO_EXPIRY, LabelContent, label_fields
from cartnet.report.labels import DPI, LABEL_SIZE, MODULE_DOTS, QUIET_ZONE_MODULES, render_label

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COI = ChainOfIdentityId.parse("&/CHG123426A1B2C3")
OTHER_COI = ChainOfIdentityId.parse("&/CHG123426ZZ9Y8X")
DIN = DonationIdentificationNumber.parse("G123426000123")
EXPIRY = date(2026, 5, 31)
SEC = SingleEuropeanCode.from_din(
    DIN,
    tissue_establishment=TissueEstablishmentCode.parse("DE000123"),
    product_code="S1234A00",
    expiry=EXPIRY,
)
FULL = LabelContent(
    coi=COI,
    din=DIN,
    product_name="Tisagenlecleucel CAR-T cell suspension for infusion",
    expiry=EXPIRY,
    sec=SEC,
    pseudonym="ORD-7F3K-2Q9M",
    site_name="Leiden Cell Therapy Facility, bay 3",
)
MINIMAL = LabelContent(coi=COI, din=None, product_name="Apheresis", expiry=None)


def png_image(content: LabelContent) -> Image.Image:
    """The rendered PNG, opened and made grey (0 black, 255 white) for comparisons."""
    data = render_label(content, "png")
    assert data.startswith(PNG_SIGNATURE)
    return Image.open(io.BytesIO(data)).convert("L")


# A small Code 128 reader, independent of the renderer: it measures bars and spaces
# along one row of dots and looks the widths up in the standard symbol table.
STOP_WIDTHS = (2, 3, 3, 1, 1, 1, 2)
START_CODE_SETS = {103: "A", 104: "B", 105: "C"}


def symbol_widths(index: int) -> tuple[int, ...]:
    """Bar and space widths, in modules, of Code 128 symbol ``index``."""
    return tuple(len(list(run)) for _, run in groupby(code128.CODES[index]))


WIDTHS_TO_VALUE = {symbol_widths(i): i for i in range(len(code128.CODES))}


def runs(row: bytes) -> list[tuple[bool, int]]:
    """(is a bar, width in dots) along a row of grey values."""
    return [(dark, len(list(run))) for dark, run in groupby(v < 128 for v in row)]


def decode_row(row: bytes) -> list[str]:
    """Every Code 128 symbol found along the row, with a valid check symbol and stop."""
    found = []
    row_runs = runs(row)
    for start in range(1, len(row_runs) - 6):
        dark, _ = row_runs[start]
        if not dark:
            continue
        widths = [w for _, w in row_runs[start : start + 6]]
        module = sum(widths) / 11
        if row_runs[start - 1][1] < QUIET_ZONE_MODULES * module * 0.9:
            continue
        decoded = decode_symbols(row_runs[start:], module)
        if decoded is not None:
            found.append(decoded)
    return found


def decode_symbols(bars: list[tuple[bool, int]], module: float) -> str | None:
    values: list[int] = []
    i = 0
    while i + 6 <= len(bars):
        widths = tuple(round(w / module) for _, w in bars[i : i + 7])
        if widths == STOP_WIDTHS:
            return text_of(values)
        value = WIDTHS_TO_VALUE.get(widths[:6])
        if value is None:
            return None
        values.append(value)
        i += 6
    return None


def text_of(values: list[int]) -> str | None:
    if len(values) < 3 or values[0] not in START_CODE_SETS:
        return None
    *body, check = values
    if sum([body[0]] + [k * v for k, v in enumerate(body[1:], start=1)]) % 103 != check:
        return None
    code_set = START_CODE_SETS[body[0]]
    text = ""
    for value in body[1:]:
        switch = {99: "C", 100: "B", 101: "A"}.get(value)
        if switch is not None and switch != code_set:
            code_set = switch
        elif code_set == "C":
            text += f"{value:02d}"
        elif code_set == "B":
            text += chr(value + 32)
        else:
            text += chr(value + 32) if value < 64 else chr(value - 64)
    return text


def barcodes(image: Image.Image) -> dict[str, list[int]]:
    """The data of every bar code on the label, with the rows it scans on."""
    grey = image.convert("L")
    width = grey.width
    pixels = grey.tobytes()
    found: dict[str, list[int]] = {}
    for y in range(grey.height):
        for data in decode_row(pixels[y * width : (y + 1) * width]):
            found.setdefault(data, []).append(y)
    return found


def test_png_is_a_black_and_white_4_by_2_inch_label_at_300_dpi() -> None:
    image = Image.open(io.BytesIO(render_label(FULL, "png")))
    assert image.format == "PNG"
    assert image.mode == "1"  # what a label printer prints: no grey to dither
    assert image.size == LABEL_SIZE == (4 * DPI, 2 * DPI)
    assert image.info["dpi"] == pytest.approx((DPI, DPI), abs=0.01)


def test_pdf_is_one_4_by_2_inch_page() -> None:
    data = render_label(FULL, "pdf")
    assert data.startswith(b"%PDF")
    assert b"/MediaBox [ 0 0 288.0 144.0 ]" in data  # 4 x 2 inches of 72 points
    assert data.count(b"/Type /Page\n") == 1
    # Lossless, so the bars stay sharp: JPEG (DCTDecode) would blur their edges.
    assert b"/CCITTFaxDecode" in data
    assert b"/DCTDecode" not in data


def test_unknown_format_names_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"'svg'.*png, pdf"):
        render_label(FULL, "svg")  # type: ignore[arg-type]


def test_both_bar_codes_scan_back_to_coi_and_din_data() -> None:
    found = barcodes(png_image(FULL))
    assert set(found) == {COI.barcode_data(), DIN.barcode_data()}
    assert COI.barcode_data() == "&/CHG123426A1B2C3"
    assert DIN.barcode_data() == "=G12342600012381"
    # Bars are tall enough to scan along many rows, not one lucky line.
    assert len(found[COI.barcode_data()]) >= 80
    assert max(found[COI.barcode_data()]) < min(found[DIN.barcode_data()])


def test_without_din_only_the_coi_bar_code_is_printed() -> None:
    assert set(barcodes(png_image(MINIMAL))) == {COI.barcode_data()}


def test_bars_are_whole_modules_with_quiet_zones() -> None:
    """Every bar and space of a bar code is 1-4 modules of exactly MODULE_DOTS dots."""
    image = png_image(MINIMAL)
    y = barcodes(image)[COI.barcode_data()][0]
    row_runs = runs(image.crop((0, y, image.width, y + 1)).tobytes())
    first_bar = next(i for i, (dark, _) in enumerate(row_runs) if dark)
    bars = row_runs[first_bar:]
    symbol_end = next(i for i, (dark, w) in enumerate(bars) if not dark and w > 4 * MODULE_DOTS)
    symbol = bars[:symbol_end]
    assert {w % MODULE_DOTS for _, w in symbol} == {0}
    assert {w // MODULE_DOTS for _, w in symbol} <= {1, 2, 3, 4}
    assert row_runs[first_bar - 1][1] >= QUIET_ZONE_MODULES * MODULE_DOTS
    assert bars[symbol_end][1] >= QUIET_ZONE_MODULES * MODULE_DOTS


def test_another_coi_changes_only_the_coi_bar_code_and_text() -> None:
    image = png_image(FULL)
    other = png_image(replace(FULL, coi=OTHER_COI))
    assert set(barcodes(other)) == {OTHER_COI.barcode_data(), DIN.barcode_data()}
    changed = ImageChops.difference(image, other).getbbox()
    assert changed is not None
    _, _, right, bottom = changed
    din_rows = barcodes(image)[DIN.barcode_data()]
    assert bottom < min(din_rows)  # DIN, SEC and everything below are untouched
    assert right < 750  # the right-hand column (product, expiry, pseudonym) is untouched


def test_optional_text_is_printed_only_when_given() -> None:
    bare = replace(FULL, sec=None, pseudonym=None, site_name=None)
    difference = ImageChops.difference(png_image(FULL), png_image(bare)).getbbox()
    assert difference is not None
    assert set(barcodes(png_image(bare))) == {COI.barcode_data(), DIN.barcode_data()}


def test_fields_show_identifiers_with_check_characters() -> None:
    fields = dict(label_fields(FULL))
    assert fields == {
        "Chain of identity (CoI)": "CH G1234 26 A1B2C3 4",
        "Donation (DIN)": "G1234 26 000123 L",
        "Product": "Tisagenlecleucel CAR-T cell suspension for infusion",
        "Expiry": "2026-05-31",
        "SEC": "SEC: DE000123G123426000123 A00S1234A0020260531",
        "Order pseudonym": "ORD-7F3K-2Q9M",
        "Site": "Leiden Cell Therapy Facility, bay 3",
    }


def test_fields_without_din_or_expiry_say_so() -> None:
    assert label_fields(MINIMAL) == (
        ("Chain of identity (CoI)", "CH G1234 26 A1B2C3 4"),
        ("Donation (DIN)", NO_DIN),
        ("Product", "Apheresis"),
        ("Expiry", NO_EXPIRY),
    )
    assert NO_EXPIRY == "no expiry set"


def test_expiry_changes_the_printed_label() -> None:
    dated = replace(MINIMAL, expiry=EXPIRY)
    assert ImageChops.difference(png_image(MINIMAL), png_image(dated)).getbbox() is not None


def test_too_long_product_name_is_refused_not_cut() -> None:
    with pytest.raises(ValueError, match=r"product_name .* does not fit"):
        render_label(replace(MINIMAL, product_name="Autologous " * 30), "png")


def test_long_product_name_wraps_and_the_label_still_scans() -> None:
    content = replace(FULL, product_name="Autologous anti-CD19 CAR-T cells, cryopreserved bag 2")
    assert set(barcodes(png_image(content))) == {COI.barcode_data(), DIN.barcode_data()}


@pytest.mark.parametrize(
    ("field", "value"),
    [("product_name", "  "), ("pseudonym", ""), ("site_name", "Bay\n3"), ("product_name", "a\tb")],
)
def test_blank_or_unprintable_text_is_refused(field: str, value: str) -> None:
    changes: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=field):
        replace(MINIMAL, **changes)


def test_sec_of_another_donation_is_refused() -> None:
    other_din = DonationIdentificationNumber.parse("G123426000124")
    with pytest.raises(ValueError, match="one donation"):
        replace(FULL, din=other_din)


def test_sec_with_another_expiry_is_refused() -> None:
    with pytest.raises(ValueError, match="expiry"):
        replace(FULL, expiry=date(2026, 6, 1))


def test_any_stored_pseudonym_fits_and_a_longer_one_is_refused() -> None:
    """Orders keep pseudonyms of at most 16 characters; W is the widest letter."""
    widest = replace(FULL, pseudonym="W" * 16)
    assert set(barcodes(png_image(widest))) == {COI.barcode_data(), DIN.barcode_data()}
    with pytest.raises(ValueError, match=r"pseudonym .* \(60 characters\) does not fit"):
        render_label(replace(FULL, pseudonym="W" * 60), "png")
