"""Retrievers for the frameworks RAG applications are built with: ``lore.integrations.langchain``
(needs ``langchain-core``) and ``lore.integrations.llama_index`` (needs ``llama-index-core``)."""
