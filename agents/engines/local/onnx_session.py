"""The one way small ONNX models (Silero VAD, Smart Turn) are opened: one thread, quiet, CPU."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from agents.engines.local.model_files import ModelFileError


def single_thread_session(path: Path, what: str) -> ort.InferenceSession:
    """An onnxruntime session on one thread: these models run tiny inputs, where more threads cost
    more than they save (and calls run side by side on the pod's threads). `what` names the model
    in the error an unreadable file raises."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own assorted types for unreadable graphs
        raise ModelFileError(f"cannot load {what} {path}: {error}") from error
