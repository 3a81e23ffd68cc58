"""Cited chunks from Lore through LangChain and LlamaIndex.

    LORE_BASE_URL=http://127.0.0.1:8080 LORE_API_KEY=lore_... python3 examples/retrievers.py

Creates a knowledge base with two short documents (Chinese and English), then asks both
frameworks' retrievers a question and prints each cited chunk with its source.
"""

import tempfile
from pathlib import Path

from lore import Lore
from lore.integrations.langchain import LoreRetriever as LangChainRetriever
from lore.integrations.llama_index import LoreRetriever as LlamaIndexRetriever

lore = Lore()
kb = lore.knowledge_bases.create(name="retriever example")
with tempfile.TemporaryDirectory() as folder:
    Path(folder, "退款政策.md").write_text("# 退款政策\n\n购买后三十天内可以申请全额退款，五个工作日内到账。", encoding="utf-8")
    Path(folder, "shipping.md").write_text("# Shipping\n\nOrders ship within two business days.", encoding="utf-8")
    lore.documents.upload_folder(kb.id, folder, wait=True)

question = "退款多久到账？"
for doc in LangChainRetriever(client=lore, knowledge_base_ids=[kb.id], top_k=2).invoke(question):
    print(f"langchain   [{doc.metadata['filename']} · chunk {doc.metadata['chunk_id']}] {doc.page_content}")
for node in LlamaIndexRetriever(lore, knowledge_base_ids=[kb.id], top_k=2).retrieve(question):
    print(f"llama-index [{node.node.metadata['filename']} · score {node.score:.3f}] {node.node.get_content()}")
lore.knowledge_bases.delete(kb.id)
