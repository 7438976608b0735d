"""One text through e5np and transformers, side by side, layer by layer.

  python scripts/trace.py FOLDER ["query: how much protein should a female eat"]

Prints the token ids, then for the embeddings and every encoder layer: the shape, the norm of
e5np's hidden states and the largest difference from transformers' (fp32, eager attention),
then the same for the pooled, normalized embedding. Needs the test extra (torch, transformers).
"""

import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a model folder (e.g. the all-MiniLM-L6-v2 test fixture)")
    parser.add_argument("text", nargs="?", default="query: how much protein should a female eat")
    args = parser.parse_args()

    import torch
    from transformers import AutoModel, AutoTokenizer

    from e5np import E5Model

    ours = E5Model(args.folder)
    ids = ours.tokenize([args.text]).ids[0]
    tokenizer = AutoTokenizer.from_pretrained(args.folder)
    print(f"text:   {args.text!r}")
    print(f"ids:    {ids.tolist()}")
    print(f"tokens: {tokenizer.convert_ids_to_tokens(ids.tolist())}")

    e5np_out = ours.forward(ids[None])
    hf = AutoModel.from_pretrained(args.folder, attn_implementation="eager").eval()
    with torch.inference_mode():
        hf_out = hf(input_ids=torch.from_numpy(ids[None].astype(np.int64)), output_hidden_states=True)

    print(f"\n{'step':<12} {'shape':<16} {'|e5np|':>10} {'max |e5np - HF|':>16}")
    for i, (a, b) in enumerate(zip(e5np_out.hidden_states, hf_out.hidden_states)):
        b = b.numpy()
        step = "embeddings" if i == 0 else f"layer {i}"
        print(f"{step:<12} {str(list(a.shape)):<16} {np.linalg.norm(a):10.4f} {np.abs(a - b).max():16.3g}")
    last = hf_out.last_hidden_state[0].numpy().astype(np.float64)
    pooled = last[0] if ours.modules.pooling == "cls" else last.mean(0)  # one text: no padding to mask
    pooled /= np.linalg.norm(pooled)
    diff = np.abs(e5np_out.embeddings[0] - pooled).max()
    print(f"{'pooled':<12} {str(list(e5np_out.embeddings.shape)):<16} {np.linalg.norm(e5np_out.embeddings):10.4f} "
          f"{diff:16.3g}   ({ours.modules.pooling} pooling, L2-normalized)")


if __name__ == "__main__":
    main()
