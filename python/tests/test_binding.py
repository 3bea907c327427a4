"""The binding itself: exported symbols, exceptions, thread safety."""
import os
import subprocess
import threading
import warnings

import numpy as np
import pytest

import clip_surgery as cs
from clip_surgery import _native

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_exports_only_the_public_header():
    path = _native.lib._name
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    header = open(os.path.join(ROOT, "include", "clip_surgery.h")).read()
    assert names and all(n.startswith("cs_") for n in names), sorted(names)[:10]
    assert all(n in header for n in names)
    assert "cs_encode_images" in names and "cs_explain" in names


def test_errors_carry_the_library_message(tmp_path):
    missing = str(tmp_path / "nope.safetensors")
    with pytest.raises(cs.Error) as e:
        cs.load(missing)
    assert missing in str(e.value) and e.value.status == "missing"
    with pytest.raises(cs.InvalidArgument, match="redundant"):
        cs.feature_surgery(np.zeros((5, 4), np.float32), np.zeros((2, 4), np.float32),
                           redundant=np.zeros(3, np.float32))
    with pytest.raises(ValueError):
        cs.load("x", device="cuda")


def test_slow_precision_warns(golden, vocab):
    """load warns exactly when the CPU runs the precision on the portable kernel."""
    path = os.path.join(golden, "tiny-vit", "model.safetensors")
    for name, value in (("bf16", 1), ("int8", 2)):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            cs.load(path, vocab=vocab, precision=name)
        slow = [w for w in seen if issubclass(w.category, RuntimeWarning) and "portable" in str(w.message)]
        assert len(slow) == (0 if _native.lib.cs_precision_fast(value) else 1), name
    assert _native.lib.cs_precision_fast(0) == 1


def test_model_errors(tiny_vit, vocab):
    with pytest.raises(cs.InvalidArgument) as e:
        tiny_vit.encode_image(np.zeros((3, 64, 64), np.float32), method="nosuch")
    assert "nosuch" in str(e.value)
    with pytest.raises(cs.Error):
        tiny_vit.encode_image(np.zeros((3, 60, 60), np.float32))  # not a multiple of the patch
    with pytest.raises(cs.InvalidArgument) as e:
        cs.tokenize("word " * 100, vocab=vocab)
    assert e.value.status == "too long"
    with pytest.raises(cs.Error):
        tiny_vit.explain("/nonexistent.png", ["cat"])


def test_two_threads_on_one_model(tiny_vit, inputs):
    px = [np.load(os.path.join(inputs, f"{n}_pre_64.npy")) for n in ("chelsea", "rocket")]
    serial = [tiny_vit.encode_image(p) for p in px]
    results = [[], []]

    def work(i):
        for _ in range(5):
            results[i].append(tiny_vit.encode_image(px[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert len(results[i]) == 5
        for r in results[i]:
            assert np.array_equal(r, serial[i])


def test_offline_pip_install(tmp_path):
    """`pip install ./python` into a fresh venv, offline (Debian's pip and
    setuptools from the system site packages), then import it there."""
    import shutil
    src = tmp_path / "src"
    shutil.copytree(os.path.join(ROOT, "python"), src,
                    ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", str(src)], check=True,
                   cwd=tmp_path)
    out = subprocess.run([py, "-c", "import clip_surgery as cs; print(cs.__file__)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                              "CLIP_SURGERY_LIB": os.path.abspath(_native.lib._name)}).stdout
    assert str(venv) in out


STRUCTS = {"cs_image": "Image", "cs_input": "Input", "cs_config": "Config",
           "cs_load_options": "LoadOptions", "cs_explain_options": "ExplainOptions",
           "cs_explain_result": "ExplainResult", "cs_points_options": "PointsOptions",
           "cs_points_result": "PointsResult", "cs_classify_options": "ClassifyOptions",
           "cs_segment_options": "SegmentOptions", "cs_segment_result": "SegmentResult",
           "cs_words_options": "WordsOptions", "cs_words_unit": "WordsUnit",
           "cs_words_result": "WordsResult", "cs_sam_load_options": "SamLoadOptions",
           "cs_sam_embedding": "SamEmbedding", "cs_sam_prompt": "SamPrompt",
           "cs_sam_result": "SamResult"}


def test_structs_mirror_the_header(tmp_path):
    """Every ctypes struct has the header's size and field offsets (a field
    added in C and not here fails this)."""
    import ctypes
    import shutil
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to read the header's layout")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "clip_surgery.h"',
             "int main(void) {"]
    expect = []
    for c_name, py_name in STRUCTS.items():
        st = getattr(_native, py_name)
        lines.append(f'printf("%zu\\n", sizeof({c_name}));')
        expect.append(ctypes.sizeof(st))
        for field, _ in st._fields_:
            lines.append(f'printf("%zu\\n", offsetof({c_name}, {field}));')
            expect.append(getattr(st, field).offset)
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", os.path.join(ROOT, "include"), str(src), "-o", str(exe)], check=True)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True,
                                          check=True).stdout.split()]
    assert got == expect


def test_segment_classify_words(tiny_vit, inputs):
    path = os.path.join(inputs, "chelsea.png")
    names = ["cat", "bench", "potted plant"]
    seg = tiny_vit.segment(path, names, details=True)
    assert seg.labels.shape == (300, 451) and seg.logits.shape == (300, 451, 3)
    assert np.array_equal(seg.labels, np.argmax(seg.logits, axis=2))
    assert np.array_equal(tiny_vit.segment(path, names), seg.labels)
    scores = tiny_vit.classify(path, names)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    w = tiny_vit.words(path, "a cat on a bench")
    assert [u.text for u in w.units][1:3] == ["a", "cat"]
    assert w.maps.shape == (300, 451, len(w.units)) and sorted(w.ranking) == list(range(len(w.units)))
