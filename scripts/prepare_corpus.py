#!/usr/bin/python3
"""Build moelab's training corpus: byte-level tokens of three domains.

usage: scripts/prepare_corpus.py [--out data/corpus.h5] [--bytes-per-domain N] [--doc-bytes N] [--seed S]

Domains (each from a Debian package installed by scripts/install-deps.sh, so
the corpus is rebuilt the same way on any machine):
  0 prose  English text: the fortune cookie collections (package `fortunes`)
           and the Jargon File (package `jargon-text`)
  1 code   C and C++ headers the toolchain ships under /usr/include
  2 math   generated arithmetic and algebra problems with their answers, in
           the spirit of DeepMind's Mathematics dataset (seeded, exact answers)

Tokenisation is byte-level: ids 0..255 are the UTF-8 bytes, 256 BOS, 257 EOS,
258 PAD, 259 reserved (vocab_size 260, the v3-small/v3-tiny presets). Each
document is BOS + bytes + EOS; documents of the three domains are interleaved
round-robin so that a split by document index (moelab's held-out rule) keeps
every domain on both sides.

Layout of the HDF5 file (format attribute "moelab-corpus-1"):
  /tokens       uint16 [N]     token ids, documents concatenated
  /domain       uint8  [N]     domain id of each token
  /doc_offsets  int64  [D+1]   start of each document in /tokens
  /doc_domain   uint8  [D]     domain of each document
  attrs: format, vocab_size, bos_id, eos_id, pad_id, domain_names (comma
         separated), sources, seed, bytes_per_domain
"""
import argparse
import glob
import gzip
import os
import random
import sys

import h5py
import numpy as np

BOS, EOS, PAD, VOCAB = 256, 257, 258, 260
DOMAINS = ["prose", "code", "math"]
FORTUNE_DIR = "/usr/share/games/fortunes"
JARGON = "/usr/share/doc/jargon-text/jargon.txt.gz"
# Collections that are not English prose (pictures, untranslated text).
FORTUNE_SKIP = {"ascii-art", "translate-me"}
DOC_BYTES = 2048  # target size of a prose or math document


def chunks(pieces, target):
    """Concatenates text pieces into documents of about `target` bytes."""
    doc = []
    size = 0
    for p in pieces:
        doc.append(p)
        size += len(p)
        if size >= target:
            yield b"".join(doc)
            doc, size = [], 0
    if doc:
        yield b"".join(doc)


def prose_docs():
    pieces = []
    if os.path.isdir(FORTUNE_DIR):
        for path in sorted(glob.glob(os.path.join(FORTUNE_DIR, "*"))):
            name = os.path.basename(path)
            if "." in name or name in FORTUNE_SKIP or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                for cookie in f.read().split(b"\n%\n"):
                    cookie = cookie.strip(b"%\n")
                    if cookie:
                        pieces.append(cookie + b"\n\n")
    if os.path.exists(JARGON):
        with gzip.open(JARGON, "rb") as f:
            for para in f.read().split(b"\n\n"):
                # Keep paragraphs of running text; the glossary's box-drawing
                # tables are not prose.
                if para.strip() and all(b < 0x80 for b in para):
                    pieces.append(para.strip() + b"\n\n")
    if not pieces:
        sys.exit("prepare_corpus: no English prose found: install the Debian packages fortunes and jargon-text "
                 "(scripts/install-deps.sh)")
    # A fixed shuffle mixes the collections so a prefix of the stream is a
    # sample of all of them.
    random.Random(1).shuffle(pieces)
    return list(chunks(pieces, DOC_BYTES))


def code_docs():
    files = sorted(glob.glob("/usr/include/**/*.h", recursive=True) +
                   glob.glob("/usr/include/c++/*/*", recursive=False))
    files = [f for f in files if os.path.isfile(f)]
    if not files:
        sys.exit("prepare_corpus: no headers under /usr/include (install build-essential)")
    random.Random(2).shuffle(files)
    docs = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read(DOC_BYTES * 2)
        if data.strip():
            docs.append(data)
    return docs


