"""The model: an ONNX file read lazily (header first, the graph only when asked), its ports, its
OpenVINO-style graph of nodes, edits (reshape, preprocessing, runtime info), layouts, and ONNX
operators' semantics that devices share (windows, folding, the reference evaluator).

May import ``ember.common`` and the leaf faces (``ember.errors``, ``ember.types``,
``ember.properties``); OpenVINO's model-preparation modules (``ember.opset*``,
``ember.preprocess``, ``ember.utils``, ``ember.layout_helpers``) are its public faces."""
