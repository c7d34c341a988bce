"""Previews, inline input images (security.md §6 row 9), image facts and output encodings."""

from __future__ import annotations

import base64
import io
import os
import random
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from mcp_bridge.media import images
from mcp_bridge.media.images import (
    ImageRejected,
    check_image_bytes,
    decode_input_image,
    encode_for_suffix,
    format_for_suffix,
    image_info,
    is_inline_image,
    make_preview,
    read_input_file,
    sniff_format,
)


def encoded(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object) -> bytes:
    im = Image.new(mode, size, (200, 30, 60) if mode == "RGB" else None)
    out = io.BytesIO()
    im.save(out, fmt, **save)
    return out.getvalue()


def gradient(width: int, height: int) -> Image.Image:
    im = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (im, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), im.rotate(90)))


def noise(width: int, height: int) -> Image.Image:
    return Image.frombytes("RGB", (width, height), random.Random(7).randbytes(width * height * 3))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- previews -----------------------------------------------------------------------------------------


def test_a_preview_is_webp_with_its_longest_side_at_most_512_and_well_under_200_kb() -> None:
    source = io.BytesIO()
    gradient(1024, 1536).save(source, "PNG")
    data, mime = make_preview(source.getvalue())
    assert mime == "image/webp" and len(data) <= images.PREVIEW_MAX_BYTES < 200_000
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "WEBP" and im.size == (341, 512)


def test_a_preview_of_pure_noise_still_fits_the_byte_budget() -> None:
    data, _ = make_preview(noise(2048, 2048))
    assert len(data) <= images.PREVIEW_MAX_BYTES
    data, _ = make_preview(noise(512, 512), max_bytes=8_000)
    assert len(data) <= 8_000
    with Image.open(io.BytesIO(data)) as im:
        assert max(im.size) < 512  # it had to shrink, not only lower the quality


def test_a_small_image_is_not_enlarged_and_the_callers_image_is_not_modified() -> None:
    im = gradient(100, 50)
    before = im.tobytes()
    data, _ = make_preview(im, max_side=512)
    with Image.open(io.BytesIO(data)) as preview:
        assert preview.size == (100, 50)
    assert im.tobytes() == before and im.size == (100, 50)


