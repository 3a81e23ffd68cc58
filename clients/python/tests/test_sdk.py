"""The Python SDK against a real `lore serve` (the binary Lore's test command built, or LORE_BIN),
started on a free port of 127.0.0.1 with its own data directory. Chinese and English throughout.

The LangChain and LlamaIndex tests need `langchain-core` and `llama-index-core`; without them they
are skipped, unless LORE_REQUIRE_INTEGRATIONS=1 (as scripts/test sets it)."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDK = HERE.parent
REPO = SDK.parent.parent
sys.path.insert(0, str(SDK))

import lore  # noqa: E402
from lore import AsyncLore, Lore  # noqa: E402
from lore.models import MODELS  # noqa: E402

SERVER: dict = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setUpModule() -> None:
    binary = os.environ.get("LORE_BIN") or str(REPO / "target" / "debug" / "lore")
    if not Path(binary).exists():
        raise unittest.SkipTest(f"no Lore binary at {binary}: build it first (cargo build -p lore) or set LORE_BIN")
    data = tempfile.mkdtemp(prefix="lore-sdk-")
    port = free_port()
    env = dict(os.environ)
    env.setdefault("LORE_MODEL_DIR", str(REPO / "target" / "lore-models"))
    env.setdefault("LORE_HF_ENDPOINT", "none")
    env["LORE_LOG"] = "warn"
    for key in ("LORE_DATABASE_URL", "LORE_BLOB_URL", "LORE_MASTER_KEY"):
        env.pop(key, None)
    process = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--registration", "open",
         "--registrations-per-hour", "0", "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"lore serve did not start: {process.stderr.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.1)
    SERVER.update(process=process, base=base, data=data)
    # One account and one key of every scope for the tests.
    anonymous = Lore(base_url=base)
    auth = anonymous.auth.register("python-sdk", "sdk@example.com", "correct horse battery")
    session = Lore(base_url=base, api_key=auth.token)
    created = session.api_keys.create("sdk tests", ["search", "upload", "read", "delete"])
    SERVER.update(token=auth.token, key=created.key, key_id=created.api_key.id)


def tearDownModule() -> None:
    process = SERVER.get("process")
    if process:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    if SERVER.get("data"):
        shutil.rmtree(SERVER["data"], ignore_errors=True)


def client() -> Lore:
    return Lore(base_url=SERVER["base"], api_key=SERVER["key"])


def session() -> Lore:
    return Lore(base_url=SERVER["base"], api_key=SERVER["token"])


REFUND = "# 退款政策\n\n购买后三十天内可以申请全额退款，款项五个工作日内原路退回。\n"
SHIPPING = "# Shipping\n\nOrders ship within two business days; express delivery takes one day.\n"


class QuickStart(unittest.TestCase):
    def test_the_quick_start_works(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            guide = Path(folder, "guide.md")
            guide.write_text(REFUND + "\n" + SHIPPING, encoding="utf-8")
            lore_client = Lore(base_url=SERVER["base"], api_key=SERVER["key"])
            kb = lore_client.knowledge_bases.create(name="docs")
            doc = lore_client.documents.upload(kb.id, str(guide), wait=True)
            self.assertEqual(doc.status, "completed", doc)
            hits = lore_client.search(kb.id, "退款多久到账", top_k=5)
            self.assertTrue(hits, "found nothing")
            self.assertEqual(hits[0].document_id, doc.id)
            self.assertIn("退款", hits[0].content)
            self.assertGreater(hits[0].score, 0)
            english = lore_client.search(kb.id, "how fast is express delivery", top_k=5, mode="hybrid")
            self.assertIn("express", english[0].content)
            self.assertEqual(english.response.mode, "hybrid")


class Documents(unittest.TestCase):
    def test_bytes_folders_progress_download_and_chunks(self) -> None:
        lore_client = client()
        kb = lore_client.knowledge_bases.create(name="文件夹", description="uploads of every kind")
        progress = []
        doc = lore_client.documents.upload(
            kb.id, "新品：智能音箱支持中文语音控制。".encode(), filename="新品.txt", wait=True,
            on_progress=lambda sent, total: progress.append((sent, total)), metadata={"team": "产品"},
        )
        self.assertEqual((doc.status, doc.filename, doc.metadata), ("completed", "新品.txt", {"team": "产品"}))
        self.assertEqual(progress[-1][0], progress[-1][1])
        # The same bytes again: Lore keeps one copy and says so.
        again = lore_client.documents.upload(kb.id, "新品：智能音箱支持中文语音控制。".encode(), filename="copy.txt")
        self.assertEqual((again.id, again.extra.get("duplicate")), (doc.id, True))

        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "退款.md").write_text(REFUND, encoding="utf-8")
            Path(folder, "sub").mkdir()
            Path(folder, "sub", "shipping.md").write_text(SHIPPING, encoding="utf-8")
            seen = []
            docs = lore_client.documents.upload_folder(
                kb.id, folder, wait=True, on_progress=lambda done, total, path: seen.append((done, total, path.name))
            )
            self.assertEqual(sorted(d.filename for d in docs), ["shipping.md", "退款.md"])
            self.assertTrue(all(d.status == "completed" for d in docs), docs)
            self.assertEqual([s[:2] for s in seen], [(1, 2), (2, 2)])
            # A larger file reports its bytes as they go. (Mostly blank: 300 KB to send, one chunk
            # to process.)
            big = Path(folder, "big.txt")
            big.write_text("大文件 a big file.\n" + " " * 300_000 + "\n结束 the end.\n", encoding="utf-8")
            sent = []
            large = lore_client.documents.upload(kb.id, big, on_progress=lambda s, t: sent.append(s), wait=True)
            self.assertEqual(large.status, "completed", large)
            self.assertGreater(len(sent), 1, "a large file reports progress in pieces")
            self.assertEqual(sent[-1], big.stat().st_size)

        listed = lore_client.documents.list(kb.id)
        self.assertEqual(len(listed), 4)
        refund = next(d for d in docs if d.filename == "退款.md")
        self.assertEqual(lore_client.documents.download(refund.id).decode("utf-8"), REFUND)
        chunks = lore_client.documents.chunks(refund.id)
        self.assertTrue(chunks and all(c.document_id == refund.id for c in chunks))

        # Chunks curated by hand: found by their new words, not their old ones.
        edited = lore_client.chunks.update(chunks[0].id, content="保修两年，紫罗兰色款式除外。Warranty: two years.")
        self.assertTrue(edited.edited_at)
        self.assertEqual(lore_client.search(kb.id, "紫罗兰", mode="fulltext")[0].chunk_id, edited.id)
        self.assertNotIn(edited.id, [h.chunk_id for h in lore_client.search(kb.id, "五个工作日", mode="fulltext")])
        lore_client.chunks.update(edited.id, enabled=False)
        self.assertFalse(lore_client.search(kb.id, "紫罗兰", mode="fulltext"))
        added = lore_client.chunks.add(refund.id, "发票在订单页面下载。Invoices are on the order page.")
        self.assertEqual(lore_client.search(kb.id, "发票", mode="fulltext")[0].chunk_id, added.id)

        lore_client.documents.delete(refund.id)
        self.assertEqual(lore_client.documents.get(refund.id).soft_deleted_at is not None, True)
        self.assertEqual(lore_client.documents.restore(refund.id).soft_deleted_at, None)


class Packaging(unittest.TestCase):
    def test_the_package_installs_with_pip_and_the_quick_start_runs(self) -> None:
        with tempfile.TemporaryDirectory() as root:
            venv = Path(root, "venv")
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
            python = venv / "bin" / "python"
            # As a user would: pip fetches the build backend (setuptools) from the package index.
            install = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(SDK)],
                capture_output=True, text=True, cwd=root,
            )
            self.assertEqual(install.returncode, 0, install.stderr)
            Path(root, "guide.md").write_text(REFUND, encoding="utf-8")
            quick_start = (
                "from lore import Lore\n"
                "import lore, sys\n"
                "assert 'site-packages' in lore.__file__, lore.__file__\n"
                f"lore = Lore(base_url={SERVER['base']!r}, api_key={SERVER['key']!r})\n"
                "kb = lore.knowledge_bases.create(name='docs from pip')\n"
                "doc = lore.documents.upload(kb.id, 'guide.md', wait=True)\n"
                "hits = lore.search(kb.id, '退款', top_k=5)\n"
                "print(hits[0].document_id == doc.id, hits[0].score > 0, hits[0].content[:10])\n"
            )
            run = subprocess.run([str(python), "-c", quick_start], capture_output=True, text=True, cwd=root,
                                 env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertTrue(run.stdout.startswith("True True"), run.stdout)


class Errors(unittest.TestCase):
    def test_errors_carry_lores_codes(self) -> None:
        lore_client = client()
        with self.assertRaises(lore.NotFoundError) as caught:
            lore_client.knowledge_bases.get("01a24cf0-0000-7000-8000-000000000000")
        self.assertEqual((caught.exception.code, caught.exception.status), ("not_found", 404))
        with self.assertRaises(lore.AuthenticationError) as caught:
            Lore(base_url=SERVER["base"], api_key="lore_not-a-real-key").knowledge_bases.list()
        self.assertEqual(caught.exception.code, "invalid_api_key")
        with self.assertRaises(lore.ValidationError) as caught:
            lore_client.knowledge_bases.create(name="")
        self.assertTrue(caught.exception.code)
        with self.assertRaises(lore.PermissionDeniedError) as caught:
            lore_client.api_keys.list()  # sessions only
        self.assertIsInstance(caught.exception, lore.LoreError)
        with self.assertRaises(lore.ConnectionError):
            Lore(base_url=f"http://127.0.0.1:{free_port()}", max_retries=0).knowledge_bases.list()

    def test_retryable_codes_are_retried_after_retry_after(self) -> None:
        answers = [
            (429, {"error": {"code": "rate_limited", "message": "slow down", "type": "rate_limited"}}, "0.3"),
            (503, {"error": {"code": "database_busy", "message": "busy", "type": "internal"}}, None),
            (200, {"data": [{"id": "kb1", "name": "知识库"}]}, None),
        ]
        stub = Stub(answers)
        started = time.monotonic()
        kbs = Lore(base_url=stub.base, api_key="k").knowledge_bases.list()
        self.assertEqual([kb.name for kb in kbs], ["知识库"])
        self.assertEqual(len(stub.seen), 3)
        self.assertGreaterEqual(time.monotonic() - started, 0.3, "Retry-After was honoured")
        # A quota is not a pause: not retried.
        stub = Stub([(429, {"error": {"code": "quota_exceeded", "message": "q", "type": "rate_limited"}}, "3600")])
        with self.assertRaises(lore.RateLimitError) as caught:
            Lore(base_url=stub.base, api_key="k").knowledge_bases.list()
        self.assertEqual((caught.exception.code, caught.exception.retry_after, len(stub.seen)), ("quota_exceeded", 3600.0, 1))
        # Uploads are not repeated.
        stub = Stub([(503, {"error": {"code": "service_unavailable", "message": "m", "type": "internal"}}, "0")] * 3)
        with self.assertRaises(lore.ServerError):
            Lore(base_url=stub.base, api_key="k").documents.upload("kb", b"x", filename="x.txt")
        self.assertEqual(len(stub.seen), 1)


class Stub:
    """A local HTTP server answering from a list, to test the client's retries."""

    def __init__(self, answers: list) -> None:
        self.answers = list(answers)
        self.seen: list = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                stub.seen.append((self.command, self.path))
                status, body, retry_after = stub.answers.pop(0) if stub.answers else (500, {}, None)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if retry_after is not None:
                    self.send_header("retry-after", retry_after)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Agents(unittest.TestCase):
    def setUp(self) -> None:
        self.lore = session()
        self.kb = self.lore.knowledge_bases.create(name="客服")
        self.doc = self.lore.documents.upload(self.kb.id, REFUND.encode(), filename="退款.md", wait=True)
        self.agent = self.lore.agents.create(f"退款助手 {self.id()}", knowledge_base_ids=[self.kb.id], max_documents=2)

    def test_chat_streams_and_the_openai_endpoint(self) -> None:
        answer = self.lore.agents.chat(self.agent.id, "退款多久能到账？")
        self.assertIn("五个工作日", answer.message.content)
        self.assertEqual(answer.message.citations[0].document_id, self.doc.id)
        self.assertTrue(answer.message.citations[0].chunk_id)
        follow = self.lore.agents.chat(self.agent.id, "运费呢？", conversation_id=answer.conversation_id)
        self.assertEqual(follow.conversation_id, answer.conversation_id)
        self.assertEqual(len(self.lore.conversations.messages(answer.conversation_id)), 4)

        events = list(self.lore.agents.chat_stream(self.agent.id, "退款多久能到账？"))
        self.assertEqual(events[-1].type, "done")
        streamed = "".join(e.content for e in events if e.type == "token")
        self.assertEqual(streamed, events[-1].answer.message.content)
        self.assertTrue(events[-1].answer.message.citations)

        completion = self.lore.chat.completions.create(
            model=self.agent.id, messages=[{"role": "user", "content": "退款多久能到账？"}]
        )
        self.assertIn("五个工作日", completion["choices"][0]["message"]["content"])
        chunks = list(
            self.lore.chat.completions.create(
                model=self.agent.id, messages=[{"role": "user", "content": "退款多久能到账？"}], stream=True
            )
        )
        text = "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c.get("choices"))
        self.assertIn("五个工作日", text)

    def test_the_async_client_does_the_same(self) -> None:
        async def run() -> None:
            async with AsyncLore(base_url=SERVER["base"], api_key=SERVER["token"]) as alore:
                kb = await alore.knowledge_bases.create(name="异步")
                doc = await alore.documents.upload(kb.id, SHIPPING.encode(), filename="shipping.md", wait=True)
                self.assertEqual(doc.status, "completed")
                hits = await alore.search([kb.id, self.kb.id], "express delivery", top_k=3)
                self.assertEqual(hits[0].document_id, doc.id)
                events = [e async for e in alore.agents.chat_stream(self.agent.id, "退款多久能到账？")]
                self.assertEqual(events[-1].type, "done")
                with self.assertRaises(lore.NotFoundError):
                    await alore.agents.get("01a24cf0-0000-7000-8000-000000000000")

        asyncio.run(run())


