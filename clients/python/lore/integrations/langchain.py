"""A LangChain retriever over Lore's search.

    from lore import Lore
    from lore.integrations.langchain import LoreRetriever

    retriever = LoreRetriever(client=Lore(api_key=KEY), knowledge_base_ids=[kb_id], top_k=4)
    docs = retriever.invoke("how long do refunds take?")
    # docs[0].page_content, docs[0].metadata["document_id"], ["chunk_id"], ["score"], ["filename"]
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ..client import AsyncLore, Lore
from ._common import metadata_of


class LoreRetriever(BaseRetriever):
    """Chunks from one or more of Lore's knowledge bases, best first, as LangChain documents."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: Optional[Lore] = None
    async_client: Optional[AsyncLore] = None
    knowledge_base_ids: List[str]
    top_k: int = 5
    mode: str = "hybrid"
    filters: Optional[Dict[str, Any]] = None
    similarity_threshold: Optional[float] = None

    def _target(self) -> Any:
        return self.knowledge_base_ids[0] if len(self.knowledge_base_ids) == 1 else self.knowledge_base_ids

    def _to_documents(self, hits: Any) -> List[Document]:
        return [Document(page_content=hit.content, metadata=metadata_of(hit)) for hit in hits]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> List[Document]:
        if self.client is None:
            raise ValueError("LoreRetriever needs client=Lore(...) to be called synchronously")
        hits = self.client.search(
            self._target(), query, top_k=self.top_k, mode=self.mode, filters=self.filters,
            similarity_threshold=self.similarity_threshold,
        )
        return self._to_documents(hits)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> List[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        hits = await self.async_client.search(
            self._target(), query, top_k=self.top_k, mode=self.mode, filters=self.filters,
            similarity_threshold=self.similarity_threshold,
        )
        return self._to_documents(hits)
