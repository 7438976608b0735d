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

# Ten scripts and more (multilingual E5's XLM-R vocabulary covers them; BERT's makes many [UNK]),
# and a literal <pad> inside a text: XLM-R counts positions around it (HF does the same).
MULTILINGUAL = [
    "Привет, как дела? Москва — столица России.",
    "Καλημέρα κόσμε, η Αθήνα είναι πρωτεύουσα.",
    "مرحبا بالعالم، القاهرة عاصمة مصر",
    "שלום עולם, ירושלים",
    "नमस्ते दुनिया, दिल्ली भारत की राजधानी है",
    "สวัสดีชาวโลก กรุงเทพมหานคร",
    "Grüße aus Kraków, Łódź und Malmö: ½ € — „Anführungszeichen“",
    "mixed 日本語 and English, русский и ελληνικά 🌍",
    "passage: a <pad> token inside <pad> the text",
]

# The model card of intfloat/multilingual-e5-large: its English and Chinese examples.
MULTILINGUAL_E5_CARD = [
    "query: how much protein should a female eat", "query: 南瓜的家常做法",
    "passage: As a general guideline, the CDC's average requirement of protein for women ages 19 to 70 is 46 grams "
    "per day. But, as you can see from this chart, you'll need to increase that if you're expecting or training for "
    "a marathon. Check out the chart below to see how much protein you should be eating each day.",
    "passage: 1.清炒南瓜丝 原料:嫩南瓜半个 调料:葱、盐、白糖、鸡精 做法: 1、南瓜用刀薄薄的削去表面一层皮,用勺子刮去瓤 "
    "2、擦成细丝(没有擦菜板就用刀慢慢切成细丝) 3、锅烧热放油,入葱花煸出香味 4、入南瓜丝快速翻炒一分钟左右,放盐、一点白糖和鸡精调味出锅",
]

PARITY_TEXTS = MODEL_CARD_INPUTS + HARD_CASES + MULTILINGUAL  # mixed lengths in one batch
