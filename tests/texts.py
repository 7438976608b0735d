"""Texts the parity tests embed: the E5 model card's four examples and the hard cases."""

MODEL_CARD_QUERIES = ["how much protein should a female eat", "summit define"]
MODEL_CARD_PASSAGES = [
    "As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams per day. "
    "But, as you can see from this chart, you'll need to increase that if you're expecting or training for a marathon. "
    "Check out the chart below to see how much protein you should be eating each day.",
    "Definition of summit for English Language Learners. : 1 the highest point of a mountain : the top of a mountain. "
    ": 2 the highest level. : 3 a meeting or series of meetings between the leaders of two or more governments.",
]
MODEL_CARD_INPUTS = ["query: " + q for q in MODEL_CARD_QUERIES] + ["passage: " + p for p in MODEL_CARD_PASSAGES]

LONG = " ".join(f"Sentence number {i} talks about mountains, rivers and the leaders of governments." for i in range(80))

HARD_CASES = [
    "hi",
    "Crème brûlée à la française, naïve café, Ångström, São Paulo, Zürich",
    "東京は日本の首都です。北京是中国的首都。서울은 한국의 수도입니다.",
    "I love pizza 🍕🎉😀 and 👩‍👩‍👧‍👦 families",
    "   \t\n  ",
    "",
    LONG,                      # far over 512 tokens: truncated
    LONG[:1200],               # a few hundred tokens
]

PARITY_TEXTS = MODEL_CARD_INPUTS + HARD_CASES  # mixed lengths in one batch