def math_problem(rng):
    kind = rng.randrange(9)
    a, b, c = rng.randint(-99, 99), rng.randint(-99, 99), rng.randint(1, 20)
    if kind == 0:
        return f"What is {a} + {b}?\nAnswer: {a + b}\n"
    if kind == 1:
        return f"Calculate {a} - {b}.\nAnswer: {a - b}\n"
    if kind == 2:
        return f"What is {a} * {c}?\nAnswer: {a * c}\n"
    if kind == 3:
        n = abs(a) * c + rng.randrange(c)
        return f"What is the remainder when {n} is divided by {c}?\nAnswer: {n % c}\n"
    if kind == 4:
        x = rng.randint(-20, 20)
        k = rng.choice([i for i in range(-9, 10) if i != 0])
        rhs = k * x + b
        return f"Solve {k}*x + {b} = {rhs} for x.\nAnswer: {x}\n"
    if kind == 5:
        p, q = rng.randint(1, 200), rng.randint(1, 200)
        import math
        return f"Calculate the greatest common divisor of {p} and {q}.\nAnswer: {math.gcd(p, q)}\n"
    if kind == 6:
        x = rng.randint(-6, 6)
        c2, c1, c0 = rng.randint(-9, 9), rng.randint(-9, 9), rng.randint(-9, 9)
        return f"Let f(x) = {c2}*x**2 + {c1}*x + {c0}. What is f({x})?\nAnswer: {c2 * x * x + c1 * x + c0}\n"
    if kind == 7:
        p, q = rng.randint(-9, 9), rng.randint(-9, 9)
        return (f"Expand (x + {p})*(x + {q}).\nAnswer: x**2 + {p + q}*x + {p * q}\n")
    c3, c2, c1 = rng.randint(-9, 9), rng.randint(-9, 9), rng.randint(-9, 9)
    return (f"Differentiate {c3}*x**3 + {c2}*x**2 + {c1}*x with respect to x.\n"
            f"Answer: {3 * c3}*x**2 + {2 * c2}*x + {c1}\n")


def math_docs(seed, total_bytes):
    rng = random.Random(seed)
    docs, size = [], 0
    while size < total_bytes:
        doc = []
        n = 0
        while n < DOC_BYTES:
            p = math_problem(rng).encode() + b"\n"
            doc.append(p)
            n += len(p)
        docs.append(b"".join(doc))
        size += n
    return docs


def take(docs, budget):
    out, size = [], 0
    for d in docs:
        if size >= budget:
            break
        d = d[: budget - size] if size + len(d) > budget else d
        out.append(d)
        size += len(d)
    return out


def main():
    global DOC_BYTES
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="data/corpus.h5")
    parser.add_argument("--bytes-per-domain", type=int, default=1_500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc-bytes", type=int, default=DOC_BYTES,
                        help="size of a prose or math document (code: twice this, the start of one header)")
    args = parser.parse_args()
    DOC_BYTES = args.doc_bytes

    per_domain = [take(prose_docs(), args.bytes_per_domain), take(code_docs(), args.bytes_per_domain),
                  take(math_docs(args.seed, args.bytes_per_domain), args.bytes_per_domain)]
    order = []  # round-robin interleaving (domain, doc)
    for i in range(max(len(d) for d in per_domain)):
        for dom, docs in enumerate(per_domain):
            if i < len(docs):
                order.append((dom, docs[i]))
    total = sum(len(d) + 2 for _, d in order)
    tokens = np.empty(total, dtype=np.uint16)
    domain = np.empty(total, dtype=np.uint8)
    offsets = np.zeros(len(order) + 1, dtype=np.int64)
    pos = 0
    for i, (dom, doc) in enumerate(order):
        n = len(doc) + 2
        tokens[pos] = BOS
        tokens[pos + 1: pos + n - 1] = np.frombuffer(doc, dtype=np.uint8)
        tokens[pos + n - 1] = EOS
        domain[pos: pos + n] = dom
        pos += n
        offsets[i + 1] = pos
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with h5py.File(tmp, "w") as f:
        kw = dict(compression="gzip", compression_opts=6, shuffle=True)
        f.create_dataset("tokens", data=tokens, **kw)
        f.create_dataset("domain", data=domain, **kw)
        f.create_dataset("doc_offsets", data=offsets, **kw)
        f.create_dataset("doc_domain", data=np.array([d for d, _ in order], dtype=np.uint8), **kw)
        f.attrs["format"] = "moelab-corpus-1"
        f.attrs["vocab_size"] = VOCAB
        f.attrs["bos_id"], f.attrs["eos_id"], f.attrs["pad_id"] = BOS, EOS, PAD
        f.attrs["domain_names"] = ",".join(DOMAINS)
        f.attrs["sources"] = ("prose: Debian fortunes + jargon-text; code: /usr/include headers; "
                              "math: generated problems (seed %d)" % args.seed)
        f.attrs["seed"] = args.seed
        f.attrs["bytes_per_domain"] = args.bytes_per_domain
        f.attrs["doc_bytes"] = args.doc_bytes
    os.replace(tmp, args.out)
    counts = [int((domain == d).sum()) for d in range(len(DOMAINS))]
    print(f"wrote {args.out}: {total} tokens in {len(order)} documents; " +
          ", ".join(f"{n} {c}" for n, c in zip(DOMAINS, counts)))


if __name__ == "__main__":
    main()
