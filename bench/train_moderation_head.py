"""Train the moderation text head on the calibration half of the Davidson et al. tweets; write ``text_head.npz``.

    .venv/bin/python bench/train_moderation_head.py [--regularisation C] [--embedding-weight W]
    .venv/bin/python bench/moderation.py --write-calibration   # then refit the stacker and thresholds over it

Same cleaning and split as ``bench/moderation.py`` (the held-out half is never read here). The head's provenance
records the sha256 of the calibration rows; ``bench/moderation.py`` refuses a head trained on other rows. A new head is
a new moderation version. Tweet embeddings are cached under ``<cache_dir>/davidson`` (shared with the benchmark).
The tweets are offensive by design: no text is ever printed.
"""

from __future__ import annotations

import argparse
import time

from moderation import SPLIT_SEED, load_davidson, tweet_encoder

from shopflow.settings import Settings, configure_runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regularisation", type=float, default=1.0, help="inverse L2 strength C of both heads")
    parser.add_argument("--embedding-weight", type=float, default=None, help="MiniLM block weight (0: n-grams only)")
    args = parser.parse_args()
    settings = configure_runtime(Settings())

    from shopflow.models.moderation.text_head import TEXT_HEAD_PATH, TextFeatures, fit_text_head

    features = TextFeatures() if args.embedding_weight is None else TextFeatures(embedding_weight=args.embedding_weight)

    davidson = load_davidson(settings)
    rows = davidson.calibration_rows
    provenance = {
        "dataset": "Davidson et al. 2017 hate-speech-offensive labeled_data.csv (tweets cleaned: bench/moderation.py)",
        "dataset_sha256": davidson.sha256,
        "split": f"50/50 stratified by class, seed {SPLIT_SEED}; trained on the calibration half ({len(rows)} rows)",
        "calibration_rows_sha256": davidson.calibration_rows_sha256(),
        "trained_by": "bench/train_moderation_head.py",
    }
    began = time.perf_counter()
    texts, classes = list(davidson.texts[rows]), davidson.classes[rows]
    head = fit_text_head(texts, classes, args.regularisation, features, provenance, tweet_encoder(settings))
    seconds = time.perf_counter() - began
    head.save(TEXT_HEAD_PATH)
    size = TEXT_HEAD_PATH.stat().st_size
    print(f"trained on {len(rows)} tweets in {seconds:.1f} s; wrote {TEXT_HEAD_PATH} ({size / 1e6:.2f} MB)")
    print(f"fingerprint {head.fingerprint()}")


if __name__ == "__main__":
    main()
