"""The classic five-sentence ``CustomDataset`` example, with dataferry's text dataset.

    python examples/custom_dataset.py

Part 1 is the tutorial as usually written: texts and labels in, a ``DataLoader`` with
``batch_size=2, shuffle=True`` out, dict batches ``{"text": [str, str], "label": tensor}``.
Part 2 adds a tokenizer + vocabulary and ``pad_collate``: token ids, lengths and masks, ready
for an ``nn.Embedding``/``EmbeddingBag`` model.
"""

from __future__ import annotations

import torch

from datasets.collate import PadCollate
from datasets.loader import DataLoader
from datasets.text import TextClassificationDataset

texts = [
    "Hello, how are you?",
    "I am fine, thank you.",
    "What about you?",
    "I am doing great!",
    "That's wonderful to hear.",
]
labels = [1, 0, 1, 0, 1]


def main() -> None:
    generator = torch.Generator().manual_seed(0)  # a seeded shuffle: the same batches every run

    dataset = TextClassificationDataset(texts, labels)
    loader = DataLoader(dataset, batch_size=2, shuffle=True, generator=generator)
    print("Part 1: raw text batches")
    for batch in loader:
        print(batch)

    dataset.vocab = dataset.build_vocab()  # build it from the training texts only
    loader = DataLoader(dataset, batch_size=2, shuffle=True, generator=generator,
                        collate_fn=PadCollate(return_offsets=True))
    print(f"\nPart 2: token ids (vocabulary of {len(dataset.vocab)} tokens)")
    for batch in loader:
        print({key: value.tolist() for key, value in batch.items()})


if __name__ == "__main__":
    main()
