"""A LlamaIndex retriever over Lore's search.

    from lore import Lore
    from lore.integrations.llama_index import LoreRetriever

    retriever = LoreRetriever(Lore(api_key=KEY), knowledge_base_ids=[kb_id], top_k=4)
    nodes = retriever.retrieve("how long do refunds take?")
    # nodes[0].node.get_content(), nodes[0].score, nodes[0].node.metadata["document_id"]
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ..client import AsyncLore, Lore
from ._common import metadata_of


class LoreRetriever(BaseRetriever):
    """Chunks from one or more of Lore's knowledge bases, best first, as scored text nodes (each
    node's id is the chunk's)."""

    def __init__(
        self,
        client: Optional[Lore] = None,
        *,
        knowledge_base_ids: Sequence[str],
        top_k: int = 5,
        mode: str = "hybrid",
        filters: Optional[Dict[str, Any]] = None,
        similarity_threshold: Optional[float] = None,
        async_client: Optional[AsyncLore] = None,
        **kwargs: Any,
    ) -> None:
        self._client = client
        self._async_client = async_client
        self._kbs = list(knowledge_base_ids)
        self._options = {"top_k": top_k, "mode": mode, "filters": filters, "similarity_threshold": similarity_threshold}
        super().__init__(**kwargs)

    def _target(self) -> Any:
        return self._kbs[0] if len(self._kbs) == 1 else self._kbs

    @staticmethod
    def _nodes(hits: Any) -> List[NodeWithScore]:
        return [
            NodeWithScore(node=TextNode(text=hit.content, id_=hit.chunk_id, metadata=metadata_of(hit)), score=hit.score)
            for hit in hits
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        if self._client is None:
            raise ValueError("LoreRetriever needs a Lore client to be called synchronously")
        return self._nodes(self._client.search(self._target(), query_bundle.query_str, **self._options))

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        if self._async_client is None:
            return self._retrieve(query_bundle)
        return self._nodes(await self._async_client.search(self._target(), query_bundle.query_str, **self._options))
