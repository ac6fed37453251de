"""The backbone and its engines: ONNX Runtime or torch, INT8, micro-batching, the explicit detector."""
