#!/usr/bin/env python3
"""Writes the small test images of tests/data/images and what Pillow makes of
them: the reference's view of every image mode (palette, 1-bit, gray + alpha,
RGBA, 16-bit gray, CMYK JPEG, APNG).

For each image NAME it writes
  NAME_rgb.npy        uint8 [h, w, 3]  Image.open(NAME).convert("RGB")
  NAME_WxH.npy        uint8 [H, W, 3]  .resize((W, H), BICUBIC).convert("RGB")
which is what torchvision's Resize(BICUBIC) followed by the reference's
convert("RGB") gives (torchvision hands a PIL image to Image.resize).

Run once with Debian bookworm's python3-pil (Pillow 9.4.0) and python3-numpy:
    python3 scripts/gen_image_goldens.py tests/data/images
The build and the tests never need Python or Pillow. The PNGs are written by
hand (zlib + chunks) so that every layout is exactly the one intended:
bit depth, palette length, tRNS, interlacing. The YCCK JPEG comes from
scripts/write_ycck_jpeg.c (built here with cc and libjpeg)."""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
from PIL import Image

SIZES = [(23, 17), (31, 33)]  # a downscale and an upscale, both axes differing


# ------------------------------------------------------------------ PNG writer
def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(samples, bit_depth):
    """samples: 1-D array of ints (all channels interleaved) -> PNG row bytes."""
    if bit_depth == 16:
        return np.asarray(samples, dtype=">u2").tobytes()
    if bit_depth == 8:
        return np.asarray(samples, dtype=np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray((len(samples) + per_byte - 1) // per_byte)
    for i, v in enumerate(samples):
        out[i // per_byte] |= int(v) << (8 - bit_depth * (i % per_byte + 1))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(path, pixels, bit_depth, color_type, plte=None, trns=None, interlace=False):
    """pixels: [h, w, channels] ints."""
    h, w = pixels.shape[:2]
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        for row in sub:
            raw += b"\0" + pack_row(row.reshape(-1), bit_depth)
    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        data += chunk(b"PLTE", np.asarray(plte, dtype=np.uint8).tobytes())
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


# ------------------------------------------------------------------ content
rng = np.random.default_rng(19)


def smooth(h, w, lo, hi, channels=1):
    """Gradients plus noise: every resampling tap matters."""
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for c in range(channels):
        base = (np.sin(x / (3.0 + c) + c) + np.cos(y / (4.0 + c))) / 4 + 0.5
        v = lo + (hi - lo) * base + rng.normal(0, (hi - lo) / 12, (h, w))
        out.append(np.clip(np.rint(v), lo, hi))
    return np.stack(out, axis=-1).astype(np.int64)


def alpha(h, w):
    """Alpha with large fully transparent and opaque areas and every level between."""
    a = smooth(h, w, -80, 335)[..., 0]
    a[::7, ::5] = 1  # tiny alphas: the unpremultiply divides by them
    return np.clip(a, 0, 255)


def make_inputs(d):
    W, H = 37, 29
    files = []

    def add(name):
        files.append(name)
        return os.path.join(d, name)

    # Palette: 8-bit indices over a 200-entry PLTE (indices past it are
    # Pillow's gray ramp), with one alpha per entry in tRNS.
    plte = rng.integers(0, 256, (200, 3))
    idx = (smooth(H, W, 0, 255)[..., 0] + rng.integers(0, 3, (H, W))) % 256
    png(add("p8_trns.png"), idx[..., None], 8, 3, plte, bytes(rng.integers(0, 256, 150).tolist()))
    # 4-bit palette, interlaced.
    png(add("p4_adam7.png"), smooth(H, W, 0, 15), 4, 3, rng.integers(0, 256, (16, 3)), interlace=True)
    # 1-bit palette with one fully transparent entry (Pillow's "simple" tRNS).
    png(add("p1_trns.png"), smooth(H, W, 0, 1), 1, 3, [[200, 30, 90], [10, 220, 140]], b"\xff\x00")
    # 1-bit gray: mode "1".
    png(add("g1.png"), smooth(H, W, 0, 1), 1, 0)
    # 2-bit gray with a tRNS gray level: stays "L".
    png(add("g2_trns.png"), smooth(H, W, 0, 3), 2, 0, trns=struct.pack(">H", 2))
    # Gray + alpha, 8 and 16 bits (16-bit becomes RGBA in Pillow).
    png(add("la8.png"), np.dstack([smooth(H, W, 0, 255), alpha(H, W)]), 8, 4)
    png(add("la16.png"), np.dstack([smooth(H, W, 0, 65535), alpha(H, W) * 257 + 3]), 16, 4)
    # RGBA, 8 bits interlaced and 16 bits.
    png(add("rgba8_adam7.png"), np.dstack([smooth(H, W, 0, 255, 3), alpha(H, W)]), 8, 6, interlace=True)
    png(add("rgba16.png"), np.dstack([smooth(H, W, 0, 65535, 3), alpha(H, W) * 257]), 16, 6)
    # 16-bit gray ("I"): values around the 0..255 that convert("RGB") keeps,
    # and a typical full-range image (mostly white for the reference).
    png(add("g16_low.png"), smooth(H, W, 0, 600), 16, 0)
    png(add("g16_full.png"), smooth(H, W, 0, 65535), 16, 0)
    # 16-bit RGB with a tRNS colour: stays "RGB" (high bytes).
    png(add("rgb16_trns.png"), smooth(H, W, 0, 65535, 3), 16, 2, trns=struct.pack(">HHH", 1, 2, 3))

    # APNG: two RGBA frames; the reference sees the first.
    frames = [Image.fromarray(np.dstack([smooth(H, W, 0, 255, 3), alpha(H, W)]).astype(np.uint8), "RGBA")
              for _ in range(2)]
    frames[0].save(add("apng.png"), save_all=True, append_images=frames[1:], duration=100, loop=0)

    # CMYK JPEG: libjpeg writes an Adobe marker and Pillow stores the samples
    # inverted; a copy without the marker shows Pillow inverts them anyway.
    cmyk = Image.fromarray(smooth(H, W, 0, 255, 4).astype(np.uint8), "CMYK")
    cmyk.save(add("cmyk.jpg"), quality=95)
    data = open(os.path.join(d, "cmyk.jpg"), "rb").read()
    i = data.find(b"\xff\xee")
    assert i > 0, "no Adobe marker"
    n = struct.unpack(">H", data[i + 2:i + 4])[0]
    with open(add("cmyk_noadobe.jpg"), "wb") as f:
        f.write(data[:i] + data[i + 2 + n:])
    # YCCK (Adobe transform 2), which Pillow cannot write: libjpeg writes it
    # through scripts/write_ycck_jpeg.c; Pillow reads it as CMYK.
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "write_ycck_jpeg")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "write_ycck_jpeg.c")
        subprocess.run(["cc", src, "-ljpeg", "-lm", "-o", exe], check=True)
        subprocess.run([exe, add("ycck.jpg")], check=True)
    return files


def main():
    assert Image.__version__ == "9.4.0", f"made with Pillow 9.4.0, this is {Image.__version__}"
    d = sys.argv[1] if len(sys.argv) > 1 else "tests/data/images"
    os.makedirs(d, exist_ok=True)
    for name in make_inputs(d):
        stem = os.path.splitext(name)[0]
        im = Image.open(os.path.join(d, name))
        np.save(os.path.join(d, stem + "_rgb.npy"), np.asarray(im.convert("RGB")))
        for w, h in SIZES:
            out = im.resize((w, h), Image.BICUBIC).convert("RGB")
            np.save(os.path.join(d, f"{stem}_{w}x{h}.npy"), np.asarray(out))
        print(f"{name}: mode {im.mode}")
    # --png16 highbyte: the top 8 bits as an "L" image, resized as such.
    a = np.asarray(Image.open(os.path.join(d, "g16_full.png")))
    hb = Image.fromarray((a >> 8).astype(np.uint8), "L")
    for w, h in SIZES:
        np.save(os.path.join(d, f"g16_full_highbyte_{w}x{h}.npy"),
                np.asarray(hb.resize((w, h), Image.BICUBIC).convert("RGB")))


if __name__ == "__main__":
    main()
