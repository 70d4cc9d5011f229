"""`make demo`: compile a real ONNX model on every available device, run it, print the timings.

The model is PaddleOCR's text-direction classifier (is this text line upright or upside down?),
taken from the rapidocr-onnxruntime wheel. Each device compiles it, classifies the same seeded
input, and, where the device can export, round-trips the compiled model through a blob.
"""

from __future__ import annotations

import time

import numpy as np

import ember
from ember.testing import ppocr_cls_path
from ember.testing.models import PPOCR_CLS_INPUT_SHAPE

LABELS = ("0 degrees", "180 degrees")


def timed(action, *args):
    start = time.perf_counter()
    result = action(*args)
    return result, (time.perf_counter() - start) * 1e3


def main() -> int:
    path = ppocr_cls_path()
    core = ember.Core()
    print(f"Ember {ember.__version__}; model {path.name}")
    print(f"available devices: {', '.join(core.available_devices)}")
    for failure in core.plugin_failures:
        print(f"  (not loaded: {failure})")
    image = np.random.default_rng(0).random(PPOCR_CLS_INPUT_SHAPE, dtype=np.float32)

    model, read_ms = timed(core.read_model, path)
    print(f"read_model: {read_ms:.1f} ms; {model}\n")
    columns = ("compile", "1st infer", "infer", "import")
    header = f"{'device':<10} " + " ".join(f"{c:>10}" for c in columns) + "  result"
    print(header)
    print("-" * len(header))
    failed = 0
    for device in core.available_devices:
        try:
            compiled, compile_ms = timed(core.compile_model, model, device)
            _, first_ms = timed(compiled, image)
            runs = [timed(compiled, image)[1] for _ in range(5)]
            result = compiled(image)
            probabilities = result[0][0]
            import_text = "-"
            if core.get_property(device, "IMPORT_EXPORT_SUPPORT"):
                imported, import_ms = timed(core.import_model, compiled.export_model(), device)
                assert np.array_equal(imported(image)[0], result[0]), "import changed the result"
                import_text = f"{import_ms:.1f} ms"
        except ember.errors.NotSupportedError as reason:  # a device that cannot compile yet
            print(f"{device:<10} skipped: {reason}")
            continue
        except ember.errors.EmberError as error:
            print(f"{device:<10} failed: {error}")
            failed += 1
            continue
        label = LABELS[int(np.argmax(probabilities))]
        print(f"{device:<10} {compile_ms:>7.1f} ms {first_ms:>7.1f} ms {np.median(runs):>7.2f} ms "
              f"{import_text:>10}  {label} (p={probabilities.max():.3f}, "
              f"{core.get_property(device, 'FULL_DEVICE_NAME')})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
