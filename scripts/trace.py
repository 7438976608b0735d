"""One text through e5np and a reference, side by side, layer by layer.

  python scripts/trace.py FOLDER ["query: how much protein should a female eat"] [--against hf|numpy]

Prints the token ids, then for the embeddings and every encoder layer: the shape, the norm of
e5np's hidden states and the largest difference from the reference, then the same for the pooled,
normalized embedding. The reference is transformers (fp32, eager attention) where it is installed
(the test extra), else ``e5np.reference_model``, the plain-NumPy model (``--against`` picks).
"""

import argparse
import importlib.util

import numpy as np


def transformers_states(folder, ids) -> tuple[list[np.ndarray], list[str]]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    hf = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.inference_mode():
        out = hf(input_ids=torch.from_numpy(ids[None].astype(np.int64)), output_hidden_states=True)
    tokens = AutoTokenizer.from_pretrained(folder).convert_ids_to_tokens(ids.tolist())
    return [h[0].numpy() for h in out.hidden_states], tokens


def numpy_states(folder, ids) -> tuple[list[np.ndarray], list[str]]:
    from e5np.reference_model import ReferenceModel, forward

    ref = ReferenceModel(folder)
    return forward(ids, ref.weights, ref.config), [ref.tokenizer._tokenizer.id_to_token(int(i)) for i in ids]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a model folder (e.g. the all-MiniLM-L6-v2 test fixture)")
    parser.add_argument("text", nargs="?", default="query: how much protein should a female eat")
    has_hf = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None
    parser.add_argument("--against", choices=("hf", "numpy"), default="hf" if has_hf else "numpy",
                        help="transformers (default where installed) or e5np.reference_model")
    args = parser.parse_args()

    from e5np import E5Model

    ours = E5Model(args.folder)
    ids = ours.tokenize([args.text]).ids[0]
    states, tokens = (transformers_states if args.against == "hf" else numpy_states)(args.folder, ids)
    name = "HF" if args.against == "hf" else "NumPy"
    print(f"text:   {args.text!r}")
    print(f"ids:    {ids.tolist()}")
    print(f"tokens: {tokens}")

    e5np_out = ours.forward(ids[None])
    print(f"\n{'step':<12} {'shape':<16} {'|e5np|':>10} {f'max |e5np - {name}|':>19}")
    for i, (a, b) in enumerate(zip(e5np_out.hidden_states, states)):
        step = "embeddings" if i == 0 else f"layer {i}"
        print(f"{step:<12} {str(list(a.shape[1:])):<16} {np.linalg.norm(a):10.4f} {np.abs(a[0] - b).max():19.3g}")
    last = states[-1].astype(np.float64)
    pooled = last[0] if ours.modules.pooling == "cls" else last.mean(0)  # one text: no padding to mask
    pooled /= np.linalg.norm(pooled)
    diff = np.abs(e5np_out.embeddings[0] - pooled).max()
    print(f"{'pooled':<12} {str(list(e5np_out.embeddings.shape)):<16} {np.linalg.norm(e5np_out.embeddings):10.4f} "
          f"{diff:19.3g}   ({ours.modules.pooling} pooling, L2-normalized)")


if __name__ == "__main__":
    main()
