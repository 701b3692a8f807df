"""QR images of card tokens: SVG for the portal page (crisp on any screen, a few kB), PNG for whatever
cannot show SVG. Medium error correction survives a scratched phone screen; the quiet zone of four
modules is what scanners need around the code."""

import io

import qrcode
import qrcode.image.svg
from qrcode.image.pil import PilImage


def _qr(data: str) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(data)
    code.make(fit=True)
    return code


def qr_svg(data: str) -> bytes:
    """The code as one SVG path on a white background, sized by its viewBox (the page sets the size)."""
    image = _qr(data).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    return image.to_string(encoding="unicode").encode()


def qr_png(data: str) -> bytes:
    buffer = io.BytesIO()
    _qr(data).make_image(image_factory=PilImage).save(buffer, format="PNG")
    return buffer.getvalue()
