"""Pillow plugin: ``import aecodec.pillow`` and ``Image.open("x.aec")`` decodes aec images.

    Image.open ─_accept(magic)─> AecImageFile._open: header -> size, mode
    .load() ─AecDecoder─> aecodec.codec.decompress_image(whole file) -> raw pixels
"""

from __future__ import annotations

import io

from PIL import Image, ImageFile

from aecodec import container
from aecodec.errors import AecError

FORMAT = "AEC"
_RAWMODE = {"RGB": "RGB", "RGBA": "RGBA", "L": "L", "LA": "LA", "I;16": "I;16"}


def _accept(prefix: bytes) -> bool:
    return prefix[:4] == container.MAGIC


class AecImageFile(ImageFile.ImageFile):
    format = FORMAT
    format_description = "aecodec learned image compression"

    def _open(self) -> None:
        from aecodec.codec import parse_image_header

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
                if chunk.tag in ("ICCP", "EXIF"):
                    self.info["icc_profile" if chunk.tag == "ICCP" else "exif"] = reader.read(chunk)
        except AecError:
            pass  # a damaged index surfaces as an error when the pixels are loaded
        self.info["aec_model"] = info.header["model"]["name"]
        self.tile = [ImageFile._Tile("aec", (0, 0) + self.size, 0, self._mode)]


class AecDecoder(ImageFile.PyDecoder):
    _pulls_fd = True

    def decode(self, buffer):
        from aecodec.codec import decompress_image

        assert self.fd is not None
        self.fd.seek(0)
        data = self.fd.read()
        try:
            image = decompress_image(io.BytesIO(data))
        except AecError as exc:
            raise OSError(f"cannot decode aec image: {exc}") from None
        self.set_as_raw(image.tobytes(), _RAWMODE[image.mode])
        return -1, 0


Image.register_open(FORMAT, AecImageFile, _accept)
Image.register_decoder("aec", AecDecoder)
Image.register_extension(FORMAT, ".aec")
Image.register_mime(FORMAT, "image/x-aec")
