"""Provenance fixtures made by the real tools, from benign photos (scikit-image's bundled ones).

* C2PA: signed with c2pa-python's Builder and a test certificate chain (a root and a signer
  certificate with the key usages C2PA requires) generated here with ``cryptography``.
* AUTOMATIC1111: PNG ``parameters`` text written with Pillow's PngInfo, as modules/images.py
  does; JPEG with the EXIF UserComment written by piexif (``UserComment.dump(...,
  encoding="unicode")``, then ``piexif.insert``), as A1111 does.
* ComfyUI: ``prompt`` and ``workflow`` JSON text chunks, as its SaveImage node writes them.
* Stable Diffusion watermarks: ``imwatermark.WatermarkEncoder`` (``dwtDct``), called as the
  SD v1 txt2img script (bytes ``StableDiffusionV1``) and SDXL's watermarker (48 bits) call it.
* XMP: IPTC's documented serialisation of DigitalSourceType and PLUS DataMining, embedded by
  Pillow (no XMP-writing tool is available from the package registries here).
"""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
A1111_INFOTEXT = (
    "a watercolour painting of a lighthouse at dawn\n"
    "Negative prompt: blurry, low quality\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2", '
    "Version: v1.10.1"
)
SDXL_BITS = [int(b) for b in bin(0b101100111110110010010000011110111011000110011110)[2:]]


def photo(name: str = "astronaut") -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)())


def encode(rgb: np.ndarray, fmt: str = "PNG", **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **params)
    return buf.getvalue()


# --- C2PA ---------------------------------------------------------------------------------


def certificate_chain(cn: str = "safeset test") -> tuple[bytes, bytes, bytes]:
    """(signer chain PEM, signer key PEM, root PEM): an ES256 root and signer certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "safeset tests"),
            ]
        )

    def usage(**on: bool) -> x509.KeyUsage:
        names = (
            "digital_signature content_commitment key_encipherment data_encipherment "
            "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
        )
        flags = dict.fromkeys(names.split(" "), False)
        return x509.KeyUsage(**{**flags, **on})

    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder()
        .subject_name(name(f"{cn} root"))
        .issuer_name(name(f"{cn} root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(name(f"{cn} signer"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )

    def pem(cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)

    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem(signer) + pem(root), key_pem, pem(root)


def c2pa_signed(
    image: bytes, mime: str, chain: bytes, key: bytes, *, generator: str = "safeset-tests"
) -> bytes:
    """``image`` with a C2PA manifest: created by a trained model, AI training not allowed."""
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": "fixture",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE}]},
            },
            {
                "label": "c2pa.training-mining",
                "data": {
                    "entries": {
                        "c2pa.ai_generative_training": {"use": "notAllowed"},
                        "c2pa.ai_training": {"use": "notAllowed"},
                        "c2pa.data_mining": {"use": "allowed"},
                    }
                },
            },
        ],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None))
    out = io.BytesIO()
    with c2pa.Builder(manifest) as builder:
        builder.sign(signer, mime, io.BytesIO(image), out)
    return out.getvalue()


# --- generator metadata -------------------------------------------------------------------


def a1111_png(rgb: np.ndarray, infotext: str = A1111_INFOTEXT) -> bytes:
    info = PngInfo()
    info.add_text("parameters", infotext)
    return encode(rgb, "PNG", pnginfo=info)


def a1111_jpeg(rgb: np.ndarray, infotext: str = A1111_INFOTEXT) -> bytes:
    import piexif
    import piexif.helper

    jpeg = encode(rgb, "JPEG", quality=90)
    exif = piexif.dump(
        {"Exif": {piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(infotext, "unicode")}}
    )
    out = io.BytesIO()
    piexif.insert(exif, jpeg, out)
    return out.getvalue()


COMFY_PROMPT = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 5,
            "steps": 20,
            "cfg": 8,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sdxl_base.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red bicycle", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark", "clip": ["4", 1]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
}
COMFY_WORKFLOW = {
    "last_node_id": 9,
    "nodes": [{"id": 3, "type": "KSampler", "widgets_values": [5, "fixed", 20, 8]}],
    "links": [],
    "version": 0.4,
}


def comfyui_png(rgb: np.ndarray) -> bytes:
    # ComfyUI's SaveImage: metadata.add_text("prompt", json.dumps(prompt)), then one text chunk
    # per extra_pnginfo entry (the editor adds "workflow").
    info = PngInfo()
    info.add_text("prompt", json.dumps(COMFY_PROMPT))
    info.add_text("workflow", json.dumps(COMFY_WORKFLOW))
    return encode(rgb, "PNG", pnginfo=info, compress_level=4)


def png_with_text(rgb: np.ndarray, chunks: dict[str, str], *, zip_: bool = False) -> bytes:
    info = PngInfo()
    for k, v in chunks.items():
        info.add_text(k, v, zip=zip_)
    return encode(rgb, "PNG", pnginfo=info)


# --- watermarks -----------------------------------------------------------------------------


def sd_watermarked(rgb: np.ndarray, *, sdxl: bool = False, rgb_order_bug: bool = False):
    """``rgb`` watermarked by invisible-watermark, as SD v1 txt2img or SDXL do it."""
    from imwatermark import WatermarkEncoder

    encoder = WatermarkEncoder()
    if sdxl:
        encoder.set_watermark("bits", SDXL_BITS)
    else:
        encoder.set_watermark("bytes", b"StableDiffusionV1")
    if rgb_order_bug:  # early diffusers releases passed RGB arrays to the BGR encoder
        return np.ascontiguousarray(encoder.encode(rgb.copy(), "dwtDct"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return np.ascontiguousarray(encoder.encode(bgr, "dwtDct")[:, :, ::-1])


# --- XMP ------------------------------------------------------------------------------------


def xmp_packet(source_type: str | None = SOURCE_TYPE, data_mining: str | None = None) -> str:
    props = []
    if source_type:
        props.append(f'Iptc4xmpExt:DigitalSourceType="{source_type}"')
    if data_mining:
        props.append(f'plus:DataMining="{data_mining}"')
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
        'xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" '
        f'photoshop:Credit="Made with Google AI" {" ".join(props)}/>'
        '</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>'
    )
