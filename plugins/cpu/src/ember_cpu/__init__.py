"""ember-cpu: the CPU device, running ONNX models on onnxruntime."""
