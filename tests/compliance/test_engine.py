"""The local engine's duplicate finder agrees with a plain dict over many batches."""

from __future__ import annotations

import random

from marketplace.compliance.engine import Duplicates


def test_duplicates_name_the_first_row_across_batches_as_a_dict_would() -> None:
    rng = random.Random(3)
    duplicates, seen, row = Duplicates(), {}, 0
    for _ in range(60):
        rows, urls, digests = [], [], []
        for _ in range(rng.randint(1, 500)):
            row += 1
            rows.append(row)
            url = rng.choice([None, f"https://a.example/{rng.randint(0, 3000)}", " https://b "])
            urls.append(url)
            digests.append(None if url else rng.choice([None, f"{rng.randint(0, 50):064x}"]))
        expected = {}
        for i, (number, url, digest) in enumerate(zip(rows, urls, digests, strict=True)):
            text = url.strip() if url is not None else digest
            if not text:
                continue
            if text in seen:
                expected[i] = seen[text]
            else:
                seen[text] = number
        assert duplicates.check(rows, urls, digests) == expected
    assert len(duplicates.parts) <= 8  # merged as they grow
