"""The usual Python stack on the same files as `lore bench parse`: pypdf, python-docx,
openpyxl, BeautifulSoup, csv, json. Text extraction only (no chunking, no segmentation):
less work than Lore does. Prints MB/s and files/s per format, one thread."""
import csv, io, json, os, sys, time
from collections import defaultdict

from bs4 import BeautifulSoup
import docx
import openpyxl
import pypdf


def text_of(path, data):
    ext = path.rsplit(".", 1)[-1].lower()
    if ext == "pdf":
        return ext, "\n".join(p.extract_text() or "" for p in pypdf.PdfReader(io.BytesIO(data)).pages)
    if ext == "docx":
        d = docx.Document(io.BytesIO(data))
        return ext, "\n".join(p.text for p in d.paragraphs)
    if ext == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        return ext, "\n".join(" ".join(str(c) for c in row if c is not None) for ws in wb for row in ws.iter_rows(values_only=True))
    if ext in ("html", "htm"):
        return "html", BeautifulSoup(data, "html.parser").get_text("\n")
    if ext == "csv":
        return ext, "\n".join(",".join(r) for r in csv.reader(io.StringIO(data.decode("utf-8"))))
    if ext == "json":
        return ext, json.dumps(json.loads(data), ensure_ascii=False)
    return ("markdown" if ext == "md" else "text"), data.decode("utf-8")


def main(root):
    stats = defaultdict(lambda: [0, 0, 0.0])
    failures = 0
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            t = time.perf_counter()
            try:
                kind, _ = text_of(path, data)
            except Exception:
                kind, failures = path.rsplit(".", 1)[-1], failures + 1
            s = stats[kind]
            s[0] += 1
            s[1] += len(data)
            s[2] += time.perf_counter() - t
    print(f"python peer ({sys.version.split()[0]}; pypdf {pypdf.__version__}): extraction only, 1 thread")
    total = [0, 0, 0.0]
    for kind in sorted(stats):
        n, b, s = stats[kind]
        print(f"{kind:>10}: {n:>5} files, {b / 1e6:>8.1f} MB, {b / 1e6 / s:>7.1f} MB/s, {n / s:>7.0f} files/s")
        total = [total[0] + n, total[1] + b, total[2] + s]
    n, b, s = total
    print(f"     total: {n:>5} files, {b / 1e6:>8.1f} MB, {b / 1e6 / s:>7.1f} MB/s, {n / s:>7.0f} files/s; failures: {failures}")


if __name__ == "__main__":
    main(sys.argv[1])
