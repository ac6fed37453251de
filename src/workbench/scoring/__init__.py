"""Scores to answers: Watson's ClassifiedImages, explanations, a version exported as one ONNX or Core ML file."""
