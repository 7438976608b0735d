"""The systems the speed benchmark compares, each as encode(texts) -> normalized float32 embeddings.

Peers run the way their users run them: transformers with the E5 model card's code (batch 32,
pad to longest, average_pool, normalize), optionally on length-sorted input; sentence-transformers'
``encode``; ONNX Runtime on the same model exported with ``torch.onnx.export`` (dynamic batch and
sequence axes, all graph optimizations, 2 intra-op threads), batched like transformers.
"""

import json
from pathlib import Path

import numpy as np

BATCH = 32
THREADS = 2
SYSTEMS = ["e5np", "transformers", "transformers-sorted", "sentence-transformers", "onnxruntime",
           "e5np-bf16", "transformers-bf16-sorted", "onnxruntime-int8-sorted", "e5np-int8"]
FP32_SYSTEMS = SYSTEMS[:5]
ONNX_CACHE = Path.home() / ".cache" / "e5np" / "onnx"


def load_system(name: str, folder: str):
    if name.startswith("e5np"):
        from e5np import E5Model
        model = E5Model(folder, precision=name.removeprefix("e5np-") if "-" in name else "fp32")
        return lambda texts: model.encode(texts, batch_size=BATCH)
    import torch
    torch.set_num_threads(THREADS)
    if name == "sentence-transformers":
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(folder, device="cpu")
        return lambda texts: st.encode(texts, batch_size=BATCH, normalize_embeddings=True)
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(folder)
    max_length = min(512, json.loads((Path(folder) / "sentence_bert_config.json").read_text())["max_seq_length"])
    if name.startswith("onnxruntime"):
        hidden_states = onnx_runner(folder, int8="int8" in name)
    else:
        hidden_states = torch_runner(folder, torch.bfloat16 if "bf16" in name else torch.float32)
    encode = model_card(tokenizer, max_length, hidden_states)
    return sorted_by_length(tokenizer, max_length, encode) if name.endswith("sorted") else encode


def model_card(tokenizer, max_length, hidden_states):
    """The E5 model card's code, batch by batch: pad to longest, average_pool, normalize."""
    def encode(texts):
        out = []
        for i in range(0, len(texts), BATCH):
            batch = tokenizer(texts[i:i + BATCH], max_length=max_length, padding=True, truncation=True, return_tensors="np")
            mask = batch["attention_mask"]
            hidden = hidden_states(batch["input_ids"], mask, batch["token_type_ids"]).astype(np.float32)
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1)[:, None]
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        return np.concatenate(out)
    return encode


def sorted_by_length(tokenizer, max_length, encode):
    """The same, with batches of similar length (less padding), results in input order."""
    def encode_sorted(texts):
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
        order = np.argsort(lengths, kind="stable")
        embeddings = encode([texts[i] for i in order])
        result = np.empty_like(embeddings)
        result[order] = embeddings
        return result
    return encode_sorted


def torch_runner(folder, dtype):
    import torch
    from transformers import AutoModel
    model = AutoModel.from_pretrained(folder, dtype=dtype).eval()

    def hidden_states(ids, mask, types):
        with torch.inference_mode():
            out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.from_numpy(types)).last_hidden_state
        return out.float().numpy()
    return hidden_states


def onnx_runner(folder, int8: bool):
    import onnxruntime as ort
    path = onnx_model(Path(folder), int8)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = THREADS
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda ids, mask, types: session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]


def onnx_model(folder: Path, int8: bool) -> Path:
    """The model exported once with torch.onnx.export (dynamic batch and sequence), cached by folder;
    int8: ONNX Runtime's dynamic quantization of it, with its defaults."""
    cache = ONNX_CACHE / folder.name
    fp32, quantized = cache / "model.onnx", cache / "model-int8.onnx"
    if not fp32.exists():
        export_onnx(folder, fp32)
    if int8 and not quantized.exists():
        from onnxruntime.quantization import quantize_dynamic
        quantize_dynamic(str(fp32), str(quantized))
    return quantized if int8 else fp32


def export_onnx(folder: Path, path: Path) -> None:
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    ids = torch.randint(1000, 2000, (4, 24))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0  # a padded row, so the traced graph keeps the mask path general
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(LastHiddenState(model), (ids, mask, torch.zeros_like(ids)), str(tmp), dynamo=True,
                      input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["last_hidden_state"],
                      dynamic_shapes=({0: batch, 1: seq},) * 3, external_data=False)
    tmp.rename(path)