class Keys(unittest.TestCase):
    def test_keys_are_created_edited_and_revoked(self) -> None:
        s = session()
        created = s.api_keys.create("临时", ["search", "read"], rate_limit=100)
        edited = s.api_keys.update(created.api_key.id, scopes=["search"], rate_limit=None, name="只检索")
        self.assertEqual((edited.scopes, edited.rate_limit, edited.name), (["search"], None, "只检索"))
        with self.assertRaises(lore.ValidationError) as caught:
            s.api_keys.update(created.api_key.id, scopes=["search", "delete"])
        self.assertEqual(caught.exception.code, "invalid_scope")
        s.api_keys.revoke(created.api_key.id)
        with self.assertRaises(lore.AuthenticationError):
            Lore(base_url=SERVER["base"], api_key=created.key).knowledge_bases.list()
        # Each change is in the audit log, newest first, with what changed and not a secret.
        entries = s.audit(action="api_key.", limit=3)
        self.assertEqual([e["action"] for e in entries], ["api_key.revoked", "api_key.updated", "api_key.created"])
        self.assertEqual(entries[1]["details"]["scopes"], ["search"])
        self.assertTrue(all(e["target_id"] == created.api_key.id for e in entries))


def schema_properties(document: dict, name: str) -> tuple:
    """A component schema's properties and required fields, with allOf resolved."""
    schema = document["components"]["schemas"][name]
    props, required = {}, set()
    for part in schema.get("allOf", [schema]):
        if "$ref" in part:
            p, r = schema_properties(document, part["$ref"].rsplit("/", 1)[1])
            props.update(p)
            required |= r
        else:
            props.update(part.get("properties", {}))
            required |= set(part.get("required", []))
    return props, required


