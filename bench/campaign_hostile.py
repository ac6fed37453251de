"""Campaign part 1: hostile files (as training sets and as classify images) and malformed requests.

Each file is sent both ways: alone as `images_file` to POST /v3/classify, and inside a training set
(an image wrapped in a zip with ten good beagles; a zip as it is) to POST /v3/classifiers with a good
husky set. Every answer must be a 4xx with Watson's JSON, or a 2xx where the input is legitimately
accepted (a per-image error in a 200 classify, a 48 MP photo, a zip whose bad members are skipped).
Classifiers a hostile create made are deleted at once.
"""

from __future__ import annotations

import http.client
import io
import json
import stat
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

from bench.campaign_common import (
    DOGS_JPG,
    TUTORIAL,
    VERSION,
    Server,
    tutorial_images,
    variant_jpeg,
    verdict,
    zip_bytes,
)

BEAGLE = tutorial_images("beagle", 1)[0]
PHONE_SIZE = (8000, 6000)


# hostile files ------------------------------------------------------------------------------------
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_of_zeros(width: int, height: int, extra: bytes = b"") -> bytes:
    """A 1-bit PNG of zeros: tiny on disk, width x height pixels decoded (a pixel bomb)."""
    row, comp = b"\x00" * (1 + (width + 7) // 8), zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def jpeg_claiming(data: bytes, width: int, height: int) -> bytes:
    """A real JPEG whose frame header claims another size."""
    at = next(data.index(marker) for marker in (b"\xff\xc0", b"\xff\xc2") if marker in data)
    return data[: at + 5] + struct.pack(">HH", height, width) + data[at + 9 :]


def phone_photo() -> bytes:
    """A tutorial photo upscaled to 8000x6000 (48 MP) and saved as a quality-90 JPEG, as a phone writes it."""
    with Image.open(BEAGLE) as img:
        return encode(img.convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC), "JPEG", quality=90)


