"""Every numerical tolerance of the test suite, in one place, each with its reason."""

# Issue #2's parity gate on L2-normalized embeddings against HF fp32. A plain fp32 NumPy forward
# lands near 2e-7; this leaves room for reordered sums but none for a wrong formula.
EMBEDDING_MAX_ABS = 1e-6
EMBEDDING_MIN_COSINE = 0.999999

# E5Model against e5np.reference_model (issue #25's gate): both keep float32 activations between
# modules; the reference sums every GEMM in float64 where e5np's GEMM sums in float32 chunks.
REFERENCE_MODEL_MAX_ABS = 1e-6

# e5np's fp32 error against HF float64 must stay within this factor of HF fp32's own error.
VS_FLOAT64_FACTOR = 1.5

# Scores of the model card's example (q @ p.T * 100) against HF's.
SCORE_MAX_ABS = 1e-3

# Per-layer hidden states against HF fp32: values are O(1) after LayerNorm; fp32 round-off
# through GEMMs of K <= 4096 and up to 24 layers stays below 1e-4 relative to the layer's largest value.
HIDDEN_STATE_REL = 1e-4

# Kernels against their float64 NumPy twins. Elementwise kernels (LayerNorm, GELU, pooling,
# embeddings) round once from float64: a few float32 ulps. GEMM and attention accumulate in
# float32: error grows like sqrt(K) * eps * |x||w|, bounded here relative to the output's scale.
ELEMENTWISE_RTOL, ELEMENTWISE_ATOL = 1e-6, 1e-6
ACCUMULATING_REL = 2e-6

# The vectorized exp of kernels/softmax.py against float64 exp of the same float32 argument:
# degree-7 Taylor after Cody-Waite reduction, float32 Horner: measured 1.2 ulp, bounded at 2 ulp.
EXP_REL = 2 * 2.0 ** -23

# The AMX GEMM against float64 products of the same bf16-rounded inputs, relative to
# sum_k |x_ik w_jk| (issue #5): products of bf16 values are exact in fp32, so only the fp32
# accumulation rounds: measured about 1e-7 to 5e-7.
BF16_GEMM_REL = 1e-6

# bf16 embeddings against e5np fp32 (issue #5's gate): rounding inputs to bf16 (8 bits of
# mantissa) before every GEMM; transformers bf16 measured >= 0.99989 on real MiniLM.
BF16_MIN_COSINE = 0.9999

# The bf16 path's float32 GELU against float64 erf GELU: float32 round-off (6e-8) in each step,
# and in -z^2 in the exponent, which grows the relative error like z^2 (measured 1.4e-5 at x = -11.6,
# 3.7e-7 for x >= 0). Tiny values in the far tail are off by absolute amounts below 1e-30.
GELU_F32_REL_PER_Z2 = 4e-7
GELU_F32_ABS = 1e-30
