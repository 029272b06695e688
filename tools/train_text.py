"""Fine-tune a text classifier on a pretrained BERT entry, package its delta and record it.

Usage:
    python tools/train_text.py minilm_l6.mr              # train, package, measure, record
    python tools/train_text.py minilm_l6.mr --record-only   # re-measure the packaged weights

The run resumes from runs/NAME/checkpoints if it was interrupted. Only what
differs from the base entry is packaged: the trained layers (the top encoder
blocks, the pooler and the head) as a safetensors file in Hugging Face naming,
stored as float16, whose metadata names the base entry (``zoo_base``); the
converter ``bert_hf_safetensors`` loads the base's verified weights first.
The measured accuracy comes from zoo.tasks.text_classify.evaluate_text on the
packaged weights (what ``zoo evaluate NAME`` runs), and the record goes to the
manifest through zoo.weights.manifest.upsert_entries.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]

RECIPES: dict[str, dict] = {
    "minilm_l6.mr": {
        "base": "minilm_l6.sentence",
        "data": "mr",
        "kfold": [10, 0],
        "labels": ["neg", "pos"],
        "strategy": "two_phase",
        "epochs": [1, 3],
        "batch_size": 32,
        "learning_rate": 1e-3,
        "encoder_learning_rate": 5e-5,
        "unfreeze": 5,
        "seed": 0,
        "delta_dtype": "float16",
        "description": "all-MiniLM-L6-v2 fine-tuned for MR sentence polarity (Pang and Lee 2005): "
        "classifier on the pooled [CLS] output, top 4 encoder layers and pooler trained.",
        "dataset_notes": "MR sentence polarity v1.0 (Pang and Lee 2005), 10,662 sentences; trained on "
        "'train' and measured on 'test' = fold 0 of zoo.data's fixed 10-fold split "
        "(9,595 / 1,067 sentences)",
        "references": [
            {
                "name": "top1_accuracy",
                "value": 81.5,
                "citation": "Kim 2014, CNN-non-static",
                "note": "10-fold cross-validation",
            },
        ],
        "license": "Apache-2.0",
    },
}


def delta_layers(model, unfreeze) -> list[str]:
    from zoo.train.engine import bert_blocks

    blocks = bert_blocks(model)
    keep = len(blocks) if unfreeze == "all" else int(unfreeze)
    return [layer.name for block in blocks[len(blocks) - keep :] for layer in block] + ["head"]


def train(name: str, recipe: dict, run_dir: Path, data_dir: str | None):
    import math

    import keras

    import zoo
    import zoo.data
    from zoo.preprocessing.bind import wordpiece_spec
    from zoo.tasks.text_classify import text_dataset
    from zoo.train.engine import fine_tune_text
    from zoo.train.schedules import plot_history

    keras.utils.set_random_seed(recipe["seed"])
    base = zoo.weights_entry(recipe["base"])
    model = zoo.load(base.name, include_top=True, num_classes=len(recipe["labels"]))
    spec = wordpiece_spec(base)
    kfold = tuple(recipe["kfold"])
    kw = {"spec": spec, "batch_size": recipe["batch_size"], "seed": recipe["seed"], "data_dir": data_dir}
    train_ds = text_dataset(recipe["data"], split="train", kfold=kfold, shuffle=True, **kw)
    val_ds = text_dataset(recipe["data"], split="test", kfold=kfold, **kw)
    n_train = zoo.data.info(recipe["data"]).splits["train"]
    start = time.time()
    history = fine_tune_text(
        model,
        train_ds,
        val_ds,
        strategy=recipe["strategy"],
        epochs=tuple(recipe["epochs"]),
        learning_rate=recipe["learning_rate"],
        encoder_learning_rate=recipe["encoder_learning_rate"],
        unfreeze=recipe["unfreeze"],
        steps_per_epoch=math.ceil(n_train / recipe["batch_size"]),
        checkpoint_dir=run_dir / "checkpoints",
        save_every_steps=50,
        verbose=2,
    )
    seconds = time.time() - start
    print(f"trained in {seconds:.0f} s", flush=True)
    (run_dir / "history.json").write_text(json.dumps({**history, "seconds": seconds}))
    plot_history(history, run_dir / "curves.png", title=name)
    return model, base, seconds


def package(name: str, recipe: dict, model, base, folder: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    import zoo
    from zoo.weights.converters.bert import to_hf_state

    folder.mkdir(parents=True, exist_ok=True)
    tensors = to_hf_state(model, delta_layers(model, recipe["unfreeze"]))
    tensors = {k: np.ascontiguousarray(v.astype(recipe["delta_dtype"])) for k, v in tensors.items()}
    delta = folder / f"{name}.safetensors"
    tmp = folder / f".{name}.tmp.safetensors"
    save_file(tensors, str(tmp), metadata={"zoo_base": base.name, "format": "pt"})
    os.chmod(tmp, 0o644)  # save_file creates the file owner-only
    os.replace(tmp, delta)
    vocab = zoo.pull(base.name)["vocab.txt"]
    shutil.copyfile(vocab, folder / "vocab.txt")
    return delta


def golden(model, spec_entry, folder: Path, name: str, recipe: dict, data_dir: str | None) -> Path:
    import keras
    import numpy as np

    import zoo.data
    from zoo.tasks.embed import tokenizer_for

    texts = [
        e["text"].numpy().decode("utf-8")
        for e in zoo.data.load(recipe["data"], "test", kfold=tuple(recipe["kfold"]), data_dir=data_dir).take(
            8
        )
    ]
    inputs = tokenizer_for(spec_entry.name)(texts)
    outputs = keras.ops.convert_to_numpy(model(inputs, training=False))
    path = folder / f"{name}.golden.npz"
    np.savez(path, outputs=outputs, **inputs)
    return path


def record(
    name: str,
    recipe: dict,
    folder: Path,
    files: list[Path],
    golden_path: Path,
    num_params: int,
    metrics: list[dict],
    command: str,
    seconds: float | None,
) -> dict:
    from zoo.weights.manifest import file_record, library_versions
    from zoo.weights.records import golden_record, make_record

    formats = {".safetensors": "safetensors", ".txt": "vocab"}
    hyper = {
        k: recipe[k]
        for k in (
            "base",
            "strategy",
            "epochs",
            "batch_size",
            "learning_rate",
            "encoder_learning_rate",
            "unfreeze",
            "seed",
            "delta_dtype",
            "kfold",
        )
    }
    if seconds is not None:
        hyper["train_seconds_2_cpu_cores"] = round(seconds)
    arch, tag = name.split(".", 1)
    return make_record(
        architecture=arch,
        tag=tag,
        default=False,
        description=recipe["description"],
        files=[file_record(f, formats[f.suffix]) for f in files],
        sources=[{"type": "package", "path": folder.relative_to(ROOT / "zoo").as_posix()}],
        converter="bert_hf_safetensors",
        builder_kwargs={},
        input_shape=None,
        num_classes=len(recipe["labels"]),
        labels=recipe["labels"],
        preprocessing={
            "type": "text",
            "tokenizer": "wordpiece",
            "vocab": "vocab.txt",
            "max_length": 256,
            "lowercase": True,
        },
        dataset={"name": recipe["data"], "split": "test", "notes": recipe["dataset_notes"]},
        metrics=metrics,
        references=recipe["references"],
        num_params=num_params,
        license=recipe["license"],
        recipe={"command": command, "notes": json.dumps(hyper, sort_keys=True)},
        golden=golden_record(golden_path, atol=1e-4),
        library_versions=library_versions(),
        notes=(
            f"Base: {recipe['base']} (its verified weights load first; the delta file's safetensors "
            f"metadata names it as zoo_base). {Path(files[0]).name} holds only the layers trained here "
            f"({recipe['delta_dtype']}): the top {int(recipe['unfreeze']) - 1} encoder layers, the pooler "
            "and the head, in Hugging Face BertForSequenceClassification naming (classifier.* is the "
            "head). Trained on fold 0's 'train' part of zoo.data's fixed 10-fold MR split, fixed number "
            "of epochs (the test fold never picks weights), measured on its 'test' part."
        ),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--data-dir", help="data directory (default: ZOO_DATA_DIR)")
    parser.add_argument(
        "--record-only",
        action="store_true",
        help="skip training: re-measure and re-record the packaged weights",
    )
    parser.add_argument("--manifest", type=Path, help="manifest to update (default: the checkout's)")
    args = parser.parse_args()

    import zoo
    from zoo.models._common import count_parameters
    from zoo.tasks.text_classify import evaluate_text
    from zoo.weights.manifest import upsert_entries

    recipe = RECIPES[args.name]
    run_dir = ROOT / "runs" / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    folder = ROOT / "zoo" / "pretrained" / args.name
    seconds = None
    if args.record_only:
        base = zoo.weights_entry(recipe["base"])
        history = run_dir / "history.json"
        if history.is_file():
            seconds = json.loads(history.read_text()).get("seconds")
    else:
        model, base, seconds = train(args.name, recipe, run_dir, args.data_dir)
        package(args.name, recipe, model, base, folder)
    files = [folder / f"{args.name}.safetensors", folder / "vocab.txt"]
    command = "python tools/train_text.py " + shlex.quote(args.name)
    # Record the files first, then measure exactly what was packaged through the loader.
    placeholder = folder / f"{args.name}.golden.npz"
    if not placeholder.exists():
        placeholder.write_bytes(b"placeholder until measured")
    draft = record(args.name, recipe, folder, files, placeholder, 0, [], command, seconds)
    upsert_entries({args.name: draft}, args.manifest)
    if args.manifest:
        os.environ["ZOO_MANIFEST"] = str(args.manifest)
    entry = zoo.weights_entry(args.name)
    packaged = zoo.load(args.name)
    start = time.time()
    measured = evaluate_text(packaged, entry, data_dir=args.data_dir)
    print(f"{args.name}: {measured} (evaluated in {time.time() - start:.0f} s)", flush=True)
    golden_path = golden(packaged, entry, folder, args.name, recipe, args.data_dir)
    metrics = [
        {
            "name": k,
            "value": round(float(measured[k]), 4),
            "split": "test",
            "dataset": recipe["data"],
            "command": f"zoo evaluate {args.name}",
            "higher_is_better": k == "top1_accuracy",
        }
        for k in ("top1_accuracy", "top1_error")
    ]
    final = record(
        args.name, recipe, folder, files, golden_path, count_parameters(packaged), metrics, command, seconds
    )
    upsert_entries({args.name: final}, args.manifest)
    print(f"recorded {args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
