"""Physical metadata of TIFF files: pixel size, its unit, and a declared bit depth.

Sources, in order of trust: OME-XML (``PhysicalSizeX/Y/Z`` with units, ``SignificantBits``);
ImageJ (``XResolution``/``YResolution`` tags in pixels per unit, ``unit`` and ``spacing`` in the
description); plain TIFF resolution tags with a centimetre unit. Resolution in pixels per inch
is a print setting (72/96/300 dpi), not a pixel size, and is ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import tifffile

__all__ = ["normalise_unit", "read_physical_metadata", "UNIT_ALIASES"]

UNIT_ALIASES = {
    "um": "um",
    "micron": "um",
    "microns": "um",
    "µm": "um",
    "μm": "um",
    "\\u00b5m": "um",
    "micrometer": "um",
    "micrometre": "um",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "m": "m",
    "a": "A",
    "å": "A",
    "angstrom": "A",
}


def normalise_unit(unit: str | None) -> str | None:
    """Map spellings of a length unit (``micron``, ``µm``, ``\\u00B5m``) onto one (``um``).

    Returns None for empty, ``pixel`` or unrecognised units: a size without a known unit is no
    physical size.
    """
    if not unit:
        return None
    return UNIT_ALIASES.get(str(unit).strip().lower())


def _size_from_resolution(page: tifffile.TiffPage, tag: str) -> float | None:
    res = page.tags.get(tag)
    if res is None:
        return None
    num, den = res.value
    if not num or not den:
        return None
    return den / num  # the tag holds pixels per unit


def _from_ome(tif: tifffile.TiffFile, series_index: int) -> tuple[dict, str | None, int | None]:
    root = ET.fromstring(tif.ome_metadata)
    pixels = [el for el in root.iter() if el.tag.endswith("}Pixels") or el.tag == "Pixels"]
    if series_index >= len(pixels):
        return {}, None, None
    px = pixels[series_index].attrib
    sizes: dict[str, float] = {}
    units = set()
    for ax in "XYZ":
        if f"PhysicalSize{ax}" in px:
            sizes[ax] = float(px[f"PhysicalSize{ax}"])
            units.add(normalise_unit(px.get(f"PhysicalSize{ax}Unit", "µm")))
    unit = units.pop() if len(units) == 1 else None
    if unit is None:  # mixed or unknown units: do not guess a conversion
        sizes = {}
    bits = int(px["SignificantBits"]) if "SignificantBits" in px else None
    return sizes, unit, bits


def read_physical_metadata(
    tif: tifffile.TiffFile, series_index: int, axes: str
) -> tuple[dict[str, float], str | None, int | None]:
    """Pixel size per axis (X, Y, Z among ``axes``), its unit and a declared bit depth.

    Returns:
        (pixel_size, unit, bit_depth_hint); ``pixel_size`` holds only what the file declares.
    """
    page = tif.series[series_index].keyframe
    bits_tag = page.bitspersample
    hint = bits_tag if bits_tag not in (8, 16, 32, 64) else None
    sizes: dict[str, float] = {}
    unit: str | None = None
    if tif.is_ome and tif.ome_metadata:
        sizes, unit, ome_bits = _from_ome(tif, series_index)
        hint = ome_bits or hint
    elif tif.is_imagej and tif.imagej_metadata is not None:
        meta = tif.imagej_metadata
        unit = normalise_unit(meta.get("unit"))
        if unit is not None:
            for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
                size = _size_from_resolution(page, tag)
                if size is not None:
                    sizes[ax] = size
            if "Z" in axes and meta.get("spacing"):
                sizes["Z"] = float(meta["spacing"])
    else:
        res_unit = page.tags.get("ResolutionUnit")
        if res_unit is not None and int(res_unit.value) == 3:  # centimetre
            for ax, tag in (("X", "XResolution"), ("Y", "YResolution")):
                size = _size_from_resolution(page, tag)
                if size is not None:
                    sizes[ax] = size * 1e4
            unit = "um" if sizes else None
    sizes = {ax: v for ax, v in sizes.items() if ax in axes and v > 0}
    return sizes, (unit if sizes else None), hint