def test_a_preview_keeps_transparency_in_webp_and_flattens_it_in_jpeg(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    data, mime = make_preview(rgba)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGBA"
    monkeypatch.setattr("PIL.features.check", lambda name: False)
    data, mime = make_preview(rgba)
    assert mime == "image/jpeg"
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.getpixel((20, 20)) == (255, 255, 255)


def test_a_preview_carries_no_metadata_from_the_source() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", '{"secret": "workflow"}')
    source = io.BytesIO()
    gradient(64, 64).save(source, "PNG", pnginfo=info)
    data, _ = make_preview(source.getvalue())
    assert b"secret" not in data


def test_a_preview_of_bytes_that_are_no_image_is_rejected() -> None:
    with pytest.raises(ImageRejected, match="not a readable image"):
        make_preview(b"definitely not an image")


# --- inline input images -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_base64_and_data_uris_of_allowed_formats_decode_to_the_same_bytes(fmt: str) -> None:
    raw = encoded(fmt)
    kind = fmt.lower()
    assert decode_input_image(b64(raw)) == (raw, kind)
    assert decode_input_image(f"data:image/{kind};base64,{b64(raw)}") == (raw, kind)
    assert decode_input_image(f"DATA:Image/{kind.upper()};name=x.{kind};base64,{b64(raw)}") == (raw, kind)


def test_base64_variants_are_accepted_url_safe_unpadded_and_wrapped() -> None:
    raw = encoded("PNG", (33, 17))
    text = b64(raw)
    assert decode_input_image(base64.urlsafe_b64encode(raw).decode().rstrip("="))[0] == raw
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert decode_input_image("  " + wrapped + "\r\n")[0] == raw
    assert decode_input_image("data:image/jpg;base64," + b64(encoded("JPEG")))[1] == "jpeg"


def test_an_oversized_inline_image_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("decoded before the length check")

    monkeypatch.setattr("base64.b64decode", no_decoding)
    with pytest.raises(ImageRejected, match="too large"):
        decode_input_image("A" * 12_000_000)
    with pytest.raises(ImageRejected, match="too large"):
        decode_input_image("A" * 2000, max_bytes=1000)


def test_the_decoded_size_is_capped_too() -> None:
    raw = encoded("PNG", (256, 256))
    assert len(raw) > 600
    with pytest.raises(ImageRejected, match="at most 600 are accepted"):
        decode_input_image(b64(raw)[: 4 * 600 // 3 + 200], max_bytes=600)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("!!!not base64!!!", "not valid base64", id="row9-invalid-characters"),
        pytest.param("QUJD=QUJD", "not valid base64", id="row9-padding-in-the-middle"),
        pytest.param("", "empty", id="row9-empty"),
        pytest.param("data:image/gif;base64,R0lGODlh", "image/gif", id="row9-gif-mime"),
        pytest.param("data:text/html;base64,PGgxPg==", "text/html", id="row9-html-mime"),
        pytest.param("data:image/svg+xml;base64,PHN2Zz4=", "svg", id="row9-svg-mime"),
        pytest.param("data:;base64,AAAA", "'none'", id="row9-no-mime"),
        pytest.param("data:image/png,rawdata", "base64-encoded", id="row9-not-base64-encoded"),
        pytest.param("data:image/png;base64", "malformed", id="row9-no-comma"),
        pytest.param(b64(b"GIF89a" + b"\0" * 40), "not a PNG, JPEG or WebP", id="row9-gif-bytes"),
        pytest.param(b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "not a PNG", id="row9-svg-bytes"),
        pytest.param(b64(os.urandom(64)), "not a PNG", id="row9-random-bytes"),
        pytest.param(b64(encoded("BMP")), "not a PNG", id="row9-bmp"),
    ],
)
def test_bad_inline_images_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        decode_input_image(text)


def test_a_data_uri_whose_type_differs_from_its_content_is_rejected() -> None:
    with pytest.raises(ImageRejected, match="says png but the data is jpeg"):
        decode_input_image("data:image/png;base64," + b64(encoded("JPEG")))


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(ImageRejected, match="base64 string"):
        decode_input_image(["4", 0])  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_images_are_rejected(fmt: str) -> None:
    raw = encoded(fmt, (200, 200), "RGB") if fmt != "PNG" else _png_with_detail()
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        check_image_bytes(raw[: len(raw) * 2 // 3])


def _png_with_detail() -> bytes:
    out = io.BytesIO()
    noise(200, 200).save(out, "PNG")
    return out.getvalue()


def test_a_corrupted_png_checksum_is_rejected() -> None:
    raw = bytearray(_png_with_detail())
    raw[60] ^= 0xFF
    with pytest.raises(ImageRejected, match="damaged or truncated"):
        check_image_bytes(bytes(raw))


def test_a_header_claiming_more_pixels_than_the_cap_is_rejected_before_decoding() -> None:
    with pytest.raises(ImageRejected, match="5000x4000 pixels; at most 16777216"):
        check_image_bytes(png_header_only(5000, 4000))
    with pytest.raises(ImageRejected, match="too many pixels|at most"):
        check_image_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageRejected, match="at most 100 pixels"):
        decode_input_image(b64(encoded("PNG", (20, 20))), max_pixels=100)


def test_animated_images_are_rejected() -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    for fmt in ("PNG", "WEBP"):
        out = io.BytesIO()
        frames[0].save(out, fmt, save_all=True, append_images=frames[1:])
        with pytest.raises(ImageRejected, match="animated"):
            check_image_bytes(out.getvalue())


def test_image_facts_apply_the_exif_rotation_comfyui_applies() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    facts = check_image_bytes(encoded("JPEG", (40, 20), exif=exif.tobytes()))
    assert (facts.width, facts.height, facts.format, facts.mime) == (20, 40, "jpeg", "image/jpeg")


def test_sniff_format_reads_magic_bytes_only() -> None:
    assert [sniff_format(encoded(f)) for f in ("PNG", "JPEG", "WEBP")] == ["png", "jpeg", "webp"]
    assert sniff_format(b"RIFF\0\0\0\0WAVE") is None and sniff_format(b"") is None


def test_is_inline_image_tells_base64_from_file_names_and_uris() -> None:
    assert is_inline_image("data:image/png;base64,AAAA")
    assert is_inline_image(b64(encoded("PNG")))
    assert is_inline_image(b64(encoded("JPEG")))  # starts with "/9j/"
    for name in ("cat.png", "mcp/job-1_00001_.png", "comfy://output/mcp/x.png", "/srv/in/cat.png", "A" * 10):
        assert not is_inline_image(name)


# --- files -----------------------------------------------------------------------------------------------


def test_image_info_reports_size_and_format(tmp_path: Path) -> None:
    (tmp_path / "a.webp").write_bytes(encoded("WEBP", (30, 10)))
    assert image_info(tmp_path / "a.webp") == (30, 10, "webp")
    (tmp_path / "b.png").write_bytes(b"nope")
    with pytest.raises(ImageRejected):
        image_info(tmp_path / "b.png")


def test_read_input_file_checks_the_file_and_refuses_links_and_folders(tmp_path: Path) -> None:
    raw = encoded("PNG")
    (tmp_path / "a.png").write_bytes(raw)
    assert read_input_file(tmp_path / "a.png") == (raw, "png")
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(ImageRejected, match="cannot be opened"):
        read_input_file(tmp_path / "link.png")
    (tmp_path / "dir.png").mkdir()
    os.mkfifo(tmp_path / "fifo.png")
    for special in ("dir.png", "fifo.png"):
        with pytest.raises(ImageRejected, match="not a regular file"):
            read_input_file(tmp_path / special)
    with pytest.raises(ImageRejected, match="larger than 100 bytes"):
        read_input_file(tmp_path / "a.png", max_bytes=100)
    (tmp_path / "cut.png").write_bytes(_png_with_detail()[:500])
    with pytest.raises(ImageRejected, match="truncated"):
        read_input_file(tmp_path / "cut.png")


# --- encodings for output_path --------------------------------------------------------------------


def test_encode_for_suffix_matches_the_extension_and_drops_metadata() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", "SECRET-GRAPH")
    source = io.BytesIO()
    gradient(64, 32).save(source, "PNG", pnginfo=info)
    raw = source.getvalue()
    for suffix, fmt in ((".png", "PNG"), (".JPG", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP")):
        data = encode_for_suffix(raw, suffix)
        assert b"SECRET-GRAPH" not in data
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == fmt and im.size == (64, 32)
    assert encode_for_suffix(raw, ".png", keep_metadata=True) is raw
    assert b"SECRET-GRAPH" not in encode_for_suffix(raw, ".webp", keep_metadata=True)


def test_encode_for_suffix_flattens_transparency_for_jpeg_and_refuses_other_suffixes() -> None:
    data = encode_for_suffix(Image.new("RGBA", (8, 8), (0, 0, 0, 0)), ".jpg")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB" and im.getpixel((4, 4)) == (255, 255, 255)
    with pytest.raises(ImageRejected, match=r"\.gif"):
        encode_for_suffix(data, ".gif")
    assert format_for_suffix(".JPEG") == "jpeg"
