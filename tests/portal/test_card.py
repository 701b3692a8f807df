"""The QR membership card: what the portal serves, decoded by a real decoder (zxing-cpp), is a token
the POS API resolves to the member; old tokens are 410, tampered ones 404 (docs/api.md "Member codes")."""

import io
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

import zxingcpp
from PIL import Image, ImageDraw

SVG_NS = "{http://www.w3.org/2000/svg}"
SQUARE = re.compile(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z")


def decode_png(data: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(data)))
    assert len(results) == 1, results
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    return results[0].text


def rasterise_svg(data: bytes, scale: int = 8) -> Image.Image:
    """Draw the served SVG (a white background and one path of module squares) the way a browser
    would, without a rendering library: cairosvg is not installed and nothing here needs the network."""
    root = ElementTree.fromstring(data)
    _, _, width, height = (float(value) for value in root.get("viewBox").split())
    image = Image.new("L", (round(width * scale), round(height * scale)), 255)
    draw = ImageDraw.Draw(image)
    paths = root.findall(f"{SVG_NS}path")
    assert len(paths) == 1
    squares = SQUARE.findall(paths[0].get("d"))
    assert squares and len(squares) == paths[0].get("d").count("z")
    for x0, y0, x1, y1 in squares:
        draw.rectangle([float(x0) * scale, float(y0) * scale, float(x1) * scale - 1, float(y1) * scale - 1], fill=0)
    return image


def decode_svg(data: bytes) -> str:
    results = zxingcpp.read_barcodes(rasterise_svg(data))
    assert len(results) == 1, results
    return results[0].text


def test_card_json_is_the_current_token_as_api_md_says(member, clock):
    body = member.client.get("/portal/card.json").get_json()
    assert set(body) == {"token", "expires_at"}
    assert body["token"].startswith("LY")
    assert body["expires_at"].endswith("Z")
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    # Issued at the start of the current step, accepted for 120 s.
    assert expires_at - clock() <= timedelta(seconds=120)
    assert expires_at - clock() > timedelta(seconds=60)


def test_png_qr_round_trip_resolves_to_the_member(member, pos):
    token = decode_png(member.client.get("/portal/card.png").data)
    assert token == member.client.get("/portal/card.json").get_json()["token"]
    lookup = pos.get("/members/lookup", query_string={"code": token})
    assert lookup.status_code == 200, lookup.get_json()
    assert lookup.get_json()["member_no"] == member.member_no


def test_svg_qr_on_the_card_page_round_trip(member, pos):
    page = member.client.get("/portal/card").get_data(as_text=True)
    image_url = re.search(r'<img id="card-qr" src="([^"]+)"', page).group(1).replace("&amp;", "&")
    response = member.client.get(image_url)
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "no-store"
    token = decode_svg(response.data)
    assert token == member.client.get("/portal/card.json").get_json()["token"]
    lookup = pos.get("/members/lookup", query_string={"code": token})
    assert lookup.status_code == 200
    assert lookup.get_json()["member_no"] == member.member_no


def test_card_page_shows_the_member_number_and_refreshes_itself(member):
    page = member.client.get("/portal/card").get_data(as_text=True)
    assert f'<strong class="member-no" id="member-no">{member.member_no}</strong>' in page
    assert 'data-json-url="/portal/card.json"' in page
    assert 'data-step-seconds="60"' in page and 'data-max-age-seconds="120"' in page
    assert '<script src="/static/js/card.js" defer></script>' in page
    with member.client.get("/static/js/card.js") as script:
        assert script.status_code == 200
        source = script.get_data(as_text=True)
    # Fetches the URL the page names, swaps the image, and refreshes when the tab comes back.
    assert "dataset.jsonUrl" in source and "image.src" in source and "visibilitychange" in source
    assert "http://" not in source and "https://" not in source


def test_token_rotates_every_step_and_the_old_one_lives_120_seconds(member, pos, clock):
    first = member.client.get("/portal/card.json").get_json()["token"]
    clock.advance(seconds=60)
    second = member.client.get("/portal/card.json").get_json()["token"]
    assert second != first
    assert decode_png(member.client.get("/portal/card.png").data) == second

    clock.set(datetime(2026, 11, 22, 2, 0, tzinfo=UTC) + timedelta(seconds=119))
    assert pos.get("/members/lookup", query_string={"code": first}).status_code == 200
    clock.set(datetime(2026, 11, 22, 2, 0, tzinfo=UTC) + timedelta(seconds=121))
    expired = pos.get("/members/lookup", query_string={"code": first})
    assert expired.status_code == 410
    assert expired.get_json()["type"].endswith("/card-token-expired")
    assert pos.get("/members/lookup", query_string={"code": second}).status_code == 200


def test_a_tampered_token_names_nobody(member, pos):
    token = decode_png(member.client.get("/portal/card.png").data)
    for position in (3, len(token) // 2, len(token) - 2):
        replacement = "A" if token[position] != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1:]
        response = pos.get("/members/lookup", query_string={"code": tampered})
        assert response.status_code == 404, tampered
        assert member.name not in response.get_data(as_text=True)


def test_the_card_of_one_member_does_not_name_another(member, other_member, pos):
    token = decode_png(other_member.client.get("/portal/card.png").data)
    assert pos.get("/members/lookup", query_string={"code": token}).get_json()["member_no"] == other_member.member_no
