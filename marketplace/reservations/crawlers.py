"""The crawlers whose robots.txt groups count as a reservation against AI use: the one list.

A robots.txt group naming one of these product tokens (case-insensitive, RFC 9309 2.2.1) is the
site saying what AI crawlers may take; the `*` group speaks to every crawler, search engines
included, and is not read as an AI reservation. Add a token here and the next index built
(`ReservationIndex.from_session`) reads it; nothing else lists crawlers.
"""

from __future__ import annotations

AI_CRAWLERS: frozenset[str] = frozenset(
    token.lower()
    for token in (
        # Collect text and images to train models.
        "GPTBot",  # OpenAI
        "CCBot",  # Common Crawl, the source of LAION and most open image-text datasets
        "Google-Extended",  # Google's token for Gemini / Vertex AI training
        "anthropic-ai",  # Anthropic (older token)
        "ClaudeBot",  # Anthropic
        "Claude-Web",  # Anthropic (older token)
        "Applebot-Extended",  # Apple's token for training
        "Bytespider",  # ByteDance
        "meta-externalagent",  # Meta
        "FacebookBot",  # Meta (speech and language model training)
        "cohere-ai",
        "cohere-training-data-crawler",
        "AI2Bot",  # Allen Institute for AI
        "Diffbot",
        "omgili",  # Webz.io, sells crawled data for training
        "omgilibot",
        "Webzio-Extended",
        "Timpibot",
        "ImagesiftBot",  # image dataset crawler
        "img2dataset",  # the downloader that builds LAION-style image datasets
        "PanguBot",  # Huawei
        "YouBot",
        # Fetch for AI assistants and AI search answers.
        "ChatGPT-User",
        "OAI-SearchBot",
        "PerplexityBot",
        "Perplexity-User",
        "Claude-User",
        "Claude-SearchBot",
        "DuckAssistBot",
        "Amazonbot",
    )
)


def is_ai_crawler(product_token: str) -> bool:
    return product_token.strip().lower() in AI_CRAWLERS
