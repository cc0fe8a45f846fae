"""Pillow plugin: ``import aecodec.pillow``; then ``Image.open("x.aec")`` decodes aec images and
``image.save("x.aec", quality=6)`` (or ``target_bpp=0.5``) encodes them.

    Image.open ─_accept(magic)─> AecImageFile._open: header -> size, mode
    .load() ─AecDecoder─> aecodec.image.decompress_image(whole file) -> raw pixels
    .save ─_save─> aecodec.image.compress_image(image, quality | target_bpp) -> file

Save options: ``quality`` is aecodec's 1 (smallest) .. 10 scale, not JPEG's 0..100; ``icc_profile``
and ``exif`` default to the image's own, as with Pillow's PNG and WebP writers.
"""

from __future__ import annotations

import io

from PIL import Image, ImageFile

from aecodec import container
from aecodec.errors import AecError
from aecodec.io import icc as image_icc

FORMAT = "AEC"
_RAWMODE = {"RGB": "RGB", "RGBA": "RGBA", "L": "L", "LA": "LA", "I;16": "I;16"}


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image compression"

    def _open(self) -> None:
        from aecodec.image import parse_image_header

        try:
            reader = container.ContainerReader(self.fp)
            info = parse_image_header(reader.header)
        except AecError as exc:
            raise SyntaxError(f"not a valid aec image: {exc}") from None
        self._size = (info.width, info.height)
        self._mode = "I;16" if info.mode == "L" and info.bit_depth == 16 else info.mode
        self.info["aec_quality"] = info.quality
        try:  # metadata chunks through the index (seekable files; skipped on pipes)
            for chunk in reader.index():
                if chunk.tag == "EXIF":
                    self.info["exif"] = reader.read(chunk)
                elif chunk.tag in ("ICCP", "ICCN"):  # ICCN: a known profile by name (SPEC §3.1)
                    icc = image_icc.from_chunks({chunk.tag: reader.read(chunk)})
                    if icc:
                        self.info["icc_profile"] = icc
        except AecError:
            pass  # a damaged index surfaces as an error when the pixels are loaded
        self.info["aec_model"] = info.header["model"]["name"]
        self.tile = [ImageFile._Tile("aec", (0, 0) + self.size, 0, self._mode)]


class AecDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        from aecodec.image import decompress_image

        assert self.fd is not None
        self.fd.seek(0)
        data = self.fd.read()
        try:
            image = decompress_image(io.BytesIO(data))
        except AecError as exc:
            raise OSError(f"cannot decode aec image: {exc}") from None
        self.set_as_raw(image.tobytes(), _RAWMODE[image.mode])
        return -1, 0


def _save(im: Image.Image, fp, filename) -> None:
    from aecodec.image import DEFAULT_QUALITY, compress_image

    opts = im.encoderinfo
    image = im
    icc, exif = opts.get("icc_profile", im.info.get("icc_profile")), opts.get("exif", im.info.get("exif"))
    if hasattr(exif, "tobytes"):  # an Image.Exif object
        exif = exif.tobytes()
    if icc != im.info.get("icc_profile") or exif != im.info.get("exif"):
        image = im.copy()
        for key, value in (("icc_profile", icc), ("exif", exif)):
            image.info.pop(key, None)
            if value:
                image.info[key] = value
    try:
        if opts.get("target_bpp") is not None:
            data = compress_image(image, model=opts.get("model"), target_bpp=opts["target_bpp"])
        else:
            data = compress_image(image, opts.get("quality", DEFAULT_QUALITY), model=opts.get("model"))
    except AecError as exc:
        raise ValueError(f"cannot save as aec: {exc}") from None
    fp.write(data)


Image.register_open(FORMAT, AecImageFile, _accept)
Image.register_save(FORMAT, _save)
Image.register_decoder("aec", AecDecoder)
Image.register_extension(FORMAT, ".aec")
Image.register_mime(FORMAT, "image/x-aec")
