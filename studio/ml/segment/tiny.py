"""A tiny promptable "model" made on the spot: an ONNX encoder/decoder pair with the input
and output names and shapes of EfficientSAM (the default model), so the tests and the
benchmark (when no real weights are installed) run the same path as the real models:
registry, SHA-256-checked install, osam loading on onnxruntime, embedding, decoding.

It is no learned model: the encoder averages the image down to a 64 x 64 grey grid
(broadcast to 256 channels); the decoder returns a disc of DISC_RADIUS pixels around each
positive point, the ellipse inscribed in a box prompt, minus discs around negative points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.ml.segment.registry import ModelSpec
from studio.ml.segment.weights import sha256_of

TINY_NAME = "tiny:test"
DISC_RADIUS = 10.0
OPSET = 17


def _encoder():
    import onnx
    from onnx import TensorProto, helper

    def const(name, values, dtype=np.int64):
        return helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(
            np.asarray(values, dtype=dtype), name))

    nodes = [
        const("sizes", [1, 3, 64, 64]),
        helper.make_node("Resize", ["batched_images", "", "", "sizes"], ["small"],
                         mode="linear"),
        helper.make_node("ReduceMean", ["small"], ["grey"], axes=[1], keepdims=1),
        const("shape", [1, 256, 64, 64]),
        helper.make_node("Expand", ["grey", "shape"], ["image_embeddings"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_encoder",
        [helper.make_tensor_value_info("batched_images", TensorProto.FLOAT,
                                       [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 256, 64, 64])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def _decoder():
    import onnx
    from onnx import TensorProto, helper

    n = []

    def const(name, values, dtype=np.float32):
        n.append(helper.make_node("Constant", [], [name], value=onnx.numpy_helper.from_array(
            np.asarray(values, dtype=dtype), name)))

    def op(kind, inputs, output, **attrs):
        n.append(helper.make_node(kind, inputs, [output], **attrs))

    const("i0", 0, np.int64), const("i1", 1, np.int64)
    const("f0", 0.0), const("f1", 1.0), const("f2", 2.0), const("half", 0.5)
    const("big", -1e9), const("eps", 1e-3), const("r2", DISC_RADIUS ** 2)
    const("shape_n2", [-1, 2], np.int64), const("shape_n", [-1], np.int64)
    const("shape_n11", [-1, 1, 1], np.int64), const("shape_11w", [1, 1, -1], np.int64)
    const("shape_1h1", [1, -1, 1], np.int64), const("shape_1w", [1, -1], np.int64)
    const("shape_h1", [-1, 1], np.int64)
    op("Reshape", ["batched_point_coords", "shape_n2"], "pts")
    op("Gather", ["pts", "i0"], "px", axis=1)
    op("Gather", ["pts", "i1"], "py", axis=1)
    op("Reshape", ["batched_point_labels", "shape_n"], "lab")
    op("Gather", ["orig_im_size", "i0"], "H")
    op("Gather", ["orig_im_size", "i1"], "W")
    for axis, size in (("y", "H"), ("x", "W")):
        op("Range", ["i0", size, "i1"], f"{axis}r")
        op("Cast", [f"{axis}r"], f"{axis}f", to=TensorProto.FLOAT)
        op("Add", [f"{axis}f", "half"], f"{axis}c")  # pixel centres
    op("Reshape", ["xc", "shape_11w"], "X3"), op("Reshape", ["yc", "shape_1h1"], "Y3")
    op("Reshape", ["px", "shape_n11"], "PX"), op("Reshape", ["py", "shape_n11"], "PY")
    op("Sub", ["X3", "PX"], "dx"), op("Sub", ["Y3", "PY"], "dy")
    op("Mul", ["dx", "dx"], "dx2"), op("Mul", ["dy", "dy"], "dy2")
    op("Add", ["dx2", "dy2"], "d2")
    op("Less", ["d2", "r2"], "inside_b"), op("Cast", ["inside_b"], "inside", to=TensorProto.FLOAT)
    for name, value in (("pos", 1.0), ("neg", 0.0), ("lt", 2.0), ("rb", 3.0)):
        const(f"v_{name}", value)
        op("Equal", ["lab", f"v_{name}"], f"is_{name}")
    for name in ("pos", "neg"):
        op("Cast", [f"is_{name}"], f"{name}_f", to=TensorProto.FLOAT)
        op("Reshape", [f"{name}_f", "shape_n11"], f"{name}_w")
        op("Mul", ["inside", f"{name}_w"], f"{name}_d")
        op("ReduceMax", [f"{name}_d"], f"{name}_m", axes=[0], keepdims=0)
    for corner, coord in (("lt", "px"), ("lt", "py"), ("rb", "px"), ("rb", "py")):
        op("Where", [f"is_{corner}", coord, "big"], f"w_{corner}_{coord}")
        op("ReduceMax", [f"w_{corner}_{coord}"], f"{corner}_{coord}", axes=[0], keepdims=0)
    for c, lo, hi in (("x", "lt_px", "rb_px"), ("y", "lt_py", "rb_py")):
        op("Add", [lo, hi], f"s_{c}"), op("Mul", [f"s_{c}", "half"], f"c_{c}")
        op("Sub", [hi, lo], f"e_{c}"), op("Mul", [f"e_{c}", "half"], f"r0_{c}")
        op("Max", [f"r0_{c}", "eps"], f"r_{c}")
    op("Reshape", ["xc", "shape_1w"], "X2"), op("Reshape", ["yc", "shape_h1"], "Y2")
    for c, grid in (("x", "X2"), ("y", "Y2")):
        op("Sub", [grid, f"c_{c}"], f"u_{c}"), op("Div", [f"u_{c}", f"r_{c}"], f"q_{c}")
        op("Mul", [f"q_{c}", f"q_{c}"], f"q2_{c}")
    op("Add", ["q2_x", "q2_y"], "ell"), op("LessOrEqual", ["ell", "f1"], "inbox_b")
    op("Cast", ["inbox_b"], "inbox", to=TensorProto.FLOAT)
    op("Max", ["pos_m", "inbox"], "fg")
    op("Sub", ["f1", "neg_m"], "keep"), op("Mul", ["fg", "keep"], "res")
    op("ReduceMean", ["image_embeddings"], "emb_mean", keepdims=0)
    op("Mul", ["emb_mean", "f0"], "emb_zero")  # the embedding is an input of the graph
    op("Mul", ["res", "f2"], "res2"), op("Sub", ["res2", "f1"], "logit0")
    op("Add", ["logit0", "emb_zero"], "logit")
    op("Unsqueeze", ["logit", "axes012"], "logit5")
    const("axes012", [0, 1, 2], np.int64)
    n.append(n.pop(-2))  # the axes constant before its use
    op("Concat", ["logit5", "logit5", "logit5"], "masks", axis=2)
    const("iou_predictions", np.ones((1, 1, 3), np.float32))
    const("low_shape", [1, 1, 3, 256, 256], np.int64)
    op("ConstantOfShape", ["low_shape"], "low_res_masks")
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        n, "tiny_decoder",
        [helper.make_tensor_value_info("image_embeddings", f, [1, 256, 64, 64]),
         helper.make_tensor_value_info("batched_point_coords", f, [1, 1, "num_points", 2]),
         helper.make_tensor_value_info("batched_point_labels", f, [1, 1, "num_points"]),
         helper.make_tensor_value_info("orig_im_size", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("masks", f, [1, 1, 3, "height", "width"]),
         helper.make_tensor_value_info("iou_predictions", f, [1, 1, 3]),
         helper.make_tensor_value_info("low_res_masks", f, [1, 1, 3, 256, 256])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def write_tiny_files(folder: str | Path) -> tuple[Path, Path]:
    """Write the encoder and decoder ONNX files into `folder`; returns their paths."""
    import onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    enc, dec = folder / "tiny_sam_encoder.onnx", folder / "tiny_sam_decoder.onnx"
    for model, path in ((_encoder(), enc), (_decoder(), dec)):
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return enc, dec


def tiny_spec(encoder: Path, decoder: Path, name: str = TINY_NAME) -> ModelSpec:
    """The model spec of the tiny pair, an osam EfficientSAM whose blobs are these files
    (its URLs point at them; installing still goes through the hash check)."""
    from osam import apis, types

    base = apis.get_model_type_by_name("efficientsam:10m")
    blobs = {role: types.Blob(url=Path(path).resolve().as_uri(),
                              hash=f"sha256:{sha256_of(path)}")
             for role, path in (("encoder", encoder), ("decoder", decoder))}
    meta = types.ModelMetadata(license_name="MIT (made by the test)", license_url="",
                               source_url="")
    cls = type("TinySam", (base,), {"name": name, "_blobs": blobs, "metadata": meta})
    return ModelSpec(name=name, title="Tiny test model", size_mb=0,
                     licence=meta.license_name, licence_url="", osam_type=cls,
                     note="made on the spot; no learned weights")


def install_tiny_model(folder: str | Path, name: str = TINY_NAME) -> ModelSpec:
    """Write the tiny pair into `folder`, register it and install its files into osam's
    folder through the same hash-checked path as a person's "Install from file..."."""
    from studio.ml.segment.registry import register_model
    from studio.ml.segment.weights import install_from_file

    encoder, decoder = write_tiny_files(folder)
    spec = tiny_spec(encoder, decoder, name)
    register_model(spec)
    for path in (encoder, decoder):
        install_from_file(path, name)
    return spec
