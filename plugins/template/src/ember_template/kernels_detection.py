"""NonMaxSuppression for the TEMPLATE device (object detectors' last step), greedy per batch and
class as ONNX defines it: candidates above ``score_threshold`` by descending score (the lower box
index first among equal scores), each kept unless its IoU with a kept box exceeds
``iou_threshold``, at most ``max_output_boxes_per_class`` of them.
"""

from __future__ import annotations

import numpy as np

from ember_template.kernel_registry import Attrs, Inputs, optional_input, register


def _scalar_input(value: np.ndarray | None) -> float | None:
    return None if value is None or value.size == 0 else float(value.reshape(-1)[0])


def _corners(boxes: np.ndarray, center_point: bool) -> np.ndarray:
    """(boxes, 4) as (y_min, x_min, y_max, x_max)."""
    if center_point:  # (x_center, y_center, width, height)
        x, y, w, h = boxes.T
        return np.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=1)
    y1, x1, y2, x2 = boxes.T  # any two opposite corners
    return np.stack([np.minimum(y1, y2), np.minimum(x1, x2), np.maximum(y1, y2),
                     np.maximum(x1, x2)], axis=1)


def _suppresses(kept: np.ndarray, box: np.ndarray, threshold: float) -> bool:
    """Whether ``box`` overlaps one of ``kept`` (rows of corners) by more than ``threshold``."""
    if not len(kept):
        return False
    top = np.maximum(kept[:, 0], box[0])
    left = np.maximum(kept[:, 1], box[1])
    bottom = np.minimum(kept[:, 2], box[2])
    right = np.minimum(kept[:, 3], box[3])
    overlap = (bottom > top) & (right > left)
    inter = np.where(overlap, (bottom - top) * (right - left), 0)
    area_kept = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    area = (box[2] - box[0]) * (box[3] - box[1])
    union = area_kept + area - inter
    valid = overlap & (inter > 0) & (area_kept > 0) & (area > 0) & (union > 0)
    iou = np.where(valid, inter / np.where(union > 0, union, 1), 0)
    return bool(np.any(valid & (iou > threshold)))


@register("NonMaxSuppression")
def non_max_suppression(inputs: Inputs, attrs: Attrs, opset: int) -> list[np.ndarray]:
    boxes, scores = inputs[0].astype(np.float64), inputs[1]
    limit = _scalar_input(optional_input(inputs, 2))
    iou_threshold = _scalar_input(optional_input(inputs, 3)) or 0.0
    score_threshold = _scalar_input(optional_input(inputs, 4))
    most = 0 if limit is None else max(int(limit), 0)
    center_point = bool(attrs.get("center_point_box", 0))
    selected = []
    for b in range(boxes.shape[0]):
        corners = _corners(boxes[b], center_point)
        for c in range(scores.shape[1]):
            class_scores = scores[b, c]
            candidates = np.arange(len(class_scores))
            if score_threshold is not None:
                candidates = candidates[class_scores > score_threshold]
            # Descending score; a stable sort of the negated scores keeps lower indices first.
            order = candidates[np.argsort(-class_scores[candidates], kind="stable")]
            kept: list[int] = []
            for index in order:
                if len(kept) >= most:
                    break
                if not _suppresses(corners[kept], corners[index], iou_threshold):
                    kept.append(int(index))
                    selected.append((b, c, int(index)))
    return [np.array(selected, dtype=np.int64).reshape(-1, 3)]
