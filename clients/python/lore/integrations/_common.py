from __future__ import annotations

from typing import Any, Dict

from ..models import SearchHit


def metadata_of(hit: SearchHit) -> Dict[str, Any]:
    """What a framework's document carries of a Lore hit: where it comes from and how it scored."""
    meta: Dict[str, Any] = {
        "document_id": hit.document_id,
        "chunk_id": hit.chunk_id,
        "knowledge_base_id": hit.knowledge_base_id,
        "filename": hit.filename,
        "title": hit.title,
        "chunk_index": hit.chunk_index,
        "score": hit.score,
        "source": hit.filename,
    }
    if hit.page is not None:
        meta["page"] = hit.page
    if isinstance(hit.metadata, dict):
        for key, value in hit.metadata.items():
            meta.setdefault(key, value)
    return meta
