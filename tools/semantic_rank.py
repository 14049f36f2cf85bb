"""Tool pack: rank texts by meaning with a local embedding model.

`ollama_rank_texts` embeds a query and a list of texts in one /api/embed call and returns the
texts ordered by cosine similarity to the query: a small semantic search over whatever the
model has in hand (notes, search results, file names), without a vector database.
"""

import math

from ollama_mcp import MODEL, ToolError, open_object, strict_object, tool

_MAX_TEXTS = 512


def _cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@tool(
    title="Rank texts by similarity",
    description="Rank texts by closeness in meaning to a query with an embedding model: best first, with cosine "
    "similarity and index.",
    input_schema=strict_object(
        {
            "model": MODEL,
            "query": {"type": "string", "minLength": 1},
            "texts": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": _MAX_TEXTS},
            "top_k": {"type": "integer", "minimum": 1, "maximum": _MAX_TEXTS},
        },
        ["model", "query", "texts"],
    ),
    output_schema=open_object(
        {
            "model": {"type": "string"},
            "query": {"type": "string"},
            "results": {
                "type": "array",
                "items": open_object(
                    {"index": {"type": "integer"}, "text": {"type": "string"}, "score": {"type": "number"}},
                    ["index", "text", "score"],
                ),
            },
        },
        ["model", "query", "results"],
    ),
    read_only=True,
    idempotent=True,
)
def ollama_rank_texts(call, args):
    call.model = args["model"]
    texts = args["texts"]
    answer = (
        call.ollama.for_model(args["model"]).json(
            "POST", "/api/embed", {"model": args["model"], "input": [args["query"], *texts]}, call=call
        )
        or {}
    )
    vectors = answer.get("embeddings") or []
    if len(vectors) != len(texts) + 1:
        raise ToolError(f"Ollama returned {len(vectors)} embeddings for {len(texts) + 1} inputs")
    query, rest = vectors[0], vectors[1:]
    ranked = sorted(
        (
            {"index": i, "text": text, "score": round(_cosine(query, vec), 6)}
            for i, (text, vec) in enumerate(zip(texts, rest, strict=False))
        ),
        key=lambda r: r["score"],
        reverse=True,
    )
    return {"model": args["model"], "query": args["query"], "results": ranked[: args.get("top_k", len(ranked))]}
