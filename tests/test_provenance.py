"""Provenance signals on fixtures made by the real tools, and their absence on plain photos."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from safeset.provenance import (
    PROVENANCE_FIELDS,
    InspectOptions,
    ProvenanceOptions,
    TrustAnchors,
    inspect_bytes,
    provenance_row,
    provenance_rules,
)
from safeset.provenance.faceswap import DEFAULT_THRESHOLD, detect_faces, score_faces
from safeset.provenance.inspect import KEYS
from safeset.provenance.metadata import MAX_TEXT_BYTES, png_text
from safeset.provenance.simulate import simulate_swap

from . import provenance_fixtures as fx
from .support import all_rows, run_cli

NO_FACES = InspectOptions(face_swap=False)
DMI = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"


@pytest.fixture(scope="module")
def chain() -> tuple[bytes, bytes, bytes]:
    return fx.certificate_chain()


@pytest.fixture(scope="module")
def plain() -> dict[str, bytes]:
    """Plain photos, as PNG and JPEG: no signal may fire on them."""
    out = {}
    for name in ("astronaut", "chelsea", "coffee"):
        rgb = fx.photo(name)
        out[f"{name}.png"] = fx.encode(rgb)
        out[f"{name}.jpg"] = fx.encode(rgb, "JPEG", quality=92)
    return out


def test_plain_photos_carry_no_signal(plain: dict[str, bytes]) -> None:
    for name, data in plain.items():
        found = inspect_bytes(data, NO_FACES)
        assert {k: found[k] for k in KEYS if k != "face_swap"} == dict.fromkeys(
            set(KEYS) - {"face_swap"}
        ), name


# --- C2PA -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_c2pa_manifest_read_offline_without_trust_list(chain, fmt: str, mime: str) -> None:
    signer_chain, key, _root = chain
    data = fx.c2pa_signed(fx.encode(fx.photo("coffee"), fmt), mime, signer_chain, key)
    found = inspect_bytes(data, NO_FACES)
    c2pa = found["c2pa"]
    assert c2pa["present"] is True
    assert c2pa["validation_state"] == "Valid"
    assert c2pa["validation"] == "signature valid, signer not checked against a trust list"
    assert c2pa["claim_generator"] == "safeset-tests 1.0"
    assert c2pa["actions"][0]["action"] == "c2pa.created"
    assert c2pa["digital_source_types"] == ["trainedAlgorithmicMedia"]
    assert c2pa["signer"] == {"issuer": "safeset tests", "common_name": "safeset test signer"}
    assert found["digital_source_type"] == {
        "value": "trainedAlgorithmicMedia",
        "from": "c2pa",
        "synthetic": True,
    }
    # data_mining is "allowed" in the fixture: only the two notAllowed entries opt out.
    assert found["opt_out"] == [
        "c2pa:c2pa.ai_generative_training=notAllowed",
        "c2pa:c2pa.ai_training=notAllowed",
    ]
    # The manifest's thumbnail (image bytes) is never part of the findings.
    assert "thumbnail" not in json.dumps(found)


def test_c2pa_trust_comes_from_the_users_anchors(chain, tmp_path: Path) -> None:
    signer_chain, key, root = chain
    data = fx.c2pa_signed(fx.encode(fx.photo("coffee"), "JPEG"), "image/jpeg", signer_chain, key)
    (tmp_path / "ours.pem").write_bytes(root)
    trusted = inspect_bytes(
        data,
        InspectOptions(trust_anchors=TrustAnchors.load(tmp_path / "ours.pem"), face_swap=False),
    )
    assert trusted["c2pa"]["validation_state"] == "Trusted"
    assert trusted["c2pa"]["validation"] == "signature valid, signer trusted (anchors: ours.pem)"
    other_root = fx.certificate_chain("someone else")[2]
    (tmp_path / "other.pem").write_bytes(other_root)
    other = inspect_bytes(
        data,
        InspectOptions(trust_anchors=TrustAnchors.load(tmp_path / "other.pem"), face_swap=False),
    )
    assert other["c2pa"]["validation_state"] != "Trusted"
    assert "trusted (" not in other["c2pa"]["validation"]


def test_c2pa_tampered_image_is_invalid(chain) -> None:
    signer_chain, key, _ = chain
    data = bytearray(fx.c2pa_signed(fx.encode(fx.photo("coffee")), "image/png", signer_chain, key))
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0xFF  # one byte of pixel data changed after signing
    c2pa = inspect_bytes(bytes(data), NO_FACES)["c2pa"]
    assert c2pa["present"] is True
    assert c2pa["validation"].startswith("invalid:")
    assert c2pa["validation_state"] != "Valid"


def test_c2pa_broken_stores_are_reported_not_raised(chain) -> None:
    signer_chain, key, _ = chain
    signed = fx.c2pa_signed(fx.encode(fx.photo("coffee"), "JPEG"), "image/jpeg", signer_chain, key)
    at = signed.index(b"jumb")
    cut = signed[: at + 200] + signed[at + 5000 :]
    png = fx.encode(fx.photo("coffee"))
    fake_box = (8).to_bytes(4, "big") + b"caBXjumbc2pa" + b"\0" * 4
    for data in (cut, png[:-12] + fake_box + png[-12:]):
        c2pa = inspect_bytes(data, NO_FACES)["c2pa"]
        assert c2pa["present"] is True
        assert c2pa["validation_state"] == "Unreadable"
        assert c2pa["validation"].startswith("manifest could not be read: ")


def test_c2pa_hosted_generator_named_from_claim(chain) -> None:
    signer_chain, key, _ = chain
    data = fx.c2pa_signed(
        fx.encode(fx.photo("coffee"), "JPEG"), "image/jpeg", signer_chain, key, generator="ChatGPT"
    )
    generator = inspect_bytes(data, NO_FACES)["generator"]
    assert generator["name"] == "OpenAI DALL-E"
    assert generator["evidence"].startswith("c2pa:claim_generator=ChatGPT")


def test_bad_trust_anchor_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(fx.encode(fx.photo("coffee")))
    (tmp_path / "bad.pem").write_text("not a certificate")
    done = run_cli("inspect", str(tmp_path / "a.png"), "--trust-anchors", str(tmp_path / "bad.pem"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"safeset: error: trust anchors {tmp_path / 'bad.pem'}: no PEM certificate in it"
    ]


# --- IPTC / XMP / EXIF ------------------------------------------------------------------------


def test_xmp_digital_source_type_and_data_mining_in_jpeg_and_png() -> None:
    packet = fx.xmp_packet(data_mining=DMI)
    rgb = fx.photo("coffee")
    jpeg = fx.encode(rgb, "JPEG", xmp=packet.encode())
    png = fx.png_with_text(rgb, {"XML:com.adobe.xmp": packet})
    for data in (jpeg, png):
        found = inspect_bytes(data, NO_FACES)
        assert found["digital_source_type"] == {
            "value": "trainedAlgorithmicMedia",
            "from": "xmp",
            "synthetic": True,
        }
        assert found["opt_out"] == ["xmp:plus:DataMining=DMI-PROHIBITED-AIMLTRAINING"]
        assert found["generator"]["name"] == "Google AI"  # photoshop:Credit "Made with Google AI"


def test_xmp_element_form_and_non_synthetic_types() -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/">'
        "<Iptc4xmpExt:DigitalSourceType>"
        "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
        "</Iptc4xmpExt:DigitalSourceType>"
        '<plus:DataMining rdf:resource="http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"/>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    found = inspect_bytes(fx.encode(fx.photo("coffee"), "JPEG", xmp=packet.encode()), NO_FACES)
    assert found["digital_source_type"] == {
        "value": "digitalCapture",
        "from": "xmp",
        "synthetic": False,
    }
    assert found["opt_out"] is None  # DMI-ALLOWED reserves nothing


def test_xmp_with_entities_is_not_expanded() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    ) + fx.xmp_packet().split("?>", 1)[1].replace('Credit="', 'Credit="&c;')
    found = inspect_bytes(fx.encode(fx.photo("coffee"), "JPEG", xmp=bomb.encode()), NO_FACES)
    assert found["digital_source_type"]["value"] == "trainedAlgorithmicMedia"
    assert found["generator"] is None  # the Credit property was never parsed


def test_exif_software_names_a_hosted_generator() -> None:
    exif = Image.Exif()
    exif[0x0131] = "Adobe Firefly"
    found = inspect_bytes(fx.encode(fx.photo("coffee"), "JPEG", exif=exif), NO_FACES)
    assert found["generator"] == {
        "name": "Adobe Firefly",
        "evidence": "exif:Software=Adobe Firefly",
        "prompt": None,
    }


# --- generator metadata -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_a1111_parameters_as_a1111_writes_them(fmt: str) -> None:
    rgb = fx.photo("coffee")
    data = fx.a1111_png(rgb) if fmt == "png" else fx.a1111_jpeg(rgb)
    generator = inspect_bytes(data, NO_FACES)["generator"]
    assert generator == {
        "name": "AUTOMATIC1111",
        "evidence": "png:parameters" if fmt == "png" else "exif:UserComment",
        "prompt": "a watercolour painting of a lighthouse at dawn",
        "negative_prompt": "blurry, low quality",
        "model": "v1-5-pruned-emaonly",
        "version": "v1.10.1",
    }


def test_a1111_non_latin_prompt_goes_to_itxt_and_is_read() -> None:
    infotext = fx.A1111_INFOTEXT.replace("lighthouse", "灯台")
    generator = inspect_bytes(fx.a1111_png(fx.photo("coffee"), infotext), NO_FACES)["generator"]
    assert generator["prompt"] == "a watercolour painting of a 灯台 at dawn"


def test_comfyui_prompt_and_workflow_chunks() -> None:
    generator = inspect_bytes(fx.comfyui_png(fx.photo("coffee")), NO_FACES)["generator"]
    assert generator == {
        "name": "ComfyUI",
        "evidence": "png:prompt+workflow",
        "prompt": "a red bicycle",
        "negative_prompt": "text, watermark",
        "model": "sdxl_base.safetensors",
    }


@pytest.mark.parametrize(
    ("chunks", "name", "prompt"),
    [
        (
            {"invokeai_metadata": json.dumps({"positive_prompt": "a fox", "app_version": "4"})},
            "InvokeAI",
            "a fox",
        ),
        ({"Dream": '"a fox in snow" -s 50 -S 42 -W 512 -H 512'}, "InvokeAI", "a fox in snow"),
        (
            {"Software": "NovelAI", "Comment": json.dumps({"prompt": "a fox", "uc": "lowres"})},
            "NovelAI",
            "a fox",
        ),
        (
            {
                "parameters": json.dumps({"Prompt": "a fox", "Version": "Fooocus v2.5.5"}),
                "fooocus_scheme": "fooocus",
            },
            "Fooocus",
            "a fox",
        ),
        (
            {"Description": "a fox --ar 3:2 Job ID: 0f6a1c2e-1234-4abc-9def-001122334455"},
            "Midjourney",
            "a fox --ar 3:2",
        ),
    ],
)
def test_other_generators(chunks: dict[str, str], name: str, prompt: str) -> None:
    generator = inspect_bytes(fx.png_with_text(fx.photo("coffee"), chunks), NO_FACES)["generator"]
    assert (generator["name"], generator["prompt"]) == (name, prompt)


def test_text_after_image_data_and_compressed_text_are_read() -> None:
    png = fx.encode(fx.photo("coffee"))
    body = b"parameters\0\0" + zlib.compress(fx.A1111_INFOTEXT.encode("latin-1"))
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + b"\0\0\0\0"
    late = png[:-12] + chunk + png[-12:]  # before IEND, after IDAT
    assert inspect_bytes(late, NO_FACES)["generator"]["name"] == "AUTOMATIC1111"


def test_compressed_text_bomb_is_capped() -> None:
    body = b"parameters\0\0" + zlib.compress(b"A" * (50 * MAX_TEXT_BYTES), 9)
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + b"\0\0\0\0"
    png = fx.encode(fx.photo("coffee"))
    text = png_text(png[:-12] + chunk + png[-12:])
    assert len(text["parameters"]) == MAX_TEXT_BYTES


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n\xff\xff\xff\xfftEXt",
        b"\xff\xd8\xff\xe1\x00\x10Exif\0\0garbage",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"jumb c2pa but not really a manifest",
    ],
)
def test_hostile_bytes_give_a_row_never_a_traceback(data: bytes) -> None:
    row = provenance_row(data, options=ProvenanceOptions())
    assert set(row) == {f.name for f in PROVENANCE_FIELDS}
    assert row["generator"] is None and row["watermark"] is None


# --- watermarks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sdxl", "bug", "name", "order"),
    [
        (False, False, "StableDiffusionV1", "bgr"),
        (True, False, "SDXL", "bgr"),
        (True, True, "SDXL", "rgb"),
    ],
)
def test_sd_watermarks_from_the_encoder(sdxl: bool, bug: bool, name: str, order: str) -> None:
    marked = fx.sd_watermarked(fx.photo("astronaut"), sdxl=sdxl, rgb_order_bug=bug)
    watermark = inspect_bytes(fx.encode(marked), NO_FACES)["watermark"]
    assert watermark["name"] == name
    assert watermark["channel_order"] == order
    assert watermark["bit_accuracy"] >= 0.95


def test_watermark_found_after_halving_the_image() -> None:
    marked = fx.sd_watermarked(fx.photo("astronaut"))
    half = cv2.resize(marked, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    watermark = inspect_bytes(fx.encode(half), NO_FACES)["watermark"]
    assert (watermark["name"], watermark["scale"]) == ("StableDiffusionV1", 0.5)
    plain_half = cv2.resize(fx.photo("astronaut"), None, fx=0.5, fy=0.5)
    assert inspect_bytes(fx.encode(plain_half), NO_FACES)["watermark"] is None


def test_watermark_survives_jpeg_without_chroma_subsampling() -> None:
    marked = fx.sd_watermarked(fx.photo("astronaut"))
    jpeg = fx.encode(marked, "JPEG", quality=90, subsampling=0)
    assert inspect_bytes(jpeg, NO_FACES)["watermark"]["name"] == "StableDiffusionV1"


# --- face swap --------------------------------------------------------------------------------


def test_face_swap_score_on_a_simulated_swap() -> None:
    import matplotlib.cbook

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        rgb = np.asarray(Image.open(f).convert("RGB"))  # a 222 px face: detail above 128 px
    rgb = cv2.resize(rgb, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LANCZOS4)
    box = detect_faces(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))[0]
    swapped = simulate_swap(rgb, box)
    untouched = [f.score for f in score_faces(rgb)]
    pasted = [f.score for f in score_faces(swapped)]
    assert len(untouched) == 1 and len(pasted) == 1
    assert untouched[0] < DEFAULT_THRESHOLD <= pasted[0]
    found = inspect_bytes(fx.encode(swapped, "JPEG", quality=95), InspectOptions())
    assert found["face_swap"][0]["reliable"] is True
    assert found["face_swap"][0]["score"] >= DEFAULT_THRESHOLD


def test_face_swap_lists_every_face_with_low_scores_too() -> None:
    found = inspect_bytes(fx.encode(fx.photo("astronaut")), InspectOptions())
    assert len(found["face_swap"]) == 1
    face = found["face_swap"][0]
    assert face["reliable"] is False  # ~95 px: too small to show a 128 px paste
    assert 0.0 <= face["score"] <= 1.0
    assert inspect_bytes(fx.encode(fx.photo("coffee")), InspectOptions())["face_swap"] == []


# --- result columns and rules -----------------------------------------------------------------


def test_provenance_row_fits_its_fields(chain) -> None:
    signer_chain, key, _ = chain
    signed = fx.c2pa_signed(fx.encode(fx.photo("coffee"), "JPEG"), "image/jpeg", signer_chain, key)
    marked = fx.encode(fx.sd_watermarked(fx.photo("astronaut")))
    rows = [
        provenance_row(signed, options=ProvenanceOptions()),
        provenance_row(fx.a1111_png(fx.photo("coffee")), options=ProvenanceOptions()),
        provenance_row(marked, options=ProvenanceOptions(face_swap=True)),
        provenance_row(fx.encode(fx.photo("chelsea")), options=ProvenanceOptions()),
    ]
    table = pa.Table.from_pylist(rows, schema=pa.schema(PROVENANCE_FIELDS))
    assert table.column("c2pa_present").to_pylist() == [True, False, False, False]
    assert table.column("digital_source_type").to_pylist()[0] == "trainedAlgorithmicMedia"
    assert table.column("generator").to_pylist()[1] == "AUTOMATIC1111"
    assert table.column("watermark").to_pylist()[2] == "StableDiffusionV1"
    assert len(table.column("face_swap_scores").to_pylist()[2]) == 1
    assert table.column("face_swap_scores").to_pylist()[0] is None  # not asked for
    assert table.column("synthetic_evidence").to_pylist() == [
        ["c2pa:trainedAlgorithmicMedia"],
        ["generator:AUTOMATIC1111"],
        ["watermark:StableDiffusionV1"],
        [],
    ]
    assert rows[0]["opt_out"] == [
        "c2pa:c2pa.ai_generative_training=notAllowed",
        "c2pa:c2pa.ai_training=notAllowed",
    ]


def test_generator_prompt_feeds_the_term_lists() -> None:
    infotext = fx.A1111_INFOTEXT.replace("a watercolour painting", "a nude photo of a teen")
    row = provenance_row(fx.a1111_png(fx.photo("coffee"), infotext), options=ProvenanceOptions())
    assert row["prompt_sexual_terms"] == ["nude"]
    assert row["prompt_minor_terms"] == ["teen"]
    rules = provenance_rules(row)
    assert ("remove", "synthetic+explicit+minor-indicators") in rules
    assert ("remove", "explicit+minor-indicators") in rules


def _row(**values) -> dict:
    row = {f.name: None for f in PROVENANCE_FIELDS}
    return {**row, **values}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (_row(), []),
        (
            _row(synthetic_evidence=["watermark:SDXL"]),
            [("keep", "synthetic:watermark:SDXL")],
        ),
        (
            _row(
                synthetic_evidence=["xmp:trainedAlgorithmicMedia"],
                explicit_score=0.9,
                faces=[{"age": 14.0}],
            ),
            [
                ("remove", "synthetic+explicit+minor-indicators"),
                ("remove", "explicit+minor-indicators"),
                ("remove", "minor-face:age=14"),
                ("keep", "synthetic:xmp:trainedAlgorithmicMedia"),
            ],
        ),
        (
            _row(face_swap_max=0.8, explicit_score=0.9, faces=[{"age": 33.0}]),
            [("remove", "face-swap+explicit"), ("keep", "face-swap-suspected:0.80")],
        ),
        (
            _row(face_swap_max=0.8, explicit_score=0.7, minor_terms=["kid"]),
            [
                ("remove", "synthetic+explicit+minor-indicators"),
                ("remove", "explicit+minor-indicators"),
                ("remove", "caption-term:minor:kid"),
                ("keep", "face-swap-suspected:0.80"),
            ],
        ),
        (_row(face_swap_max=0.2, explicit_score=0.9), []),
        (
            _row(opt_out=["xmp:plus:DataMining=DMI-PROHIBITED"]),
            [("remove", "opt-out:xmp:plus:DataMining=DMI-PROHIBITED")],
        ),
        # A photo's caption terms alone never make a synthetic rule fire.
        (_row(prompt_sexual_terms=["nude"], minor_terms=["kid"]), []),
    ],
)
def test_provenance_rules(row: dict, expected: list[tuple[str, str]]) -> None:
    assert provenance_rules(row) == expected


# --- CLI and invariant 1 ----------------------------------------------------------------------


def test_inspect_cli_json_lines_and_nothing_written(chain, tmp_path: Path) -> None:
    signer_chain, key, _ = chain
    files = {
        "c2pa.jpg": fx.c2pa_signed(
            fx.encode(fx.photo("coffee"), "JPEG"), "image/jpeg", signer_chain, key
        ),
        "a1111.png": fx.a1111_png(fx.photo("coffee")),
        "comfy.png": fx.comfyui_png(fx.photo("coffee")),
        "wm.png": fx.encode(fx.sd_watermarked(fx.photo("astronaut"))),
        "plain.jpg": fx.encode(fx.photo("chelsea"), "JPEG"),
    }
    data_dir, work, tmp = tmp_path / "data", tmp_path / "work", tmp_path / "tmp"
    for d in (data_dir, work, tmp):
        d.mkdir()
    for name, data in files.items():
        (data_dir / name).write_bytes(data)
    before = {p: p.stat().st_mtime_ns for p in data_dir.iterdir()}
    paths = [str(data_dir / n) for n in files]
    done = run_cli("inspect", "--json", *paths, env={"TMPDIR": str(tmp), "HOME": str(work)})
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["file"]).name for r in results] == list(files)
    for r in results:
        assert set(KEYS) <= set(r)
    by_name = {Path(r["file"]).name: r for r in results}
    assert by_name["c2pa.jpg"]["c2pa"]["present"] is True
    assert by_name["a1111.png"]["generator"]["name"] == "AUTOMATIC1111"
    assert by_name["comfy.png"]["generator"]["name"] == "ComfyUI"
    assert by_name["wm.png"]["watermark"]["name"] == "StableDiffusionV1"
    assert by_name["wm.png"]["face_swap"][0]["score"] is not None
    assert all(by_name["plain.jpg"][k] is None for k in set(KEYS) - {"face_swap"})
    # Invariant 1: nothing was written: no temp file, no file beside the data, no output
    # holding image bytes (a JPEG/PNG signature or a base64 thumbnail).
    assert list(tmp.iterdir()) == [] and list(work.iterdir()) == []
    assert {p: p.stat().st_mtime_ns for p in data_dir.iterdir()} == before
    for marker in ("\\u00ff\\u00d8", "iVBORw0KGgo", "/9j/", "PNG\\r\\n"):
        assert marker not in done.stdout


def test_inspect_cli_readable_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(fx.a1111_png(fx.photo("coffee")))
    done = run_cli("inspect", str(tmp_path / "a.png"), str(tmp_path / "missing.png"))
    assert done.returncode == 1
    assert "generator: AUTOMATIC1111 (png:parameters, model v1-5-pruned-emaonly)" in done.stdout
    assert done.stderr.strip() == f"safeset: {tmp_path / 'missing.png'}: No such file or directory"


def test_unreadable_pixels_are_an_error_not_a_crash() -> None:
    data = fx.a1111_png(fx.photo("coffee"))
    truncated = data[: len(data) // 2]
    found = inspect_bytes(truncated, InspectOptions())
    assert found["error"] == "image could not be decoded"
    assert found["generator"]["name"] == "AUTOMATIC1111"  # text chunks precede the pixels


# --- scan --provenance ------------------------------------------------------------------------


def test_scan_with_provenance_records_tags_and_honours_opt_outs(
    known_list: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    rgb = fx.photo("hubble_deep_field")
    files = {
        # Not the stand-in list's photos: only provenance may act here.
        "generated.png": fx.a1111_png(rgb),
        "opted-out.jpg": fx.encode(
            fx.photo("retina"), "JPEG", xmp=fx.xmp_packet(None, data_mining=DMI).encode()
        ),
        "plain.jpg": fx.encode(fx.photo("immunohistochemistry"), "JPEG"),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "scan"
    result = run_cli("scan", folder, "--list", known_list, "--out", out, "--provenance", "-q")
    assert result.returncode == 0, result.stderr
    rows = {r["location"]: r for r in all_rows(out)}
    assert rows["generated.png"]["generator"] == "AUTOMATIC1111"
    assert (rows["generated.png"]["action"], rows["generated.png"]["reasons"]) == (
        "keep",
        ["synthetic:generator:AUTOMATIC1111"],
    )
    assert rows["opted-out.jpg"]["action"] == "remove"
    # (The fixture's packet credits "Made with Google AI": a generator's mark too.)
    assert rows["opted-out.jpg"]["reasons"] == [
        "synthetic:generator:Google AI",
        "opt-out:xmp:plus:DataMining=DMI-PROHIBITED-AIMLTRAINING",
    ]
    assert (rows["plain.jpg"]["action"], rows["plain.jpg"]["synthetic_evidence"]) == ("keep", [])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"] == {
        "face-swap+explicit": 0,
        "face-swap-suspected": 0,
        "opt-out": 1,
        "synthetic": 2,
    }
    cleaned = run_cli("clean", folder, "--scan", out, "--out", tmp_path / "clean", "-q")
    assert cleaned.returncode == 0, cleaned.stderr
    assert sorted(p.name for p in (tmp_path / "clean").iterdir()) == ["generated.png", "plain.jpg"]