def hostile_images() -> dict[str, bytes]:
    """Single hostile (or odd but valid) image files, by name."""
    good = BEAGLE.read_bytes()
    with Image.open(BEAGLE) as img:
        rgb = img.convert("RGB")
    small = rgb.resize((64, 64))
    frames = [small.rotate(i * 10) for i in range(30)]
    ztxt_bomb = png_chunk(b"zTXt", b"comment\x00\x00" + zlib.compress(b"A" * 50_000_000, 9))
    return {
        "jpeg truncated to half": good[: len(good) // 2],
        "jpeg truncated to 100 bytes": good[:100],
        "jpeg with a corrupted middle": good[:2000] + bytes(range(256)) * 20 + good[7120:],
        "jpeg SOI marker only": b"\xff\xd8",
        "jpeg claiming 65000x65000": jpeg_claiming(good, 65000, 65000),
        "jpeg claiming 0x0": jpeg_claiming(good, 0, 0),
        "png pixel bomb 100000x100000": png_of_zeros(100_000, 100_000),
        "png pixel bomb 20000x20000": png_of_zeros(20_000, 20_000),
        "png 1x60000 strip": png_of_zeros(1, 60_000),
        "png zTXt bomb (50 MB text)": png_of_zeros(64, 64, ztxt_bomb),
        "png 8x8 (below 32 px)": encode(small.resize((8, 8)), "PNG"),
        "48 MP phone photo (8000x6000)": phone_photo(),
        "jpeg over 10 MB (padded after EOI)": good + b"\x00" * (10 * 1024 * 1024),
        "cmyk jpeg": encode(rgb.convert("CMYK"), "JPEG"),
        "16-bit grayscale png": encode(rgb.convert("I;16"), "PNG"),
        "palette png with transparency": encode(rgb.convert("P"), "PNG", transparency=0),
        "animated gif (30 frames)": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "webp": encode(rgb, "WEBP"),
        "bmp": encode(rgb, "BMP"),
        "tiff": encode(rgb, "TIFF"),
        "empty file": b"",
        "text named .jpg": b"this is not an image\n" * 100,
        "random bytes": bytes((i * 7919 + 13) % 256 for i in range(50_000)),
        "html page": b"<html><body><script>alert(1)</script></body></html>",
        "svg named .png": b'<svg xmlns="http://www.w3.org/2000/svg" width="99999" height="99999"/>',
        "pdf header": b"%PDF-1.4\n" + b"0" * 1000,
        "jpeg with a zip appended (polyglot)": good + zip_bytes({"a.jpg": good}),
    }


def symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def hostile_zips() -> dict[str, bytes]:
    """Hostile zip files, by name (each is also sent as a classify upload)."""
    beagles = {f"b{i}.jpg": variant_jpeg(p, i) for i, p in enumerate(tutorial_images("beagle", 10))}
    good = next(iter(beagles.values()))
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("huge.jpg", "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(300):
                member.write(block)
    links = io.BytesIO()
    with zipfile.ZipFile(links, "w") as archive:
        for name, data in beagles.items():
            archive.writestr(name, data)
        archive.writestr(symlink_member("passwd.jpg", "/etc/passwd"), "/etc/passwd")
        archive.writestr(symlink_member("up.jpg", "../../../../etc/shadow"), "../../../../etc/shadow")
    inner = zip_bytes(beagles)
    nested = inner
    for level in range(12):
        nested = zip_bytes({f"level{level}.zip": nested})
    truncated = zip_bytes(beagles)
    bad_crc = bytearray(zip_bytes(beagles))
    bad_crc[200] ^= 0xFF  # inside the first member's data
    encrypted = bytearray(zip_bytes(beagles))
    encrypted[6] |= 0x01  # general-purpose flag bit 0 (encrypted) in the first local header
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for i in range(10_050):
            archive.writestr(f"m{i}.jpg", b"")
    return {
        "zip bomb (300 MB of zeros in one member)": bomb.getvalue(),
        "zip with 10,050 empty members": many.getvalue(),
        "zip-slip members (../ and absolute)": zip_bytes(
            {**beagles, "../../../evil.jpg": good, "/tmp/evil-abs.jpg": good}
        ),
        "zip with symlink members": links.getvalue(),
        "zip of zips": zip_bytes({"a.zip": inner, "b.zip": inner}),
        "zip nested 12 levels": nested,
        "empty zip": zip_bytes({}),
        "zip of directories only": zip_bytes({"a/": b"", "a/b/": b""}),
        "zip of text files only": zip_bytes({f"t{i}.txt": b"hello" for i in range(12)}),
        "zip of 9 images (below 10)": zip_bytes(dict(list(beagles.items())[:9])),
        "truncated zip": truncated[: len(truncated) // 2],
        "zip with a bad CRC": bytes(bad_crc),
        "zip flagged encrypted": bytes(encrypted),
        "zip with duplicate member names": duplicate_names(beagles),
        "zip member names with control characters": zip_bytes(
            {f"x\x01\x1b[31m{i}\x7f.jpg": d for i, d in enumerate(beagles.values())}
        ),
        "zip member with a 5,000-character name": zip_bytes({**beagles, "n" * 5000 + ".jpg": good}),
        "zip of corrupt jpegs": zip_bytes({f"c{i}.jpg": d[: len(d) // 3] for i, d in enumerate(beagles.values())}),
        "zip with a png bomb among good images": zip_bytes({**beagles, "bomb.png": png_of_zeros(100_000, 100_000)}),
        "zip of 21 images (classify cap 20)": zip_bytes(
            {f"i{i}.jpg": variant_jpeg(BEAGLE, 1000 + i, 64) for i in range(21)}
        ),
        "jpeg named .zip": good,
        "zip with a 48 MP phone photo and 10 beagles": zip_bytes({**beagles, "phone.jpg": phone_photo()}),
        "zip with __MACOSX and hidden files": zip_bytes(
            {**beagles, "__MACOSX/._b0.jpg": b"\x00\x05\x16\x07junk", ".hidden.jpg": b"x"}
        ),
    }


def duplicate_names(members: dict[str, bytes]) -> bytes:
    """A zip whose every member is stored twice under the same name (the second with other bytes)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as archive:
        warnings.simplefilter("ignore")  # "Duplicate name": exactly what this input is
        for name, data in members.items():
            archive.writestr(name, data)
            archive.writestr(name, data[: len(data) // 2])
    return buf.getvalue()


# sending them -------------------------------------------------------------------------------------
def good_zip(name: str, start: int) -> bytes:
    return zip_bytes({f"{name}{i}.jpg": variant_jpeg(p, start + i) for i, p in enumerate(tutorial_images(name, 10))})


def send_file(client: httpx.Client, kind: str, name: str, data: bytes, husky: bytes) -> list[dict]:
    """The file as a classify upload and inside a training set; one result row per request."""
    filename = "upload.zip" if kind == "zip" else "upload.jpg"
    rows = []
    try:
        answer = client.post(
            "/v3/classify", params=VERSION, files={"images_file": (filename, data, "application/octet-stream")}
        )
    except httpx.HTTPError as exc:
        answer = exc
    rows.append(row(f"{name} -> classify", answer))
    training = (
        data
        if kind == "zip"
        else zip_bytes(
            {
                **{f"g{i}.jpg": variant_jpeg(p, 5000 + i) for i, p in enumerate(tutorial_images("beagle", 10))},
                "hostile.jpg": data,
            }
        )
    )
    files = {
        "beagle_positive_examples": ("beagle.zip", training, "application/zip"),
        "husky_positive_examples": ("husky.zip", husky, "application/zip"),
    }
    try:
        answer = client.post("/v3/classifiers", params=VERSION, data={"name": "hostile"}, files=files)
    except httpx.HTTPError as exc:
        answer = exc
    rows.append(row(f"{name} -> training set", answer))
    if not isinstance(answer, Exception) and answer.status_code == 200:
        client.delete(f"/v3/classifiers/{answer.json()['classifier_id']}", params=VERSION)
    return rows


def row(name: str, answer: httpx.Response | Exception) -> dict:
    result = {"input": name, "verdict": verdict(answer)}
    if isinstance(answer, Exception):
        result["status"] = repr(answer)[:200]
        return result
    result["status"] = answer.status_code
    if answer.status_code == 200 and "images" in answer.text[:50_000]:
        body = answer.json()
        result["image_errors"] = sum(1 for image in body.get("images", []) if "error" in image)
    if answer.status_code >= 400:
        result["error"] = answer.text[:200]
    return result


def class_name_inputs(husky: bytes, beagle: bytes) -> dict[str, dict]:
    """Hostile class and classifier names: multipart field names and the `name` field."""

    def form(field: str, name: str = "names") -> dict:
        return {
            "data": {"name": name},
            "files": {
                field: ("a.zip", beagle, "application/zip"),
                "husky_positive_examples": ("h.zip", husky, "application/zip"),
            },
        }

    return {
        "class name of 5,000 characters": form("c" * 5000 + "_positive_examples"),
        "class name of 201 characters": form("c" * 201 + "_positive_examples"),
        "class name with NUL": form("dog\x00_positive_examples"),
        "class name with control characters": form("do\x01g\x1b_positive_examples"),
        "class name with a newline": form("do\ng_positive_examples"),
        "class name with forbidden characters": form("do/g*_positive_examples"),
        "empty class name": form("_positive_examples"),
        "class name NFD equal to another's NFC": {
            "data": {"name": "nfd"},
            "files": {
                "caf\u00e9_positive_examples": ("a.zip", beagle, "application/zip"),
                "cafe\u0301_positive_examples": ("b.zip", husky, "application/zip"),
            },
        },
        "classifier name of 10,000 characters": form("beagle_positive_examples", "n" * 10_000),
        "classifier name with control characters": form("beagle_positive_examples", "evil\x00\x1b[2J"),
    }


def run_hostile_files(server: Server) -> list[dict]:
    husky = good_zip("husky", 9000)
    beagle = good_zip("beagle", 9100)
    rows: list[dict] = []
    with server.client("alice") as client:
        for name, data in hostile_images().items():
            rows += send_file(client, "image", name, data, husky)
        for name, data in hostile_zips().items():
            rows += send_file(client, "zip", name, data, husky)
        for name, request in class_name_inputs(husky, beagle).items():
            try:
                answer = client.post("/v3/classifiers", params=VERSION, **request)
            except httpx.HTTPError as exc:
                answer = exc
            rows.append(row(f"{name} -> create", answer))
            if not isinstance(answer, Exception) and answer.status_code == 200:
                client.delete(f"/v3/classifiers/{answer.json()['classifier_id']}", params=VERSION)
    return rows


# malformed requests -------------------------------------------------------------------------------
DEEP = "[" * 100_000
Send = Callable[[httpx.Client], httpx.Response]


def classify_form(**data) -> Send:
    return lambda c: c.post(
        "/v3/classify",
        params=VERSION,
        data=data,
        files={"images_file": ("dogs.jpg", DOGS_JPG.read_bytes(), "image/jpeg")},
    )


def classify_params(parameters: str) -> Send:
    return classify_form(parameters=parameters)


def malformed_requests(other_owner_cid: str, file_root: Path) -> dict[str, Send]:
    """About ninety requests a hostile or careless client sends, by name."""
    beagle = good_zip("beagle", 9200)
    cases: dict[str, Send] = {}
    for version in (
        "",
        "9999-99-99",
        "2018-02-30",
        "2018-13-01",
        "0000-00-00",
        "abc",
        "2018-03-19x",
        "2" * 5000,
        "2018-03-19\x00",
        "١٨-٠٣-١٩",
    ):
        cases[f"version={version[:20]!r}"] = lambda c, v=version: c.get("/v3/classifiers", params={"version": v})
    cases["no version"] = lambda c: c.get("/v3/classifiers")
    for threshold in ("true", "-1", "1.5", "nan", "inf", "١٢", "", "0x1", "1e400", "[0.5]", "0.5\x00"):
        cases[f"threshold={threshold!r}"] = classify_form(threshold=threshold)
    for name, parameters in {
        "5": "5",
        "a string": '"x"',
        "null": "null",
        "a list": "[]",
        "owners 5": '{"owners": 5}',
        "classifier_ids 5": '{"classifier_ids": 5}',
        "classifier_ids [5]": '{"classifier_ids": [5]}',
        "classifier_ids [[x]]": '{"classifier_ids": [["x"]]}',
        "threshold 'x'": '{"threshold": "x"}',
        "threshold true": '{"threshold": true}',
        "threshold {}": '{"threshold": {}}',
        "url a list": '{"url": ["x"]}',
        "url 5": '{"url": 5}',
        "nested 100,000 [": DEEP,
        'nested 100,000 {"a":': '{"a":' * 100_000,
        "invalid JSON": "{",
        "NaN literal": '{"threshold": NaN}',
        "lone surrogate": '{"owners": "\\ud800"}',
        "1 MB string": json.dumps({"owners": "x" * 1_000_000}),
        "10,000 classifier ids": json.dumps({"classifier_ids": [f"c{i}" for i in range(10_000)]}),
        "duplicate keys": '{"threshold": 0.1, "threshold": "x"}',
        "owners unknown": '{"owners": ["nobody"]}',
    }.items():
        cases[f"parameters {name}"] = classify_params(parameters)
    cases["classifier_ids nested 100,000"] = classify_form(classifier_ids=DEEP)
    cases["classifier_ids [[a]]"] = classify_form(classifier_ids='[["a"]]')
    cases["classifier_ids ,,,"] = classify_form(classifier_ids=",,,")
    cases["classifier_ids with NUL"] = classify_form(classifier_ids="a\x00b")
    cases["classifier_ids another owner's"] = classify_form(classifier_ids=other_owner_cid)
    root = file_root.resolve().as_uri()
    for name, url in {
        "%00 in file URL": f"{root}/dogs%00.jpg",
        "file URL outside the root": "file:///etc/passwd",
        "file URL ../ escape": f"{root}/../../../etc/passwd",
        "file URL 5,000-char name": f"{root}/{'a' * 5000}.jpg",
        "ftp URL": "ftp://example.com/a.jpg",
        "javascript URL": "javascript:alert(1)",
        "unclosed IPv6": "http://[::1/dogs.jpg",
        "http URL not allowed": "http://127.0.0.1:1/x.jpg",
        "empty URL": "",
        "URL of 10,000 chars": "http://" + "a" * 10_000,
    }.items():
        cases[f"url {name} (POST)"] = lambda c, u=url: c.post("/v3/classify", params=VERSION, data={"url": u})
    cases["url %00 (GET)"] = lambda c: c.get("/v3/classify", params={**VERSION, "url": f"{root}/dogs%00.jpg"})
    cases["GET classify without url"] = lambda c: c.get("/v3/classify", params=VERSION)
    cases["classify with nothing"] = lambda c: c.post("/v3/classify", params=VERSION)
    cases["classify as JSON body"] = lambda c: c.post("/v3/classify", params=VERSION, json={"url": "x"})
    cases["classify as text/plain"] = lambda c: c.post(
        "/v3/classify", params=VERSION, content=b"hello", headers={"content-type": "text/plain"}
    )
    cases["multipart without boundary"] = lambda c: c.post(
        "/v3/classify", params=VERSION, content=b"--x\r\n", headers={"content-type": "multipart/form-data"}
    )
    cases["multipart cut mid-part"] = lambda c: c.post(
        "/v3/classify",
        params=VERSION,
        content=b'--x\r\nContent-Disposition: form-data; name="images_file"; filename="a.jpg"\r\n\r\n\xff\xd8',
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    cases["urlencoded with %zz"] = lambda c: c.post(
        "/v3/classify",
        params=VERSION,
        content=b"threshold=%zz&url=%",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    cases["gzip content-encoding of junk"] = lambda c: c.post(
        "/v3/classify",
        params=VERSION,
        content=b"junk",
        headers={"content-type": "application/x-www-form-urlencoded", "content-encoding": "gzip"},
    )
    cases["Content-Length claims 300 MB, 100 bytes sent"] = lambda c: lying_length(c, 300 * 1024 * 1024)
    cases["body of 258 MB streamed"] = lambda c: c.post(
        "/v3/classify",
        params=VERSION,
        content=(b"\x00" * (1 << 20) for _ in range(258)),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    cases["images_file as a text field"] = lambda c: c.post(
        "/v3/classify", params=VERSION, data={"images_file": "not a file"}
    )
    cases["create with no name"] = lambda c: c.post(
        "/v3/classifiers",
        params=VERSION,
        files={"beagle_positive_examples": ("b.zip", beagle), "husky_positive_examples": ("h.zip", beagle)},
    )
    cases["create with no examples"] = lambda c: c.post("/v3/classifiers", params=VERSION, data={"name": "x"})
    cases["create with one positive set"] = lambda c: c.post(
        "/v3/classifiers", params=VERSION, data={"name": "x"}, files={"beagle_positive_examples": ("b.zip", beagle)}
    )
    cases["create with negatives only"] = lambda c: c.post(
        "/v3/classifiers", params=VERSION, data={"name": "x"}, files={"negative_examples": ("b.zip", beagle)}
    )
    cases["create with examples as text fields"] = lambda c: c.post(
        "/v3/classifiers",
        params=VERSION,
        data={"name": "x", "beagle_positive_examples": "abc", "husky_positive_examples": "def"},
    )
    cases["create with an empty file"] = lambda c: c.post(
        "/v3/classifiers",
        params=VERSION,
        data={"name": "x"},
        files={"beagle_positive_examples": ("b.zip", b""), "husky_positive_examples": ("h.zip", beagle)},
    )
    cases["create with name nested 100,000"] = lambda c: c.post("/v3/classifiers", params=VERSION, data={"name": DEEP})
    cases["create as JSON"] = lambda c: c.post("/v3/classifiers", params=VERSION, json={"name": "x"})
    cases["update unknown classifier"] = lambda c: c.post(
        "/v3/classifiers/nope_123", params=VERSION, files={"beagle_positive_examples": ("b.zip", beagle)}
    )
    cases["update another owner's classifier"] = lambda c: c.post(
        f"/v3/classifiers/{other_owner_cid}", params=VERSION, files={"beagle_positive_examples": ("b.zip", beagle)}
    )
    cases["update with nothing"] = lambda c: c.post(f"/v3/classifiers/{other_owner_cid}", params=VERSION)
    cases["get unknown classifier"] = lambda c: c.get("/v3/classifiers/nope_123", params=VERSION)
    cases["get another owner's classifier"] = lambda c: c.get(f"/v3/classifiers/{other_owner_cid}", params=VERSION)
    cases["get id of 10,000 chars"] = lambda c: c.get("/v3/classifiers/" + "i" * 10_000, params=VERSION)
    cases["get id with %00"] = lambda c: c.get("/v3/classifiers/a%00b", params=VERSION)
    cases["get id ..%2f..%2fetc"] = lambda c: c.get("/v3/classifiers/..%2f..%2fetc%2fpasswd", params=VERSION)
    cases["delete unknown classifier"] = lambda c: c.delete("/v3/classifiers/nope_123", params=VERSION)
    cases["delete another owner's classifier"] = lambda c: c.delete(
        f"/v3/classifiers/{other_owner_cid}", params=VERSION
    )
    cases["core_ml_model of unknown"] = lambda c: c.get("/v3/classifiers/nope_123/core_ml_model", params=VERSION)
    cases["list verbose=maybe"] = lambda c: c.get("/v3/classifiers", params={**VERSION, "verbose": "maybe"})
    cases["delete user_data without customer_id"] = lambda c: c.delete("/v3/user_data", params=VERSION)
    for method, path in (
        ("PUT", "/v3/classifiers"),
        ("PATCH", "/v3/classify"),
        ("DELETE", "/v3/classify"),
        ("POST", "/v3/user_data"),
        ("GET", "/v3/user_data"),
        ("PUT", "/v3/classifiers/x"),
        ("TRACE", "/v3/classify"),
    ):
        cases[f"wrong method {method} {path}"] = lambda c, m=method, p=path: c.request(m, p, params=VERSION)
    for path in ("/v3/nope", "/v4/classify", "/", "/v3/classifiers/a/b/c", "/v3/../../etc/passwd", "/v3/classify%00"):
        cases[f"unknown path {path}"] = lambda c, p=path: c.get(p, params=VERSION)
    cases["no API key"] = lambda c: httpx.get(f"{str(c.base_url).rstrip('/')}/v3/classifiers", params=VERSION)
    cases["wrong API key"] = lambda c: httpx.get(
        f"{str(c.base_url).rstrip('/')}/v3/classifiers", params=VERSION, auth=("apikey", "wrong")
    )
    cases["malformed Basic header"] = lambda c: httpx.get(
        f"{str(c.base_url).rstrip('/')}/v3/classifiers", params=VERSION, headers={"authorization": "Basic %%%"}
    )
    cases["Bearer token"] = lambda c: httpx.get(
        f"{str(c.base_url).rstrip('/')}/v3/classifiers", params=VERSION, headers={"authorization": "Bearer abc"}
    )
    return cases


def lying_length(client: httpx.Client, claimed: int) -> httpx.Response:
    """A POST whose Content-Length claims `claimed` bytes and sends 100 (httpx refuses to): the answer, read raw."""
    connection = http.client.HTTPConnection(client.base_url.host, client.base_url.port, timeout=30)
    try:
        connection.putrequest("POST", "/v3/classify?version=2018-03-19")
        connection.putheader("Authorization", client.headers.get("authorization") or _basic(client))
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(claimed))
        connection.endheaders(b"x" * 100)
        answer = connection.getresponse()
        return httpx.Response(answer.status, content=answer.read(), headers=dict(answer.getheaders()))
    finally:
        connection.close()


def _basic(client: httpx.Client) -> str:
    request = client.build_request("GET", "/")
    client.auth.sync_auth_flow(request).__next__()
    return request.headers["authorization"]


def run_malformed(server: Server, other_owner_cid: str) -> list[dict]:
    rows = []
    with server.client("alice") as client:
        for name, send in malformed_requests(other_owner_cid, TUTORIAL).items():
            try:
                answer = send(client)
            except Exception as exc:
                answer = exc
            rows.append(row(name, answer))
    return rows


def summarise(rows: list[dict]) -> dict:
    """Counts by verdict and status; the rows that are neither 2xx nor a Watson 4xx."""
    return {
        "inputs": len(rows),
        "by_verdict": dict(Counter(r["verdict"] for r in rows)),
        "by_status": dict(Counter(str(r["status"]) for r in rows)),
        "bad": [r for r in rows if r["verdict"] not in ("2xx", "4xx")],
    }