class OpenApiAgreement(unittest.TestCase):
    def setUp(self) -> None:
        with urllib.request.urlopen(f"{SERVER['base']}/openapi.json") as r:
            self.document = json.load(r)

    def test_every_model_matches_its_schema(self) -> None:
        for model in MODELS:
            props, required = schema_properties(self.document, model.__schema__)
            self.assertEqual(sorted(model.field_names()), sorted(props), f"{model.__name__} vs {model.__schema__}")
            self.assertEqual(sorted(model.__required__), sorted(required), f"{model.__name__} required fields")

    def test_every_endpoint_is_in_the_sdk_and_no_other(self) -> None:
        source = (SDK / "lore" / "client.py").read_text(encoding="utf-8")
        sdk = set(re.findall(r'endpoint\("([A-Z]+)", "([^"]+)"\)', source))
        api = {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            if path.startswith("/v1/")
            for method in item
        }
        self.assertEqual(sorted(api - sdk), [], "endpoints the SDK lacks")
        self.assertEqual(sorted(sdk - api), [], "endpoints the SDK calls that Lore does not have")

    def test_the_version_tracks_lores(self) -> None:
        cargo = (REPO / "Cargo.toml").read_text(encoding="utf-8")
        version = re.search(r'\[workspace\.package\][^\[]*?version\s*=\s*"([^"]+)"', cargo, re.S).group(1)
        pyproject = (SDK / "pyproject.toml").read_text(encoding="utf-8")
        self.assertEqual(lore.__version__, version)
        self.assertIn(f'version = "{version}"', pyproject)


