"""The texts the int8 path calibrates on (``calibration.py``): written for e5np, kept apart from every
text that measures quality (STS-B, SciFact). Short queries and longer passages across everyday,
scientific, technical and non-English writing, with E5's "query: " / "passage: " prefixes on some,
so that each LayerNorm's outlier channels show their usual range. Changing them changes the int8
weights (the packed-weight cache notices: its key covers this file)."""

CALIBRATION_TEXTS = (
    "query: how long should I boil an egg for a soft yolk",
    "query: symptoms of vitamin D deficiency in adults",
    "query: what is the capital of Australia",
    "query: best way to learn a second language as an adult",
    "query: python read a csv file without pandas",
    "query: why is the sky blue",
    "query: train times from Lyon to Geneva on Sunday",
    "query: does ibuprofen interact with blood pressure medication",
    "query: how do vaccines train the immune system",
    "query: difference between a mortgage broker and a bank",
    "query: wie funktioniert eine Wärmepumpe",
    "query: recette de la tarte tatin",
    "query: 東京 おすすめ 観光地",
    "query: error: permission denied (publickey) when pushing to git",
    "query: 2019 revenue of the largest shipping companies",
    "query: can dogs eat grapes",
    "passage: The committee approved the new budget after a debate that lasted well into the night, "
    "with most of the disagreement centred on funding for public transport and road repairs.",
    "passage: Mitochondria generate most of the cell's supply of adenosine triphosphate, which is used "
    "as a source of chemical energy, and they are also involved in signalling and cell death.",
    "passage: To reset the router, hold the recessed button on the back for ten seconds until the "
    "status light blinks amber, then wait two minutes before reconnecting your devices.",
    "passage: In 1869 the Suez Canal opened, shortening the sea route between Europe and South Asia by "
    "about 7,000 kilometres and changing the economics of global trade.",
    "passage: The randomized controlled trial enrolled 1,204 patients with type 2 diabetes; after 52 "
    "weeks, HbA1c fell by 1.1 percentage points in the treatment arm versus 0.3 with placebo (p < 0.001).",
    "passage: def merge(a, b):\n    out = []\n    while a and b:\n        out.append(a.pop(0) if a[0] < b[0] else b.pop(0))\n"
    "    return out + a + b",
    "passage: Our return policy allows you to send back unworn items within 30 days of delivery for a "
    "full refund; sale items can be exchanged but not refunded.",
    "passage: Die Energiewende bezeichnet den Übergang von fossilen Brennstoffen und Kernenergie zu "
    "erneuerbaren Energien wie Wind, Sonne und Biomasse.",
    "passage: Le télescope spatial a capturé des images d'une galaxie située à plus de treize milliards "
    "d'années-lumière, offrant un aperçu de l'univers primitif.",
    "passage: El río Amazonas transporta más agua que cualquier otro río del mundo y su cuenca alberga "
    "una enorme diversidad de especies.",
    "passage: 人工知能の研究は、機械学習と大量のデータによって近年急速に進歩している。",
    "passage: Глобальное потепление приводит к таянию ледников и повышению уровня моря.",
    "passage: Photosynthesis converts light energy into chemical energy stored in glucose, releasing "
    "oxygen as a by-product; chlorophyll absorbs mostly blue and red light.",
    "passage: The defendant's appeal was dismissed because the new evidence had been available at the "
    "time of the original trial and could have been presented then.",
    "passage: Preheat the oven to 200 C. Toss the potatoes in olive oil, salt and rosemary, spread them "
    "on a tray and roast for 40 minutes, turning once halfway through.",
    "passage: A transformer encoder applies self-attention followed by a position-wise feed-forward "
    "network, with a residual connection and layer normalization around each sub-layer.",
    "A woman is slicing an onion in a small kitchen.",
    "Two children are playing football on a muddy field.",
    "The stock market closed higher on Friday after strong employment figures.",
    "I can't believe the concert was cancelled at the last minute!!",
    "The patient was discharged with instructions to rest and return if the fever persists.",
    "Firmware version 4.2.1 fixes a memory leak in the Bluetooth stack.",
    "He said he would call back, but he never did.",
    "Rainfall in the region has dropped by a third over the past two decades.",
    "This product is terrible. Broke after two days, do not buy.",
    "The quarterly report shows a 12% increase in operating costs, mostly from energy prices.",
    "A cat sleeps on a sunny windowsill.",
    "Researchers identified a protein that slows the growth of certain tumours in mice.",
    "SELECT name, COUNT(*) FROM orders GROUP BY name HAVING COUNT(*) > 10;",
    "The train was delayed by forty minutes because of a signal failure near the station.",
    "Honestly the sequel is better than the original, the soundtrack alone is worth it.",
    "Ein Mann fährt mit dem Fahrrad durch den Park.",
    "La réunion est reportée à jeudi prochain.",
    "Estoy buscando un apartamento cerca del centro.",
    "WARNING: disk usage above 90% on /dev/sda1",
    "The museum's new wing houses sculptures from the fifteenth and sixteenth centuries.",
)
