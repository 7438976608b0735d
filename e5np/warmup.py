"""``e5np warmup``: everything a first run builds, built now, for images and fleets.

For each precision path asked for, load the model (which writes its packed-weight cache) and
embed texts of several lengths, alone and batched (which compiles every kernel those paths call
on this CPU). All of it lands in ``E5NP_CACHE_DIR`` (default ~/.cache/e5np): bake that folder into
an image and its replicas start warm, on this kind of CPU. On another CPU the kernels compile
again, and the log line says the cache holds code for another CPU only.
"""

import time

from .engine import E5Model
from .runtime import amx_problem, avx512_bf16_problem, cache_home, kernel_cache_dir, kernels_compiled

# a short query, a passage, one long enough to be cut: the shapes a server meets
TEXTS = ["query: warm up", "passage: " + "a passage of a few dozen words about warming up a cache. " * 6,
         "passage: " + "long " * 600]


def default_precisions() -> list[str]:
    """fp32, and bf16 where this CPU has a bf16 path: what ``precision="auto"`` may pick."""
    return ["fp32"] + (["bf16"] if amx_problem() is None or avx512_bf16_problem() is None else [])


def warm_up(model_name: str, precisions: list[str], say=print) -> None:
    for precision in precisions:
        start, compiled = time.perf_counter(), kernels_compiled()
        model = E5Model.from_pretrained(model_name, precision=precision)
        for texts in (TEXTS[:1], TEXTS):
            model.encode(texts, log_truncation=False)
        where = model.packed_file or "nowhere (packed in memory: the cache folder is not writable)"
        say(f"{precision} -> {model.precision}: {kernels_compiled() - compiled} kernels compiled, packed weights "
            f"in {where}; {time.perf_counter() - start:.1f} s")
    say(f"kernels cached in {kernel_cache_dir()}; copy {cache_home()} (E5NP_CACHE_DIR) into an image "
        "to start warm on this kind of CPU")