def integration(module: str):
    try:
        __import__(module)
        return lambda cls: cls
    except ImportError:
        if os.environ.get("LORE_REQUIRE_INTEGRATIONS") == "1":
            raise
        return unittest.skip(f"{module} is not installed")


class _Retrieval(unittest.TestCase):
    def setUp(self) -> None:
        self.lore = client()
        self.kb = self.lore.knowledge_bases.create(name="retrievers")
        self.refund = self.lore.documents.upload(self.kb.id, REFUND.encode(), filename="退款.md", wait=True)
        self.shipping = self.lore.documents.upload(self.kb.id, SHIPPING.encode(), filename="shipping.md", wait=True)


@integration("langchain_core")
class LangChain(_Retrieval):
    def test_the_retriever_returns_cited_documents(self) -> None:
        from langchain_core.documents import Document

        from lore.integrations.langchain import LoreRetriever

        retriever = LoreRetriever(client=self.lore, knowledge_base_ids=[self.kb.id], top_k=2)
        docs = retriever.invoke("退款多久到账")
        self.assertIsInstance(docs[0], Document)
        self.assertIn("退款", docs[0].page_content)
        meta = docs[0].metadata
        self.assertEqual((meta["document_id"], meta["filename"]), (self.refund.id, "退款.md"))
        self.assertTrue(meta["chunk_id"] and meta["score"] > 0)
        english = retriever.invoke("when do orders ship")
        self.assertEqual(english[0].metadata["document_id"], self.shipping.id)

        async def run() -> list:
            async with AsyncLore(base_url=SERVER["base"], api_key=SERVER["key"]) as alore:
                r = LoreRetriever(async_client=alore, knowledge_base_ids=[self.kb.id], top_k=1)
                return await r.ainvoke("express delivery")

        self.assertEqual(asyncio.run(run())[0].metadata["document_id"], self.shipping.id)


@integration("llama_index.core")
class LlamaIndex(_Retrieval):
    def test_the_retriever_returns_scored_nodes(self) -> None:
        from llama_index.core.schema import NodeWithScore

        from lore.integrations.llama_index import LoreRetriever

        retriever = LoreRetriever(self.lore, knowledge_base_ids=[self.kb.id], top_k=2)
        nodes = retriever.retrieve("退款多久到账")
        self.assertIsInstance(nodes[0], NodeWithScore)
        self.assertIn("退款", nodes[0].node.get_content())
        self.assertEqual(nodes[0].node.metadata["document_id"], self.refund.id)
        self.assertEqual(nodes[0].node.node_id, nodes[0].node.metadata["chunk_id"])
        self.assertGreater(nodes[0].score, 0)
        self.assertEqual(retriever.retrieve("when do orders ship")[0].node.metadata["filename"], "shipping.md")


@integration("langchain_core")
@integration("llama_index.core")
class Example(unittest.TestCase):
    def test_the_example_runs(self) -> None:
        env = dict(os.environ, LORE_BASE_URL=SERVER["base"], LORE_API_KEY=SERVER["key"],
                   PYTHONPATH=str(SDK) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = subprocess.run(
            [sys.executable, str(SDK / "examples" / "retrievers.py")], env=env, capture_output=True, text=True,
            timeout=300,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("langchain   [退款政策.md", out.stdout)
        self.assertIn("llama-index [退款政策.md", out.stdout)


if __name__ == "__main__":
    unittest.main()
